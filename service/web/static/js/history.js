// History: every event, filtered by rep, device, record, action and time; stable paging
// (cursors are positions in the global sequence); the NDJSON export of the same filter.
import { graphql } from "./api.js";
import { EVENT, HistoryTable } from "./history_table.js";
import { words } from "./format.js";
import { browserZone } from "./report.js";
import { html, useEffect, useState } from "./ui.js";

const HISTORY = `query($f: SyncHistoryFilter, $after: String) { syncHistory(filter: $f, first: 50, after: $after) {
  edges { node { ${EVENT} } } pageInfo { hasNextPage endCursor } } }`;
const ACTIONS = ["APPLIED", "MERGED", "UNCHANGED", "DUPLICATE", "CONFLICT", "REFUSED", "BLOCKED", "PUSH",
  "STATUS_REPORTED", "PUSH_REFUSED", "CONFLICT_OVERWRITTEN", "CONFLICT_DISCARDED", "REFUSAL_RESOLVED",
  "REFUSAL_ACKNOWLEDGED", "REFUSAL_DISMISSED", "RECORD_WRITTEN"];
const TYPES = ["OUTLET", "PRODUCT", "VISIT", "ORDER", "WORK_ORDER"];
const KEYS = ["repId", "deviceId", "recordType", "recordId", "action", "since", "until"];

function instant(local) {
  return local ? new Date(local).toISOString() : null; // datetime-local is the browser's time
}

function exportLink(params) {
  const query = new URLSearchParams();
  for (const key of KEYS) {
    const v = params.get(key);
    if (v) query.set(key, key === "since" || key === "until" ? instant(v) : v);
  }
  return `/export/history.ndjson?${query}`;
}

export function HistoryPage({ directory, params, session }) {
  const [events, setEvents] = useState([]);
  const [page, setPage] = useState(null);
  const [error, setError] = useState(null);
  const filter = {
    repId: params.get("repId") || null,
    deviceId: params.get("deviceId") || null,
    recordType: params.get("recordType") || null,
    recordId: params.get("recordId") || null,
    actions: params.get("action") ? [params.get("action")] : null,
    since: instant(params.get("since")),
    until: instant(params.get("until")),
  };

  async function load(after) {
    try {
      const data = (await graphql(HISTORY, { f: filter, after })).syncHistory;
      setEvents((old) => [...(after ? old : []), ...data.edges.map((e) => e.node)]);
      setPage(data.pageInfo);
      setError(null);
    } catch (failure) {
      setError(failure.message);
    }
  }
  useEffect(() => { load(null); }, [params.toString()]);

  function apply(event) {
    event.preventDefault();
    const form = new FormData(event.target);
    const query = new URLSearchParams();
    for (const key of KEYS) if (form.get(key)) query.set(key, form.get(key));
    location.hash = `#/history?${query}`;
  }

  const reps = [...directory.users.values()].filter((u) => u.role === "REP");
  const devices = [...directory.devices.values()];
  return html`<div class="history-page">
    <form class="filters" onSubmit=${apply}>
      <div class="grid">
        <label>Rep<select name="repId" value=${params.get("repId") || ""}><option value="">everyone</option>
          ${reps.map((u) => html`<option key=${u.id} value=${u.id}>${u.name}</option>`)}</select></label>
        <label>Device<select name="deviceId" value=${params.get("deviceId") || ""}><option value="">any</option>
          ${devices.map((d) => html`<option key=${d.id} value=${d.id}>${d.name} (${directory.users.get(d.userId)?.name ?? "?"})</option>`)}</select></label>
        <label>Action<select name="action" value=${params.get("action") || ""}><option value="">any</option>
          ${ACTIONS.map((a) => html`<option key=${a} value=${a}>${words(a)}</option>`)}</select></label>
      </div>
      <div class="grid">
        <label>Record type<select name="recordType" value=${params.get("recordType") || ""}><option value="">any</option>
          ${TYPES.map((t) => html`<option key=${t} value=${t}>${words(t)}</option>`)}</select></label>
        <label>Record id<input name="recordId" value=${params.get("recordId") || ""} /></label>
        <label>From<input type="datetime-local" name="since" value=${params.get("since") || ""} /></label>
        <label>To<input type="datetime-local" name="until" value=${params.get("until") || ""} /></label>
      </div>
      <div class="actions"><button type="submit">Show</button>
        ${session.user.role === "ADMIN" && html`<a role="button" class="outline" href=${exportLink(params)} download="history.ndjson">Export NDJSON</a>`}
      </div>
    </form>
    ${error && html`<p class="error" role="alert">${error}</p>`}
    ${events.length ? html`<${HistoryTable} events=${events} directory=${directory} timeZone=${browserZone} />`
      : html`<p class="empty">No events for this filter.</p>`}
    ${page?.hasNextPage && html`<button class="outline" onClick=${() => load(page.endCursor)}>More</button>`}
  </div>`;
}
