// The service, as the console sees it: sign-in, GraphQL over HTTP, live events over graphql-transport-ws.
let csrfToken = null;

export async function currentSession() {
  const response = await fetch("/auth/session", { credentials: "same-origin" });
  if (!response.ok) return null;
  const session = await response.json();
  csrfToken = session.csrfToken;
  return session;
}

export async function signIn(name, password) {
  const response = await fetch("/auth/login", {
    method: "POST",
    credentials: "same-origin",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ name, password }),
  });
  const body = await response.json();
  if (!response.ok) throw new Error(body.error || `sign-in failed (${response.status})`);
  csrfToken = body.csrfToken;
  return body;
}

export async function signOut() {
  await fetch("/auth/logout", { method: "POST", credentials: "same-origin", headers: { "X-CSRF-Token": csrfToken } });
  csrfToken = null;
}

export async function graphql(query, variables = {}) {
  const response = await fetch("/graphql", {
    method: "POST",
    credentials: "same-origin",
    headers: { "Content-Type": "application/json", "X-CSRF-Token": csrfToken || "" },
    body: JSON.stringify({ query, variables }),
  });
  const body = await response.json();
  if (body.errors && body.errors.length) throw new Error(body.errors.map((e) => e.message).join("; "));
  return body.data;
}

// One WebSocket for the whole console; `onStatus` hears "live" / "offline".
let client = null;
export function liveClient(onStatus) {
  if (client) return client;
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  client = globalThis.graphqlWs.createClient({
    url: `${scheme}://${location.host}/graphql`,
    connectionParams: () => ({ csrf: csrfToken }),
    retryAttempts: Infinity,
    shouldRetry: () => true,
    keepAlive: 10_000,
    on: { connected: () => onStatus("live"), closed: () => onStatus("offline") },
  });
  return client;
}

export function closeLive() {
  if (client) client.dispose();
  client = null;
}

// Calls `onEvent(data)` for each event of a subscription; returns the function that stops it.
export function subscribe(query, variables, onEvent) {
  return client.subscribe({ query, variables }, { next: (result) => result.data && onEvent(result.data), error: () => {}, complete: () => {} });
}
