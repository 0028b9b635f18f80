// Sync Health: reps worst first; each refusal opens into its reason, what was sent, the data at
// fault and the forms that clear it (fix the data, assign the outlet, dismiss with a note).
import { graphql } from "./api.js";
import { deviceName, fieldValue, loadRecords, withRecordNames } from "./directory.js";
import { ago, badge, fieldLabel, plural, recordName, when, words } from "./format.js";
import { RecordForm } from "./record_form.js";
import { useLive } from "./live.js";
import { html, useEffect, useState } from "./ui.js";

const REFUSAL = `id code reason field action status attempts createdAt note recordType recordId offlineId deviceId
  change related { recordType recordId }`;
const HEALTH = `{ syncHealth { generatedAt reps {
  rep { id name } status lastSyncAt openConflicts
  devices { status openRefusals device { id name platform appVersion lastSyncAt queueDepth revokedAt } }
  openRefusals { ${REFUSAL} }
  pushRefusals { id code reason createdAt deviceId }
} } }`;
const DISMISS = "mutation($id: ID!, $note: String) { dismissRefusal(id: $id, note: $note) { id status } }";
const ASSIGNABLE = new Set(["OUT_OF_SCOPE", "OUTLET_NOT_ASSIGNED"]);
const EVENTS = `subscription { refusalEvents { type refusal { ${REFUSAL} repId } } }`;
const STATUS = "subscription { syncStatus { status device { id } } }";

// The refused record as a person reads it: "Visit at Kedai Ali" when it names its outlet.
function refusedRecord(directory, refusal) {
  const outletId = refusal.change?.fields?.outletId;
  const outlet = outletId && directory.recordNames.get(`OUTLET:${outletId}`);
  if (refusal.recordType !== "OUTLET" && outlet) return `${words(refusal.recordType)} at ${outlet}`;
  return recordName(directory, refusal.recordType, refusal.recordId);
}

function target(refusal) {
  return refusal.related || (refusal.recordType ? { recordType: refusal.recordType, recordId: refusal.recordId } : null);
}

function key(ref) {
  return `${ref.recordType}:${ref.recordId}`;
}

export function HealthPage({ directory, setDirectory }) {
  const [reps, setReps] = useState(null);
  const [records, setRecords] = useState(new Map());
  const [open, setOpen] = useState(null);
  const [waiting, setWaiting] = useState(new Set()); // fixed here: waiting for the rep's next sync
  const [closed, setClosed] = useState(new Map()); // refusals that cleared while the page was open
  const [fresh, setFresh] = useState(new Set()); // arrived live: highlighted once
  const [error, setError] = useState(null);

  async function load() {
    try {
      const data = await graphql(HEALTH);
      const targets = data.syncHealth.reps.flatMap((r) => r.openRefusals.map(target).filter(Boolean).map(key));
      const loaded = await loadRecords(targets);
      setRecords(loaded);
      setDirectory((d) => withRecordNames(d, loaded));
      setReps(data.syncHealth.reps);
      setError(null);
    } catch (failure) {
      setError(failure.message);
    }
  }

  useEffect(() => { load(); }, []);
  useLive([[EVENTS, onRefusalEvent], [STATUS, null]], load);

  function onRefusalEvent(data) {
    const { type, refusal } = data.refusalEvents;
    if (type === "CREATED") setFresh((s) => new Set(s).add(refusal.id));
    if (["RESOLVED", "DISMISSED", "ACKNOWLEDGED"].includes(type)) {
      setClosed((m) => new Map(m).set(refusal.id, { ...refusal, status: type }));
    }
  }

  function forget(id) {
    setFresh((s) => { const next = new Set(s); next.delete(id); return next; });
  }

  if (error) return html`<p class="error" role="alert">${error}</p>`;
  if (!reps) return html`<p aria-busy="true">Loading sync health…</p>`;
  if (!reps.length) return html`<p class="empty">No reps yet. Add reps with <code>fieldsync users create --role REP</code>.</p>`;
  return html`<div class="health">
    ${reps.map((health) => html`<${RepCard} key=${health.rep.id} health=${health} directory=${directory}
      records=${records} open=${open} setOpen=${setOpen} waiting=${waiting} fresh=${fresh} forget=${forget}
      closed=${[...closed.values()].filter((r) => r.repId === health.rep.id)}
      onFixed=${(id) => { setWaiting((s) => new Set(s).add(id)); load(); }}
      onDismissed=${(refusal) => { setClosed((m) => new Map(m).set(refusal.id, { ...refusal, repId: health.rep.id, status: "DISMISSED" })); load(); }} />`)}
  </div>`;
}

function RepCard({ health, directory, records, open, setOpen, waiting, fresh, forget, closed, onFixed, onDismissed }) {
  const openIds = new Set(health.openRefusals.map((r) => r.id));
  const cleared = closed.filter((r) => !openIds.has(r.id));
  return html`<article class=${`rep ${health.status}`} data-rep=${health.rep.name}>
    <header>
      <h3>${health.rep.name} ${badge(health.status)}</h3>
      <small>${[`Last sync ${ago(health.lastSyncAt)}`, plural(health.openRefusals.length, "refused record"),
        plural(health.pushRefusals.length, "push refusal"), plural(health.openConflicts, "open conflict")].join(" · ")}</small>
      <ul class="devices">${health.devices.map((d) => html`<li key=${d.device.id}>${badge(d.status)}${" "}
        ${[d.device.name, d.device.platform, `app ${d.device.appVersion ?? "?"}`, `queue ${d.device.queueDepth ?? "?"}`,
          `synced ${ago(d.device.lastSyncAt)}`, ...(d.device.revokedAt ? ["revoked"] : [])].join(" · ")}</li>`)}</ul>
    </header>
    ${health.openRefusals.length + cleared.length > 0 && html`<table class="refusals">
      <thead><tr><th>Record</th><th>Why it was refused</th><th>From</th><th>Tries</th><th>Status</th></tr></thead>
      <tbody>
        ${health.openRefusals.map((refusal) => html`<${RefusalRow} key=${refusal.id} refusal=${refusal}
          directory=${directory} records=${records} rep=${health.rep} isOpen=${open === refusal.id}
          toggle=${() => setOpen(open === refusal.id ? null : refusal.id)} waiting=${waiting.has(refusal.id)}
          fresh=${fresh.has(refusal.id)} forget=${forget} onFixed=${onFixed} onDismissed=${onDismissed} />`)}
        ${cleared.map((refusal) => html`<tr key=${refusal.id} class="cleared" data-refusal=${refusal.id}>
          <td>${refusedRecord(directory, refusal)}</td><td>${words(refusal.code)}</td>
          <td>${deviceName(directory, refusal.deviceId)}</td><td>${refusal.attempts}</td>
          <td class="status">${badge(refusal.status)}</td></tr>`)}
      </tbody></table>`}
    ${health.pushRefusals.length > 0 && html`<details><summary>${plural(health.pushRefusals.length, "whole push", "whole pushes")} turned away</summary>
      <table><tbody>${health.pushRefusals.map((p) => html`<tr key=${p.id}><td>${when(p.createdAt)}</td>
        <td>${deviceName(directory, p.deviceId)}</td><td><strong>${words(p.code)}</strong>: ${p.reason}</td></tr>`)}</tbody></table>
    </details>`}
  </article>`;
}

function RefusalRow({ refusal, directory, records, rep, isOpen, toggle, waiting, fresh, forget, onFixed, onDismissed }) {
  useEffect(() => { if (fresh) { const t = setTimeout(() => forget(refusal.id), 4000); return () => clearTimeout(t); } }, [fresh]);
  const status = waiting ? html`<mark class="badge WAITING">Fixed · waiting for ${rep.name}'s next sync</mark>` : badge(refusal.status);
  return html`
    <tr class=${`refusal ${fresh ? "flash" : ""} ${isOpen ? "open" : ""}`} data-refusal=${refusal.id} onClick=${toggle}>
      <td><a href="#" onClick=${(e) => e.preventDefault()}>${refusedRecord(directory, refusal)}</a>
        <br /><small>${when(refusal.createdAt)}</small></td>
      <td><strong>${words(refusal.code)}</strong><br />${refusal.reason}</td>
      <td>${deviceName(directory, refusal.deviceId)}</td>
      <td>${refusal.attempts}</td>
      <td class="status">${status}</td>
    </tr>
    ${isOpen && html`<tr class="detail"><td colspan="5"><${RefusalDetail} refusal=${refusal} directory=${directory}
      records=${records} rep=${rep} onFixed=${onFixed} onDismissed=${onDismissed} /></td></tr>`}`;
}

// What the device sent: the record's fields as the rep entered them (the rest of the change folded away).
function SentChange({ change, directory }) {
  const { fields, ...rest } = change;
  return html`<details open class="sent"><summary>What the device sent</summary>
    ${fields && html`<table class="fields"><tbody>${Object.entries(fields).map(([name, v]) => html`<tr key=${name}>
      <th>${fieldLabel(name)}</th><td>${fieldValue(directory, name, v)}</td></tr>`)}</tbody></table>`}
    <details><summary><small>The whole change</small></summary><pre>${JSON.stringify(rest, null, 2)}</pre></details>
  </details>`;
}

function RefusalDetail({ refusal, directory, records, rep, onFixed, onDismissed }) {
  const [message, setMessage] = useState(null);
  const ref = target(refusal);
  const record = ref ? records.get(key(ref)) : null;
  const outletId = ref && ref.recordType === "OUTLET" ? ref.recordId : null;

  async function assign() {
    const repIds = [...new Set([...(record?.fields?.repIds || []), rep.id])];
    const result = await graphql(
      "mutation($i: WriteRecordInput!) { writeRecord(input: $i) { status refusal { reason } } }",
      { i: { recordType: "OUTLET", recordId: outletId, fields: { repIds } } },
    );
    if (result.writeRecord.refusal) setMessage(result.writeRecord.refusal.reason);
    else onFixed(refusal.id);
  }

  async function dismiss(event) {
    event.preventDefault();
    const note = new FormData(event.target).get("note");
    await graphql(DISMISS, { id: refusal.id, note });
    onDismissed(refusal);
  }

  return html`<div class="refusal-detail">
    <p><strong>${words(refusal.code)}</strong> (${refusal.action === "FIX_DATA" ? "blocks the queue until the data is fixed" : "the rep acknowledges it"}):${" "}
      ${refusal.reason}${refusal.field ? html` <small>Field: <code>${refusal.field}</code></small>` : ""}</p>
    <p><small>Sent from ${deviceName(directory, refusal.deviceId)} · change ${refusal.offlineId} · tried ${plural(refusal.attempts, "time")}</small></p>
    ${refusal.change && html`<${SentChange} change=${refusal.change} directory=${directory} />`}
    <div class="grid">
      ${ref && html`<section>
        <h4>${record ? `${recordName(directory, ref.recordType, ref.recordId)} now (version ${record.version})` : `${words(ref.recordType)} ${ref.recordId} does not exist yet`}</h4>
        ${record && html`<table class="fields"><tbody>${Object.entries(record.fields || {}).map(([name, v]) => html`<tr key=${name}>
          <th>${fieldLabel(name)}</th><td>${fieldValue(directory, name, v)}</td></tr>`)}</tbody></table>`}
        <h5>Fix the data</h5>
        <${RecordForm} recordType=${ref.recordType} recordId=${ref.recordId} record=${record} code=${refusal.code}
          onWritten=${() => onFixed(refusal.id)} />
        ${outletId && ASSIGNABLE.has(refusal.code) && html`<button class="secondary" onClick=${assign}>Assign this outlet to ${rep.name}</button>`}
        ${message && html`<p class="error">${message}</p>`}
      </section>`}
      <section>
        <h5>Or dismiss it</h5>
        <form class="dismiss" onSubmit=${dismiss}>
          <textarea name="note" required placeholder="Why (kept in the sync history; the rep's device drops the change)"></textarea>
          <button type="submit" class="contrast">Dismiss</button>
        </form>
      </section>
    </div>
  </div>`;
}
