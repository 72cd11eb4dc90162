// A licence document in the browser, read as strictly as the service reads it
// (licence/document.py: unknown members, duplicate keys, malformed hex, a wrong EIP-55
// checksum are refused, naming the member), and its hashes (docs/format.md "Hashing"):
// the licence id and the root its proof leads to, in both hash suites. Field values are
// judged by the catalogue's rules as licence/fields.py judges them, so that a TAMPERED
// verdict names the same fields.

import { commitmentOf, hexToBytes, parseJson, saltOf } from "../elformat.js";
import { keccak_256 } from "../../vendor/noble-hashes/sha3.js";

const FORMAT = "elicence/1";
const DEFAULT_SUITE = "sha256-128";
const MAX_DOCUMENT_BYTES = 64 * 1024;
const MAX_PROOF_LENGTH = 40;
const DIGEST_BYTES = 16;
const HEX_DIGEST = /^0x[0-9a-f]{32}$/;
const HEX_SEAL = /^0x[0-9a-f]{128}$/;
const ADDRESS = /^0x[0-9a-fA-F]{40}$/;
const utf8 = new TextEncoder();

/** A document the service would refuse to verify; `code` is "document", or
 * "unsupported-hash-suite" for a suite this page cannot compute, or "type.unavailable"
 * for a licence type version the trust snapshot does not hold (in both cases the licence
 * may be genuine: no verdict, never TAMPERED). `path` names the member at fault. */
export class DocumentRefused extends Error {
  constructor(path, reason, code = "document") {
    super(path ? `${path}: ${reason}` : reason);
    this.path = path;
    this.reason = reason;
    this.code = code;
  }
}

// ---------------------------------------------------------------- hashes of a suite

async function sha256(data) {
  return new Uint8Array(await crypto.subtle.digest("SHA-256", data));
}

function sm3(data) {
  return hexToBytes("0x" + globalThis.sm3(data));
}

const HASHES = { "sha256-128": sha256, "sm3-128": sm3 };

/** True when this page can compute the suite named (sm3-128 needs the vendored SM3). */
export function knowsSuite(name) {
  if (typeof name !== "string" || !Object.hasOwn(HASHES, name)) return false;
  return name !== "sm3-128" || typeof globalThis.sm3 === "function";
}

async function h(suite, data) {
  return (await HASHES[suite](data)).slice(0, DIGEST_BYTES);
}

function concat(...parts) {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}

function toHex(bytes) {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

function compareBytes(a, b) {
  for (let i = 0; i < a.length; i += 1) if (a[i] !== b[i]) return a[i] - b[i];
  return 0;
}

/** Each present field's commitment, disclosed or hidden, in catalogue order (hex, 0x). */
async function commitments(doc) {
  const secret = doc.secret ? hexToBytes(doc.secret) : null;
  const result = {};
  for (const spec of doc.type.fields) {
    const name = spec.name;
    if (Object.hasOwn(doc.fields, name)) {
      const salt = secret ? await saltOf(secret, name, doc.suite) : hexToBytes(doc.salts[name]);
      result[name] = "0x" + toHex(await commitmentOf(name, doc.fields[name], salt, doc.suite));
    } else if (Object.hasOwn(doc.hidden, name)) {
      result[name] = doc.hidden[name];
    }
  }
  return result;
}

/** The licence id (the Merkle leaf): H(0x00 || JCS({commitments, format, hashSuite, type})). */
export async function licenceId(doc) {
  const committed = await commitments(doc);
  // Keys sorted by UTF-16 code units (JCS), which is what Array.prototype.sort compares.
  const sorted = {};
  for (const name of Object.keys(committed).sort()) sorted[name] = committed[name];
  const body = JSON.stringify({ commitments: sorted, format: FORMAT, hashSuite: doc.suite, type: doc.type.id });
  return h(doc.suite, concat(Uint8Array.of(0x00), utf8.encode(body)));
}

/** The root the licence id and the proof lead to (inner node H(0x01 || min || max)). */
export async function computedRoot(doc, leaf) {
  let node = leaf;
  for (const sibling of doc.anchorJson.proof.map(hexToBytes)) {
    const [a, b] = compareBytes(node, sibling) <= 0 ? [node, sibling] : [sibling, node];
    node = await h(doc.suite, concat(Uint8Array.of(0x01), a, b));
  }
  return node;
}

// ---------------------------------------------------------------- strict reading

export const MAX_TYPE_VERSION = 65535;

/** The licence type version that `matches` picks (documents name the id, payloads the
 * code; both the version, 1 when a document names none), or throws "type.unavailable":
 * the snapshot does not hold it, so the licence cannot be checked here (as the service's
 * TypeUnavailable, verifier/type_loading.py). */
export function typeVersionOf(catalogue, matches, version, named) {
  const found = catalogue.types.find((type) => matches(type) && (type.version ?? 1) === version);
  if (!found) {
    throw new DocumentRefused(
      "type",
      `licence type ${named} version ${version} is not in the trust snapshot (not published when it was exported, or unreadable): it cannot be checked here`,
      "type.unavailable",
    );
  }
  return found;
}

/** The EIP-55 form of a lower-case 0x address. */
export function checksummed(address) {
  const digits = address.slice(2);
  const nibbles = toHex(keccak_256(utf8.encode(digits)));
  let out = "0x";
  for (let i = 0; i < digits.length; i += 1) {
    out += parseInt(nibbles[i], 16) >= 8 ? digits[i].toUpperCase() : digits[i];
  }
  return out;
}

function jsonType(value) {
  if (value === null) return "null";
  if (typeof value === "boolean") return "a boolean";
  if (typeof value === "number" || typeof value === "bigint") return "a number";
  if (typeof value === "string") return "a string";
  if (Array.isArray(value)) return "a list";
  return "an object";
}

function object(raw, path) {
  if (raw === null || typeof raw !== "object" || Array.isArray(raw)) {
    throw new DocumentRefused(path, `must be a JSON object, not ${jsonType(raw)}`);
  }
  return raw;
}

function string(raw, path) {
  if (typeof raw !== "string") throw new DocumentRefused(path, `must be a string, not ${jsonType(raw)}`);
  return raw;
}

function digest(raw, path) {
  if (!HEX_DIGEST.test(string(raw, path))) {
    throw new DocumentRefused(path, "must be 0x followed by 32 lowercase hex digits");
  }
  return raw;
}

function onlyMembers(obj, path, required, optional) {
  const prefix = path ? `${path}.` : "";
  for (const name of [...required].sort()) {
    if (!Object.hasOwn(obj, name)) throw new DocumentRefused(prefix + name, "is missing");
  }
  for (const name of Object.keys(obj).sort()) {
    if (!required.includes(name) && !optional.includes(name)) {
      throw new DocumentRefused(prefix + name, "is not a member of an elicence/1 document");
    }
  }
}

const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

/** Refuses what JSON.parse lets through but the service's reader does not: a key twice
 * in one object (JSON.parse keeps the last) and a number with a fraction or exponent
 * (JSON.parse reads 1.0 as 1; Python reads a float, which no member of a document is). */
function refuseLaxJson(text) {
  const stack = [];
  let i = 0;
  while (i < text.length) {
    const c = text[i];
    if (c === '"') {
      let end = i + 1;
      while (text[end] !== '"') end += text[end] === "\\" ? 2 : 1;
      const top = stack[stack.length - 1];
      if (top && top.keys && top.expectKey) {
        const key = JSON.parse(text.slice(i, end + 1));
        if (top.keys.has(key)) throw new DocumentRefused(key, "appears twice in one object");
        top.keys.add(key);
        top.expectKey = false;
      }
      i = end + 1;
      continue;
    }
    if (c === "-" || (c >= "0" && c <= "9")) {
      const number = /^-?[0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+)?/.exec(text.slice(i, i + 400))[0];
      if (/[.eE]/.test(number)) throw new DocumentRefused("", `${number} is not a whole number`);
      i += number.length;
      continue;
    }
    if (c === "{") stack.push({ keys: new Set(), expectKey: true });
    else if (c === "[") stack.push({ keys: null });
    else if (c === "}" || c === "]") stack.pop();
    else if (c === ",") {
      const top = stack[stack.length - 1];
      if (top && top.keys) top.expectKey = true;
    }
    i += 1;
  }
}

/** A document from JSON text, as licence.document.loads_document reads it. */
export function loadsDocument(text, catalogue) {
  const size = utf8.encode(text).length;
  if (size > MAX_DOCUMENT_BYTES) {
    throw new DocumentRefused("", `document is ${size} bytes; the limit is ${MAX_DOCUMENT_BYTES}`);
  }
  let raw;
  try {
    raw = parseJson(text);
  } catch (exc) {
    throw new DocumentRefused("", `not JSON: ${exc.message}`);
  }
  refuseLaxJson(text.replace(/^\uFEFF/, ""));
  return parseDocument(raw, catalogue);
}

/** A document from a decoded JSON value, as licence.document.parse_document checks it:
 * {type, suite, fields, secret, salts, hidden, anchorJson}, hex as in the file. */
export function parseDocument(raw, catalogue) {
  const obj = object(raw, "");
  onlyMembers(obj, "", ["format", "type", "fields", "anchor"], ["hashSuite", "typeVersion", "secret", "salts", "hidden"]);
  if (obj.format !== FORMAT) {
    throw new DocumentRefused("format", `unsupported format ${JSON.stringify(obj.format)}`);
  }
  const suite = string(obj.hashSuite ?? DEFAULT_SUITE, "hashSuite");
  if (!knowsSuite(suite)) {
    throw new DocumentRefused("hashSuite", `unsupported hash suite ${suite}`, "unsupported-hash-suite");
  }
  const typeId = string(obj.type, "type");
  const version = obj.typeVersion ?? 1;
  if (!Number.isSafeInteger(version) || version < 1 || version > MAX_TYPE_VERSION) {
    throw new DocumentRefused("typeVersion", `must be a whole number from 1 to ${MAX_TYPE_VERSION}`);
  }
  const type = typeVersionOf(catalogue, (t) => t.id === typeId, version, JSON.stringify(typeId));
  const fieldOf = (name) => type.fields.find((f) => f.name === name);

  const fields = object(obj.fields, "fields");
  for (const [name, value] of Object.entries(fields)) {
    if (!fieldOf(name)) throw new DocumentRefused(`fields.${name}`, `is not a field of ${type.id}`);
    if (LONE_SURROGATE.test(string(value, `fields.${name}`))) {
      throw new DocumentRefused(`fields.${name}`, "contains an unpaired surrogate (not Unicode text)");
    }
  }
  let secret = null;
  let salts = {};
  let hidden = {};
  if (Object.hasOwn(obj, "secret")) {
    for (const member of ["salts", "hidden"]) {
      if (Object.hasOwn(obj, member)) {
        throw new DocumentRefused(member, "a full document has a secret and no salts or hidden fields");
      }
    }
    secret = digest(obj.secret, "secret");
  } else {
    if (!Object.hasOwn(obj, "salts")) {
      throw new DocumentRefused("secret", "missing: a document needs a secret (or, as a presentation, salts)");
    }
    salts = {};
    for (const [k, v] of Object.entries(object(obj.salts, "salts"))) salts[k] = digest(v, `salts.${k}`);
    hidden = {};
    for (const [k, v] of Object.entries(object(obj.hidden ?? {}, "hidden"))) hidden[k] = digest(v, `hidden.${k}`);
    const missing = Object.keys(fields).filter((n) => !Object.hasOwn(salts, n)).sort();
    const extra = Object.keys(salts).filter((n) => !Object.hasOwn(fields, n)).sort();
    if (missing.length || extra.length) {
      throw new DocumentRefused(`salts.${(missing.length ? missing : extra)[0]}`, "every disclosed field needs exactly one salt");
    }
    for (const name of Object.keys(hidden)) {
      if (!fieldOf(name)) throw new DocumentRefused(`hidden.${name}`, `is not a field of ${type.id}`);
      if (Object.hasOwn(fields, name)) throw new DocumentRefused(`hidden.${name}`, "is both disclosed and hidden");
      if (type.mandatoryDisclosure.includes(name)) throw new DocumentRefused(`hidden.${name}`, "must always be disclosed");
    }
  }
  for (const spec of type.fields) {
    if (spec.required && !Object.hasOwn(fields, spec.name) && !Object.hasOwn(hidden, spec.name)) {
      throw new DocumentRefused(`fields.${spec.name}`, "required field is neither disclosed nor hidden");
    }
  }
  return { type, suite, fields: { ...fields }, secret, salts, hidden, anchorJson: parseAnchor(obj.anchor) };
}

function parseAnchor(raw) {
  const obj = object(raw, "anchor");
  onlyMembers(obj, "anchor", ["chainId", "registry", "root", "proof"], ["seal"]);
  const chainId = obj.chainId;
  const whole = typeof chainId === "bigint" || (typeof chainId === "number" && Number.isInteger(chainId));
  if (!whole || chainId <= 0) throw new DocumentRefused("anchor.chainId", "must be a positive whole number");
  const registry = string(obj.registry, "anchor.registry");
  if (!ADDRESS.test(registry)) throw new DocumentRefused("anchor.registry", "must be 0x followed by 40 hex digits");
  const lower = registry.toLowerCase();
  if (registry !== lower && checksummed(lower) !== registry) {
    throw new DocumentRefused("anchor.registry", "mixed-case address with a wrong EIP-55 checksum");
  }
  const proof = obj.proof;
  if (!Array.isArray(proof)) throw new DocumentRefused("anchor.proof", "must be a list of hashes");
  if (proof.length > MAX_PROOF_LENGTH) {
    throw new DocumentRefused("anchor.proof", `has ${proof.length} hashes; at most ${MAX_PROOF_LENGTH}`);
  }
  const anchor = {
    chainId,
    registry: checksummed(lower),
    root: digest(obj.root, "anchor.root"),
    proof: proof.map((p, i) => digest(p, `anchor.proof[${i}]`)),
  };
  if (Object.hasOwn(obj, "seal")) {
    if (!HEX_SEAL.test(string(obj.seal, "anchor.seal"))) {
      throw new DocumentRefused("anchor.seal", "must be 0x followed by 128 lowercase hex digits");
    }
    anchor.seal = obj.seal;
  }
  return anchor;
}

// ---------------------------------------------------------------- field rules

/** A calendar date written YYYY-MM-DD as [year, month, day], or null (parse_date). */
export function parseDate(text) {
  const shape = /^([0-9]{4})-([0-9]{2})-([0-9]{2})$/.exec(text);
  if (!shape) return null;
  const [year, month, day] = shape.slice(1).map(Number);
  if (year < 1 || month < 1 || month > 12 || day < 1 || day > daysIn(year, month)) return null;
  return text;
}

function daysIn(year, month) {
  if (month === 2) return (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0 ? 29 : 28;
  return [4, 6, 9, 11].includes(month) ? 30 : 31;
}

// Python's str.strip() strips what str.isspace() calls white space: these code points.
const PY_SPACE = "\t\n\v\f\r\x1c\x1d\x1e\x1f \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000";
const CONTROL = /[\x00-\x1f\x7f-\x9f]/;
const CREDIT_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY";

function creditCodeProblem(code) {
  const chars = [...code];
  if (chars.length !== 18) return "length";
  if (chars.some((c) => !CREDIT_ALPHABET.includes(c))) return "characters";
  let total = 0;
  let weight = 1;
  for (let i = 0; i < 17; i += 1) {
    total += CREDIT_ALPHABET.indexOf(chars[i]) * weight;
    weight = (weight * 3) % 31;
  }
  return chars[17] === CREDIT_ALPHABET[(31 - (total % 31)) % 31] ? null : "check character";
}

function valueProblem(spec, value) {
  if (value === "") return "is empty";
  if (PY_SPACE.includes(value[0]) || PY_SPACE.includes(value[value.length - 1])) {
    return "has leading or trailing white space";
  }
  if (CONTROL.test(value)) return "contains control characters";
  if (LONE_SURROGATE.test(value)) return "contains an unpaired surrogate";
  if (value !== value.normalize("NFC")) return "is not in Unicode normal form NFC";
  if (spec.maxLength != null && [...value].length > spec.maxLength) return "is too long";
  if (spec.pattern != null && !new RegExp(`^(?:${spec.pattern})$`, "u").test(value)) {
    return `does not match the pattern ${spec.pattern}`;
  }
  if (spec.kind === "date" && parseDate(value) === null) return "is not a date";
  if (spec.kind === "credit_code") {
    const reason = creditCodeProblem(value);
    if (reason) return `is not a valid unified social credit code: ${reason}`;
  }
  return null;
}

/** The fields (paths) whose values break the catalogue's rules, as licence.fields
 * field_problems finds them (the words differ; the fields named do not). */
export function fieldProblems(type, fields) {
  const problems = [];
  for (const [name, value] of Object.entries(fields)) {
    const spec = type.fields.find((f) => f.name === name);
    const reason = spec ? valueProblem(spec, value) : "is not a field";
    if (reason) problems.push({ path: name, reason, value });
  }
  for (const spec of type.fields) {
    if (spec.required && !Object.hasOwn(fields, spec.name)) {
      problems.push({ path: spec.name, reason: "is required but missing", value: null });
    }
  }
  if (!problems.length) {
    const from = fields.validFrom;
    const until = fields.validUntil;
    if (typeof from === "string" && typeof until === "string" && until < from) {
      problems.push({ path: "validUntil", reason: `is before validFrom ${from}`, value: until });
    }
  }
  return problems;
}
