// Conflicts: the device's and the server's versions side by side, the changed fields marked.
import { graphql } from "./api.js";
import { deviceName, fieldValue, loadRecords, withRecordNames } from "./directory.js";
import { fieldLabel, recordName, when } from "./format.js";
import { html, useEffect, useState } from "./ui.js";

const CONFLICTS = `{ conflicts(status: OPEN) { id recordType recordId deviceId rep { id name } baseVersion serverVersion
  deviceFields serverFields changedFields createdAt } }`;
const RESOLVE = "mutation($i: ResolveConflictInput!) { resolveConflict(input: $i) { conflict { id status } } }";

export function ConflictsPage({ directory, setDirectory }) {
  const [conflicts, setConflicts] = useState(null);
  const [error, setError] = useState(null);
  async function load() {
    try {
      const found = (await graphql(CONFLICTS)).conflicts;
      const outlets = found.flatMap((c) => [c.deviceFields?.outletId, c.serverFields?.outletId]).filter(Boolean);
      const records = await loadRecords([...found.map((c) => `${c.recordType}:${c.recordId}`), ...outlets.map((id) => `OUTLET:${id}`)]);
      setDirectory((d) => withRecordNames(d, records));
      setConflicts(found);
    } catch (failure) {
      setError(failure.message);
    }
  }
  useEffect(() => { load(); }, []);

  async function resolve(conflict, resolution) {
    await graphql(RESOLVE, { i: { conflictId: conflict.id, resolution } });
    load();
  }

  if (error) return html`<p class="error" role="alert">${error}</p>`;
  if (!conflicts) return html`<p aria-busy="true">Loading conflicts…</p>`;
  if (!conflicts.length) return html`<p class="empty">No open conflicts.</p>`;
  return html`${conflicts.map((c) => {
    const names = [...new Set([...Object.keys(c.deviceFields || {}), ...Object.keys(c.serverFields || {})])];
    const changed = new Set(c.changedFields);
    return html`<article key=${c.id} class="conflict" data-conflict=${c.id}>
      <header><strong>${recordName(directory, c.recordType, c.recordId)}</strong>${" · "}
        ${[`${c.rep?.name ?? "?"} on ${deviceName(directory, c.deviceId)}`, when(c.createdAt)].join(" · ")}</header>
      <table><thead><tr><th>Field</th><th>On the device (made on version ${c.baseVersion ?? "none"})</th>
        <th>On the server (version ${c.serverVersion})</th></tr></thead>
      <tbody>${names.map((name) => html`<tr key=${name} class=${changed.has(name) ? "changed" : ""}>
        <th>${fieldLabel(name)}</th><td>${fieldValue(directory, name, c.deviceFields?.[name])}</td><td>${fieldValue(directory, name, c.serverFields?.[name])}</td></tr>`)}</tbody></table>
      <footer class="actions">
        <button class="outline" onClick=${() => resolve(c, "OVERWRITE")}>Keep the device's version</button>
        <button class="outline secondary" onClick=${() => resolve(c, "DISCARD")}>Keep the server's version</button>
      </footer>
    </article>`;
  })}`;
}
