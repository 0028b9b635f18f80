// The form that fixes the data a refusal points to: writeRecord on exactly that record.
import { graphql } from "./api.js";
import { html, useState } from "./ui.js";
import { fieldLabel, words } from "./format.js";

// The fields a refusal code is about, shown first (and shown even when the record lacks them).
const FIELDS_FOR_CODE = {
  OUTLET_NO_COORDINATES: ["latitude", "longitude"],
  OUTSIDE_GEOFENCE: ["latitude", "longitude", "geofenceRadiusM"],
  OUTLET_INACTIVE: ["active"],
  OUTLET_NOT_FOUND: ["name", "address", "city", "latitude", "longitude"],
  PRODUCT_NOT_FOUND: ["sku", "name", "unitPrice", "active"],
  PRODUCT_INACTIVE: ["active"],
};
const NUMBERS = new Set(["latitude", "longitude", "geofenceRadiusM", "unitPrice", "quantity"]);
const BOOLEANS = new Set(["active"]);
const WRITTEN_BY_SERVER = new Set(["deleted", "repIds", "tags", "notes"]);
// SHARED records take a patch merged per field; the others take the whole record.
const PATCHED = new Set(["OUTLET"]);

const WRITE = `mutation($i: WriteRecordInput!) { writeRecord(input: $i) {
  status record { version fields } conflict { id } refusal { code reason } } }`;

function editable(record, code) {
  const fields = record?.fields || {};
  const first = FIELDS_FOR_CODE[code] || [];
  const rest = Object.keys(fields).filter(
    (name) => !first.includes(name) && !WRITTEN_BY_SERVER.has(name) && typeof fields[name] !== "object",
  );
  return [...first, ...rest];
}

function parse(name, raw, before) {
  if (BOOLEANS.has(name) || typeof before === "boolean") return raw === true || raw === "true" || raw === "on";
  if (raw === "") return null;
  if (NUMBERS.has(name) || typeof before === "number") {
    const number = Number(raw);
    if (Number.isNaN(number)) throw new Error(`${words(name)} must be a number`);
    return number;
  }
  return raw;
}

export function RecordForm({ recordType, recordId, record, code, onWritten }) {
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);
  const names = editable(record, code);
  const fields = record?.fields || {};

  async function submit(event) {
    event.preventDefault();
    const form = new FormData(event.target);
    try {
      const changes = {};
      for (const name of names) {
        const raw = BOOLEANS.has(name) || typeof fields[name] === "boolean" ? form.get(name) === "on" : form.get(name);
        const next = parse(name, raw, fields[name]);
        if (next !== (fields[name] ?? null)) changes[name] = next;
      }
      if (!Object.keys(changes).length) throw new Error("nothing changed");
      setBusy(true);
      const input = {
        recordType,
        recordId,
        fields: PATCHED.has(recordType) ? changes : { ...fields, ...changes },
        baseVersion: record ? record.version : null,
      };
      const result = (await graphql(WRITE, { i: input })).writeRecord;
      if (result.refusal) throw new Error(`${words(result.refusal.code)}: ${result.refusal.reason}`);
      if (result.conflict) throw new Error("someone else changed this record meanwhile: reload and try again");
      setError(null);
      onWritten(result);
    } catch (failure) {
      setError(failure.message);
    } finally {
      setBusy(false);
    }
  }

  return html`<form class="record-form" onSubmit=${submit}>
    <div class="grid-fields">
      ${names.map((name) => {
        const current = fields[name];
        const boolean = BOOLEANS.has(name) || typeof current === "boolean";
        return html`<label key=${name}>${fieldLabel(name)}
          ${boolean
            ? html`<input type="checkbox" role="switch" name=${name} checked=${current === true} />`
            : html`<input name=${name} value=${current ?? ""} inputmode=${NUMBERS.has(name) ? "decimal" : "text"}
                placeholder=${current === undefined ? "missing" : ""} aria-invalid=${current === undefined && (FIELDS_FOR_CODE[code] || []).includes(name) ? "true" : undefined} />`}
        </label>`;
      })}
    </div>
    ${error && html`<p class="error" role="alert">${error}</p>`}
    <button type="submit" aria-busy=${busy}>Save ${words(recordType).toLowerCase()}</button>
  </form>`;
}
