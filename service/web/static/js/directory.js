// Names for ids: people, devices and records, loaded in bulk and kept for the session.
import { graphql } from "./api.js";

export function emptyDirectory() {
  return { users: new Map(), devices: new Map(), recordNames: new Map() };
}

export async function loadDirectory(directory) {
  const data = await graphql("{ users { id name role active } devices { id name platform userId revokedAt } }");
  return {
    ...directory,
    users: new Map(data.users.map((u) => [u.id, u])),
    devices: new Map(data.devices.map((d) => [d.id, d])),
  };
}

export function userName(directory, id) {
  return id ? directory.users.get(id)?.name ?? id : "—";
}

export function deviceName(directory, id) {
  if (!id) return "—";
  const device = directory.devices.get(id);
  return device ? `${device.name} (${device.platform})` : id;
}

// Who did something, from the history's actor ("user:<id>" for web writes, "device:<id>").
export function actorName(directory, actor) {
  const [kind, id] = (actor || "").split(/:(.*)/s);
  if (kind === "user") return userName(directory, id);
  if (kind === "device") return deviceName(directory, id);
  return actor || "—";
}

// A record's field as a person reads it: people and outlets by name.
export function fieldValue(directory, name, v) {
  if (name === "repId") return userName(directory, v);
  if (name === "repIds" && Array.isArray(v)) return v.map((id) => userName(directory, id)).join(", ");
  if (name === "outletId" && v) return directory.recordNames.get(`OUTLET:${v}`) ?? v;
  if (v === null || v === undefined) return "—";
  return typeof v === "object" ? JSON.stringify(v) : String(v);
}

const ALIASES_PER_CALL = 25; // the service allows 30 aliases per operation

// The current envelopes of records, by "TYPE:id" (null when there is none).
export async function loadRecords(keys) {
  const unique = [...new Set(keys)];
  const found = new Map();
  for (let start = 0; start < unique.length; start += ALIASES_PER_CALL) {
    const chunk = unique.slice(start, start + ALIASES_PER_CALL);
    const variables = {};
    const fields = chunk.map((key, i) => {
      const [type, id] = key.split(/:(.*)/s);
      variables[`t${i}`] = type;
      variables[`i${i}`] = id;
      return `r${i}: record(recordType: $t${i}, recordId: $i${i}) { recordType recordId version deleted fields updatedAt }`;
    });
    const declared = chunk.map((_, i) => `$t${i}: RecordType!, $i${i}: ID!`).join(", ");
    const data = await graphql(`query(${declared}) { ${fields.join(" ")} }`, variables);
    chunk.forEach((key, i) => found.set(key, data[`r${i}`]));
  }
  return found;
}

export function withRecordNames(directory, records) {
  const recordNames = new Map(directory.recordNames);
  for (const [key, record] of records) {
    const f = record?.fields || {};
    const name = f.name || f.description || f.sku;
    if (name) recordNames.set(key, String(name));
  }
  return { ...directory, recordNames };
}
