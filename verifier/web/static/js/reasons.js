// The words of the service's reasons in the page's language.
//
// Every check in a verdict carries a stable `code` and its `params`; reasons.json (written
// by scripts/vendor_web from verifier/verdict.py's REASON_TEXTS, the one source of the
// words) gives each code a Chinese and an English template. A template names parameters
// in braces, {block}, or through a filter, {licenceType|type}: `type` (a licence type id,
// as its name), `statusReason` (a status-change reason code, as its words), `fields`
// (comma-separated field names, as their labels), `time` (an ISO time, as the page writes
// times). A code the table does not know is shown with the service's English words.

import { joinList, label, lang } from "./i18n.js";

let tablePromise = null;
let table = null;

/** Load reasons.json once; resolves to the table (or null when it cannot be had). */
export function loadReasons() {
  tablePromise ??= fetch("reasons.json", { cache: "no-cache" })
    .then((response) => {
      if (!response.ok) throw new Error(`reasons.json: HTTP ${response.status}`);
      return response.json();
    })
    .then((loaded) => {
      table = loaded;
      return table;
    })
    .catch(() => null);
  return tablePromise;
}

function fieldLabel(name, catalogue) {
  for (const type of catalogue?.types ?? []) {
    const spec = type.fields.find((f) => f.name === name);
    if (spec) return label(spec.label);
  }
  return name;
}

/** The words of a status-change reason code (licence/reasons.py) in the page's language. */
export function statusReasonText(code) {
  const entry = table?.statusReasons?.[String(code)];
  if (entry) return entry[lang()] ?? entry.zh;
  return lang() === "zh" ? `未知原因代码 ${code}` : `unknown reason code ${code}`;
}

function filtered(value, filter, { catalogue, time }) {
  if (filter === "type") {
    const type = catalogue?.types?.find((x) => x.id === value);
    return type ? label(type.name) : String(value);
  }
  if (filter === "statusReason") return statusReasonText(value);
  if (filter === "fields") return joinList(String(value).split(",").map((n) => fieldLabel(n, catalogue)));
  if (filter === "time" && time) return time(value);
  return String(value);
}

/**
 * The reason of one check (as the API answers it) in the page's language; the service's
 * English `reason` when the code is unknown here or a parameter is missing.
 */
export function checkReason(check, options = {}) {
  const entry = check.code ? table?.checks?.[check.code] : null;
  if (!entry) return check.reason;
  const params = check.params || {};
  let complete = true;
  const text = (entry[lang()] ?? entry.zh).replace(/\{(\w+)(?:\|(\w+))?\}/g, (_, name, filter) => {
    if (!(name in params)) {
      complete = false;
      return "";
    }
    return filtered(params[name], filter, options);
  });
  return complete ? text : check.reason;
}
