// Devices (FieldKo's "Sync Activity"): every device, the ones needing attention first.
import { graphql } from "./api.js";
import { ago, badge, when } from "./format.js";
import { useLive } from "./live.js";
import { html, useEffect, useState } from "./ui.js";

const DEVICES = `{ devices { id name platform appVersion lastSyncAt queueDepth queueGrowingSince revokedAt status
  user { id name } } }`;
const ORDER = { BACKLOGGED: 0, STALE: 1, NEEDS_ATTENTION: 2, HEALTHY: 3 };
const STATUS = "subscription { syncStatus { status device { id } } }";

function trend(device) {
  if (device.queueDepth === null) return "not reported";
  if (device.queueGrowingSince) return html`<span class="growing">↑ not going down since ${when(device.queueGrowingSince)}</span>`;
  return device.queueDepth === 0 ? "empty" : "↓ draining";
}

export function DevicesPage() {
  const [devices, setDevices] = useState(null);
  const [error, setError] = useState(null);
  async function load() {
    try {
      const list = (await graphql(DEVICES)).devices;
      list.sort((a, b) => (a.revokedAt ? 1 : 0) - (b.revokedAt ? 1 : 0) || ORDER[a.status] - ORDER[b.status]
        || (a.lastSyncAt || "").localeCompare(b.lastSyncAt || ""));
      setDevices(list);
    } catch (failure) {
      setError(failure.message);
    }
  }
  useEffect(() => { load(); }, []);
  useLive([[STATUS, null]], load);

  async function revoke(device) {
    if (!confirm(`Revoke ${device.name} of ${device.user?.name}? Its token stops working at once; the rep registers the phone again.`)) return;
    await graphql("mutation($d: ID!) { revokeDevice(deviceId: $d) { id } }", { d: device.id });
    load();
  }

  if (error) return html`<p class="error" role="alert">${error}</p>`;
  if (!devices) return html`<p aria-busy="true">Loading devices…</p>`;
  if (!devices.length) return html`<p class="empty">No device has registered yet.</p>`;
  return html`<table class="devices-table">
    <thead><tr><th>Status</th><th>Rep</th><th>Device</th><th>Last sync</th><th>Queue</th><th>Trend</th><th>App</th><th></th></tr></thead>
    <tbody>${devices.map((d) => html`<tr key=${d.id} data-device=${d.id} class=${d.revokedAt ? "revoked" : ""}>
      <td>${d.revokedAt ? badge("REVOKED") : badge(d.status)}</td>
      <td>${d.user?.name ?? "—"}</td>
      <td>${d.name} <small>${d.platform}</small></td>
      <td title=${when(d.lastSyncAt)}>${ago(d.lastSyncAt)}</td>
      <td>${d.queueDepth ?? "?"}</td>
      <td>${trend(d)}</td>
      <td>${d.appVersion ?? "?"}</td>
      <td>${d.revokedAt ? html`<small>revoked ${when(d.revokedAt)}</small>` : html`<button class="outline secondary small" onClick=${() => revoke(d)}>Revoke</button>`}</td>
    </tr>`)}</tbody></table>`;
}
