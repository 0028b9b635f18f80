// Sync Health: reps worst first, what blocks them, live. Talks to /graphql only.
"use strict";

const HEALTH = `query { syncHealth { reps {
  rep { id name } status lastSyncAt openConflicts
  devices { status openRefusals device { id name appVersion lastSyncAt queueDepth } }
  openRefusals { id code reason action attempts createdAt recordType recordId related { recordType recordId } }
  pushRefusals { id code reason createdAt }
} } }`;

let token = sessionStorage.getItem("fieldsync-token") || "";
let socket = null;

async function graphql(query, variables = {}) {
  const response = await fetch("/graphql", {
    method: "POST",
    headers: { "Content-Type": "application/json", Authorization: `Bearer ${token}` },
    body: JSON.stringify({ query, variables }),
  });
  const body = await response.json();
  if (body.errors) throw new Error(body.errors.map((e) => e.message).join("; "));
  return body.data;
}

function text(value) { return value == null ? "" : String(value); }
function when(iso) { return iso ? new Date(iso).toLocaleString() : "never"; }

function render(reps, highlight = new Set()) {
  const main = document.getElementById("reps");
  main.replaceChildren();
  if (!reps.length) { main.innerHTML = '<p class="empty">No reps yet.</p>'; return; }
  for (const health of reps) {
    const section = document.getElementById("rep-template").content.firstElementChild.cloneNode(true);
    section.querySelector(".name").textContent = health.rep.name;
    const badge = section.querySelector(".badge");
    badge.textContent = health.status.replace("_", " ").toLowerCase();
    badge.classList.add(health.status);
    section.querySelector(".meta").textContent =
      `Last sync ${when(health.lastSyncAt)} · ${health.openRefusals.length} refused · ` +
      `${health.pushRefusals.length} push refusals · ${health.openConflicts} conflicts`;
    for (const d of health.devices) {
      const li = document.createElement("li");
      li.className = d.status;
      li.textContent = `${d.device.name} (${d.device.id}) · queue ${text(d.device.queueDepth ?? "?")} · app ${text(d.device.appVersion ?? "?")}`;
      section.querySelector(".devices").append(li);
    }
    for (const r of [...health.openRefusals, ...health.pushRefusals]) {
      const row = document.createElement("tr");
      if (highlight.has(r.id)) row.classList.add("flash");
      const record = r.recordType ? `${r.recordType} ${r.recordId}` : "whole push";
      const fix = r.related ? ` → fix ${r.related.recordType} ${r.related.recordId}` : "";
      for (const cell of [when(r.createdAt), `${r.code}: ${r.reason}`, record + fix, text(r.attempts ?? 1)]) {
        const td = document.createElement("td");
        td.textContent = cell;
        row.append(td);
      }
      const action = document.createElement("td");
      const dismiss = document.createElement("button");
      dismiss.textContent = "Dismiss";
      dismiss.onclick = async () => {
        const note = prompt("Why dismiss it? (kept in the sync history)") ?? "";
        await graphql("mutation($id: ID!, $note: String){ dismissRefusal(id: $id, note: $note){ id } }", { id: r.id, note });
        refresh();
      };
      action.append(dismiss);
      row.append(action);
      section.querySelector("tbody").append(row);
    }
    main.append(section);
  }
}

async function refresh(highlight) {
  try {
    render((await graphql(HEALTH)).syncHealth.reps, highlight);
  } catch (error) {
    document.getElementById("reps").innerHTML = "";
    const p = document.createElement("p");
    p.className = "empty";
    p.textContent = error.message;
    document.getElementById("reps").append(p);
  }
}

function live() {
  if (socket) socket.close();
  const url = `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/graphql`;
  socket = new WebSocket(url, "graphql-transport-ws");
  const badge = document.getElementById("live");
  socket.onopen = () => socket.send(JSON.stringify({ type: "connection_init", payload: { authorization: `Bearer ${token}` } }));
  socket.onmessage = (message) => {
    const data = JSON.parse(message.data);
    if (data.type === "connection_ack") {
      badge.textContent = "live"; badge.className = "live on";
      socket.send(JSON.stringify({ id: "refusals", type: "subscribe", payload: { query: "subscription { refusalEvents { type refusal { id } } }" } }));
      socket.send(JSON.stringify({ id: "status", type: "subscribe", payload: { query: "subscription { syncStatus { status } }" } }));
    } else if (data.type === "ping") {
      socket.send(JSON.stringify({ type: "pong" }));
    } else if (data.type === "next") {
      const event = data.payload.data && data.payload.data.refusalEvents;
      refresh(new Set(event ? [event.refusal.id] : []));
    }
  };
  socket.onclose = () => { badge.textContent = "offline"; badge.className = "live off"; setTimeout(() => token && live(), 3000); };
}

document.getElementById("login").onsubmit = (event) => {
  event.preventDefault();
  token = document.getElementById("token").value.trim();
  sessionStorage.setItem("fieldsync-token", token);
  refresh();
  live();
};

if (token) { refresh(); live(); }
