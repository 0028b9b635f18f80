// GraphiQL on GET /graphql, from the vendored files only. Signed in to the console, it
// calls as that person (session cookie + CSRF token); otherwise put
// {"Authorization": "Bearer <token>"} in the Headers tab.
"use strict";

(async () => {
  const response = await fetch("/auth/session", { credentials: "same-origin" });
  const session = response.ok ? await response.json() : null;
  const sessionHeaders = session ? { "X-CSRF-Token": session.csrfToken } : {};
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const wsClient = graphqlWs.createClient({
    url: `${scheme}://${location.host}/graphql`,
    lazy: true,
    connectionParams: () => (session ? { csrf: session.csrfToken } : {}),
  });
  const fetcher = GraphiQL.createFetcher({ url: "/graphql", headers: sessionHeaders, wsClient });
  const root = ReactDOM.createRoot(document.getElementById("graphiql"));
  root.render(
    React.createElement(GraphiQL, {
      fetcher,
      defaultQuery: "# Signed in to the console, queries run as you;\n# else set {\"Authorization\": \"Bearer <token>\"} under Headers.\n{\n  me { name role }\n}\n",
    }),
  );
})();
