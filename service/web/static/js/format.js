// How the console says things: names for ids, local times, words for codes.
import { html } from "./ui.js";

export function when(iso) {
  if (!iso) return "never";
  return new Date(iso).toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" });
}

export function ago(iso) {
  if (!iso) return "never";
  const minutes = Math.round((Date.now() - new Date(iso)) / 60000);
  if (minutes < 1) return "just now";
  if (minutes < 60) return `${minutes} min ago`;
  const hours = Math.round(minutes / 60);
  if (hours < 48) return `${hours} h ago`;
  return `${Math.round(hours / 24)} days ago`;
}

// RECORD_LOCKED -> "Record locked", checkInLatitude -> "Check in latitude".
export function words(code) {
  if (!code) return "";
  const spaced = code.includes("_") ? code.replaceAll("_", " ") : code.replace(/([a-z0-9])([A-Z])/g, "$1 $2");
  return spaced.toLowerCase().replace(/^./, (c) => c.toUpperCase());
}

// A field's label: outletId -> "Outlet", repIds -> "Reps", checkInLatitude -> "Check in latitude".
export function fieldLabel(name) {
  return words(name.replace(/Ids$/, "s").replace(/Id$/, ""));
}

export function plural(count, one, many = `${one}s`) {
  return `${count} ${count === 1 ? one : many}`;
}

export function badge(status) {
  return html`<mark class=${`badge ${status}`}>${words(status)}</mark>`;
}

// A record as a person reads it: its name when the directory knows it, else type and id.
export function recordName(directory, recordType, recordId) {
  const name = directory.recordNames.get(`${recordType}:${recordId}`);
  const type = words(recordType);
  return name ? `${type} “${name}”` : `${type} ${recordId}`;
}
