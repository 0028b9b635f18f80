// One table of sync history events, as the Sync report and the History page show them.
import { actorName, deviceName, userName } from "./directory.js";
import { recordName, words } from "./format.js";
import { html } from "./ui.js";

export const EVENT = "id at syncId deviceId repId actorId offlineId recordType recordId action attempt versionBefore versionAfter detail";

export function historyLink(recordType, recordId) {
  return `#/history?recordType=${encodeURIComponent(recordType)}&recordId=${encodeURIComponent(recordId)}`;
}

function timeIn(iso, timeZone) {
  return new Date(iso).toLocaleString(undefined, { timeZone, dateStyle: "short", timeStyle: "medium" });
}

function versions(event) {
  if (event.versionBefore === null && event.versionAfter === null) return "";
  return `v${event.versionBefore ?? "–"} → v${event.versionAfter ?? "–"}`;
}

export function HistoryTable({ events, directory, labels = {}, timeZone }) {
  return html`<table class="history"><thead><tr><th>When</th><th>Rep</th><th>Device</th><th>Record</th><th>What happened</th><th>Versions</th></tr></thead>
    <tbody>${events.map((e) => html`<tr key=${e.id} data-event=${e.id}>
      <td>${timeIn(e.at, timeZone)}</td>
      <td>${e.repId ? userName(directory, e.repId) : actorName(directory, e.actorId)}</td>
      <td>${e.deviceId ? deviceName(directory, e.deviceId) : "web"}</td>
      <td>${e.recordType ? html`<a href=${historyLink(e.recordType, e.recordId)}>${recordName(directory, e.recordType, e.recordId)}</a>` : "—"}</td>
      <td>${labels[e.action] ?? words(e.action)}${e.attempt > 1 ? html` <small>(try ${e.attempt})</small>` : ""}
        ${e.detail?.code ? html` <small>${words(e.detail.code)}</small>` : ""}</td>
      <td>${versions(e)}</td>
    </tr>`)}</tbody></table>`;
}
