// The console: sign-in, then one page at a time (the address says which), live over one WebSocket.
import { closeLive, currentSession, liveClient, signIn, signOut } from "./api.js";
import { AccountPage } from "./account.js";
import { ConflictsPage } from "./conflicts.js";
import { DevicesPage } from "./devices.js";
import { emptyDirectory, loadDirectory } from "./directory.js";
import { HealthPage } from "./health.js";
import { HistoryPage } from "./history.js";
import { useLive } from "./live.js";
import { ReportPage } from "./report.js";
import { html, render, useEffect, useState } from "./ui.js";

const PAGES = [
  ["health", "Sync Health", HealthPage],
  ["devices", "Devices", DevicesPage],
  ["conflicts", "Conflicts", ConflictsPage],
  ["report", "Sync report", ReportPage],
  ["history", "History", HistoryPage],
];

const NEW_REFUSALS = "subscription { refusalEvents { type } }";

function route() {
  const [path, query] = location.hash.replace(/^#\/?/, "").split("?");
  return { name: path || "health", params: new URLSearchParams(query || "") };
}

function SignIn({ onSignedIn }) {
  const [error, setError] = useState(null);
  async function submit(event) {
    event.preventDefault();
    const form = new FormData(event.target);
    try {
      onSignedIn(await signIn(form.get("name"), form.get("password")));
    } catch (failure) {
      setError(failure.message);
    }
  }
  return html`<main class="container sign-in"><article>
    <h1>FieldSync</h1>
    <p>Sign in to clear your reps' sync backlog.</p>
    <form onSubmit=${submit}>
      <label>Name<input name="name" autocomplete="username" required autofocus /></label>
      <label>Password<input type="password" name="password" autocomplete="current-password" required /></label>
      ${error && html`<p class="error" role="alert">${error}</p>`}
      <button type="submit">Sign in</button>
    </form>
    <small>First run? The service printed the admin's password when it started.</small>
  </article></main>`;
}

function Console({ session, onSignOut }) {
  const [where, setWhere] = useState(route());
  const [directory, setDirectory] = useState(emptyDirectory());
  const [live, setLive] = useState("offline");
  useEffect(() => {
    const onHash = () => setWhere(route());
    addEventListener("hashchange", onHash);
    return () => removeEventListener("hashchange", onHash);
  }, []);
  const [unseen, setUnseen] = useState(0); // refusals that arrived while another page was open
  liveClient(setLive);
  useEffect(() => { loadDirectory(directory).then(setDirectory); }, [where.name]);
  useEffect(() => { if (where.name === "health") setUnseen(0); }, [where.name]);
  useLive([[NEW_REFUSALS, (data) => data.refusalEvents.type === "CREATED" && where.name !== "health" && setUnseen((n) => n + 1)]], () => {});

  const [, title, Page] = PAGES.find(([name]) => name === where.name) || ["account", "Account", AccountPage];
  return html`<div>
    <nav class="container-fluid top">
      <ul><li><strong>FieldSync</strong></li>
        ${PAGES.map(([name, label]) => html`<li key=${name}><a href=${`#/${name}`} aria-current=${name === where.name ? "page" : undefined}>${label}</a>
          ${name === "health" && unseen > 0 ? html` <mark class="badge OPEN" title="new refusals">${unseen} new</mark>` : ""}</li>`)}</ul>
      <ul><li><span id="live" class=${`live ${live}`}>${live}</span></li>
        <li><a href="#/account" aria-current=${where.name === "account" ? "page" : undefined}>${session.user.name}</a></li>
        <li><a href="/graphql">GraphiQL</a></li></ul>
    </nav>
    <main class="container-fluid">
      <h2>${title}</h2>
      <${Page} key=${where.name} directory=${directory} setDirectory=${setDirectory} params=${where.params}
        session=${session} onSignOut=${onSignOut} />
    </main>
  </div>`;
}

function App() {
  const [session, setSession] = useState(undefined);
  useEffect(() => { currentSession().then(setSession); }, []);
  async function out() {
    closeLive();
    await signOut();
    setSession(null);
  }
  if (session === undefined) return html`<p aria-busy="true">Loading…</p>`;
  if (!session) return html`<${SignIn} onSignedIn=${setSession} />`;
  return html`<${Console} session=${session} onSignOut=${out} />`;
}

render(html`<${App} />`, document.getElementById("app"));
