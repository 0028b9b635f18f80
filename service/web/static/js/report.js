// The Synchronization report (seed 003): a list of days; a day opens its summary by action, per rep,
// and the details of every record event that day, in a chosen timezone.
import { graphql } from "./api.js";
import { deviceName, userName } from "./directory.js";
import { EVENT, HistoryTable } from "./history_table.js";
import { html, useEffect, useState } from "./ui.js";

const DAYS = 14;
const REPORT = `query($d: Date!, $tz: String) { syncReport(date: $d, timezone: $tz) {
  date timezone since until hours total devicesSynced devicesSilent silentDeviceIds
  actions { action label count }
  reps { repId total devicesSynced devicesSilent actions { action label count } } } }`;
const EVENTS = `query($f: SyncHistoryFilter, $after: String) { syncHistory(filter: $f, first: 200, after: $after) {
  edges { node { ${EVENT} } } pageInfo { hasNextPage endCursor } } }`;

export const browserZone = Intl.DateTimeFormat().resolvedOptions().timeZone;
const ZONES = Intl.supportedValuesOf ? Intl.supportedValuesOf("timeZone") : [browserZone, "UTC"];

function lastDays(timeZone) {
  const today = new Date().toLocaleDateString("en-CA", { timeZone }); // YYYY-MM-DD
  const days = [];
  for (let i = 0; i < DAYS; i += 1) {
    const day = new Date(`${today}T12:00:00Z`);
    day.setUTCDate(day.getUTCDate() - i);
    days.push(day.toISOString().slice(0, 10));
  }
  return days;
}

export function ReportPage({ directory, params }) {
  const [timeZone, setTimeZone] = useState(params.get("timezone") || browserZone);
  const day = params.get("date");
  function go(date, zone = timeZone) {
    location.hash = `#/report?date=${date}&timezone=${encodeURIComponent(zone)}`;
  }
  return html`<div class="report">
    <label class="zone">Timezone
      <select value=${timeZone} onChange=${(e) => { setTimeZone(e.target.value); if (day) go(day, e.target.value); }}>
        ${ZONES.map((z) => html`<option key=${z} value=${z}>${z}</option>`)}</select></label>
    <div class="grid report-grid">
      <nav class="days"><ul>${lastDays(timeZone).map((d) => html`<li key=${d}>
        <a href="#" aria-current=${d === day ? "page" : undefined} onClick=${(e) => { e.preventDefault(); go(d); }}>${d}</a></li>`)}
        <li><form onSubmit=${(e) => { e.preventDefault(); go(new FormData(e.target).get("day")); }}>
          <input type="date" name="day" required aria-label="Another day" /><button class="outline small">Open</button></form></li>
      </ul></nav>
      <div>${day ? html`<${Day} key=${`${day}/${timeZone}`} date=${day} timeZone=${timeZone} directory=${directory} />`
        : html`<p class="empty">Pick a day.</p>`}</div>
    </div>
  </div>`;
}

function Day({ date, timeZone, directory }) {
  const [report, setReport] = useState(null);
  const [events, setEvents] = useState([]);
  const [page, setPage] = useState(null);
  const [error, setError] = useState(null);

  async function more(since, until, after) {
    const filter = { since, until, actions: null };
    const data = (await graphql(EVENTS, { f: filter, after })).syncHistory;
    setEvents((old) => [...(after ? old : []), ...data.edges.map((e) => e.node).filter((e) => e.recordType)]);
    setPage(data.pageInfo);
  }
  useEffect(() => {
    (async () => {
      try {
        const r = (await graphql(REPORT, { d: date, tz: timeZone })).syncReport;
        setReport(r);
        await more(r.since, r.until, null);
      } catch (failure) {
        setError(failure.message);
      }
    })();
  }, []);

  if (error) return html`<p class="error" role="alert">${error}</p>`;
  if (!report) return html`<p aria-busy="true">Counting ${date}…</p>`;
  const labels = Object.fromEntries(report.actions.map((a) => [a.action, a.label]));
  return html`<section class="day" data-day=${date}>
    <h3>${date} <small>${report.timezone} · ${report.hours} hours</small></h3>
    <p>${report.total} events · ${report.devicesSynced} devices synced · ${report.devicesSilent} silent
      ${report.silentDeviceIds.length ? html` (${report.silentDeviceIds.map((id) => deviceName(directory, id)).join(", ")})` : ""}</p>
    <table class="summary"><thead><tr><th>Action</th><th>Count</th></tr></thead><tbody>
      ${report.actions.map((a) => html`<tr key=${a.action} class=${a.count ? "" : "zero"}><td>${a.label}</td><td>${a.count}</td></tr>`)}
    </tbody></table>
    ${report.reps.length > 0 && html`<h4>Per rep</h4><table class="per-rep"><thead><tr><th>Rep</th><th>Events</th><th>What happened</th><th>Devices synced / silent</th></tr></thead><tbody>
      ${report.reps.map((r) => html`<tr key=${r.repId}><td>${userName(directory, r.repId)}</td><td>${r.total}</td>
        <td>${r.actions.map((a) => `${a.label}: ${a.count}`).join(" · ")}</td><td>${r.devicesSynced} / ${r.devicesSilent}</td></tr>`)}
    </tbody></table>`}
    <h4>Details</h4>
    ${events.length ? html`<${HistoryTable} events=${events} directory=${directory} labels=${labels} timeZone=${timeZone} />`
      : html`<p class="empty">No record events that day.</p>`}
    ${page?.hasNextPage && html`<button class="outline" onClick=${() => more(report.since, report.until, page.endCursor)}>More</button>`}
  </section>`;
}
