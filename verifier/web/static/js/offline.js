// Verifying with no network: a licence (JSON document or EL1: payload) against a trust
// snapshot (docs/offline.md), in the browser, with the same verdict as the service's
// `verify()` over `TrustSnapshot` (verifier/checks.py, verifier/trust_snapshot.py): the
// same status, checks, outcomes and reason codes, in both hash suites.
//
// Exports (pinned for the page in the project's notes on issue 18):
//   loadTrustSnapshot(bytes, anchor)  -> snapshot, or throws SnapshotRefused (.code)
//   verifyOffline(text, snapshot, now) -> verdict {status, checks, asOf, stale}
//   snapshotAge(snapshot, now)        -> seconds
//   SnapshotRefused
//
// What the page must load first, as classic <script>s (globals): vendor/sm-crypto/sm3.js
// (`sm3`, for sm3-128 licences), vendor/sm-crypto/sm2.js (`sm2`, agency seals and the
// governor's SM2 co-signature) and vendor/pako/pako_inflate.umd.min.js (`pako`, EL1:
// payloads; it replaces a `pako` global of pako_deflate, so a page needing both loads the
// deflate half after the inflate half and keeps a reference). The licence types are the
// snapshot's own: the definitions the governor published in the registry, each checked
// against its hash (docs/offline.md), not a copy kept by the page. The words of status
// reasons are reasons.json, which the service worker keeps.
// secp256k1 (the governor's chain-key signature) and Keccak-256 are vendored ES modules.

import {
  loadsDocument,
  parseDocument,
  licenceId,
  computedRoot,
  fieldProblems,
  parseDate,
  checksummed,
  typeVersionOf,
  DocumentRefused,
} from "./offline/document.js";
import { decodePayload, cborOf, sameBytes, PayloadRefused } from "./offline/payload.js";
import * as elformat from "./elformat.js";
import { recoverPublicKey } from "../vendor/noble-secp256k1/index.js";
import { keccak_256 } from "../vendor/noble-hashes/sha3.js";

export { DocumentRefused, PayloadRefused };

const { bytesToHex, hexToBytes } = elformat;
const EL2_PREFIX = "EL2:";

const FORMAT = "elicence-trust-snapshot/2";
const FORMAT_1 = "elicence-trust-snapshot/1"; // before licence types were on chain
const DEFAULT_MAX_AGE_SECONDS = 7 * 24 * 3600; // verifier.trust_snapshot.DEFAULT_MAX_AGE
const SM2_ID = "1234567812345678";
const SEAL_TAG = "elicence/1 seal";
const CHINA_OFFSET_MS = 8 * 3600 * 1000; // China Standard Time, UTC+8 all year
const utf8 = new TextEncoder();
const ACTIVE = { status: 0, reason: 0, block: 0, successor: null, batchRevoked: false };
const FINAL = new Set([2, 3, 4]); // revoked, superseded, cancelled (licence/statuses.py)
// The SM2 curve's field prime (GB/T 32918.5): a key's coordinates lie below it.
const SM2_P = 0xfffffffeffffffffffffffffffffffffffffffff00000000ffffffffffffffffn;

/** The trust snapshot cannot be used; `code` says why:
 * "format" (not a trust snapshot, or its content is not a snapshot's),
 * "signature" (altered after signing, or signed by a key not trusted as governor),
 * "unsigned" (no SM2 co-signature, though the trust anchor pins the governor's SM2 key),
 * "definition" (a licence type definition does not hash to the hash stated beside it),
 * "other-registry" (of another registry or chain than the anchor's). */
export class SnapshotRefused extends Error {
  constructor(code, message) {
    super(message);
    this.name = "SnapshotRefused";
    this.code = code;
  }
}

// ---------------------------------------------------------------- resources

const loaded = new Map();

/** A JSON resource beside the page, read once; asked again after a failure (the page
 * may have been offline the first time). */
function pageJson(path) {
  if (!loaded.has(path)) {
    const url = new URL(`../${path}`, import.meta.url);
    const reading = fetch(url).then((response) => {
      if (!response.ok) throw new Error(`${path}: HTTP ${response.status}`);
      return response.json();
    });
    reading.catch(() => loaded.delete(path));
    loaded.set(path, reading);
  }
  return loaded.get(path);
}

// ---------------------------------------------------------------- loading a snapshot

async function gunzip(bytes) {
  const stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream("gzip"));
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

const isScalar = (v) => v === null || typeof v !== "object";
const isFlat = (v) => isScalar(v) || (Array.isArray(v) && v.every(isScalar));

/** orjson's compact JSON with sorted keys (verifier.trust_snapshot.body_digest). A list
 * of rows of numbers, strings and null (the anchors and statuses: nearly all of a
 * snapshot) has no keys to sort and goes to the native JSON.stringify whole, which
 * writes what orjson writes for them (integers, strings with the same escapes). */
function canonical(value) {
  if (Array.isArray(value)) {
    if (value.every(isFlat)) return JSON.stringify(value);
    return "[" + value.map(canonical).join(",") + "]";
  }
  if (value !== null && typeof value === "object") {
    const keys = Object.keys(value).sort(byCodePoint);
    return "{" + keys.map((k) => JSON.stringify(k) + ":" + canonical(value[k])).join(",") + "}";
  }
  return JSON.stringify(value);
}

function byCodePoint(a, b) {
  // orjson sorts keys as Rust strings: by UTF-8 bytes, which is code point order.
  const x = [...a].map((c) => c.codePointAt(0));
  const y = [...b].map((c) => c.codePointAt(0));
  for (let i = 0; i < Math.min(x.length, y.length); i += 1) if (x[i] !== y[i]) return x[i] - y[i];
  return x.length - y.length;
}

function signedText(body, digest) {
  return (
    "elicence trust snapshot\n" +
    `chain ${body.chainId}\n` +
    `registry ${body.registry}\n` +
    `block ${body.blockNumber}\n` +
    `sha256 ${digest}`
  );
}

function plainHex(bytes) {
  return bytesToHex(bytes).slice(2);
}

/** The address whose key made the EIP-191 personal-message signature (65 bytes r||s||v). */
function recoverSigner(text, signatureHex) {
  if (typeof signatureHex !== "string" || !/^(0x)?[0-9a-fA-F]{130}$/.test(signatureHex)) {
    throw new Error("not a 65-byte signature");
  }
  const signature = hexToBytes("0x" + signatureHex.replace(/^0x/, ""));
  // The v values eth-account takes: 0/1, 27/28 (what it writes), and EIP-155's 35 and up.
  const byte = signature[64];
  let v = null;
  if (byte <= 1) v = byte;
  else if (byte === 27 || byte === 28) v = byte - 27;
  else if (byte >= 35) v = (byte - 35) % 2;
  if (v === null) throw new Error(`v ${byte} is invalid`);
  const message = utf8.encode(text);
  const prefixed = utf8.encode(`\x19Ethereum Signed Message:\n${message.length}`);
  const digest = keccak_256(new Uint8Array([...prefixed, ...message]));
  const recovered = new Uint8Array(65);
  recovered[0] = v;
  recovered.set(signature.subarray(0, 64), 1);
  const point = recoverPublicKey(recovered, digest, { prehash: false, isCompressed: false });
  return checksummed("0x" + plainHex(keccak_256(point.subarray(1))).slice(24));
}

function checksummedOrNull(address) {
  return typeof address === "string" && /^0x[0-9a-fA-F]{40}$/.test(address)
    ? checksummed(address.toLowerCase())
    : null;
}

/** True when `key` (128 hex digits, X || Y) is a point of the SM2 curve. */
function isSm2Key(key) {
  if (typeof key !== "string" || !/^[0-9a-fA-F]{128}$/.test(key)) return false;
  if (BigInt("0x" + key.slice(0, 64)) >= SM2_P || BigInt("0x" + key.slice(64)) >= SM2_P) return false;
  return sm2Library().verifyPublicKey("04" + key.toLowerCase());
}

function sm2Library() {
  const sm2 = globalThis.sm2;
  if (!sm2 || typeof sm2.doVerifySignature !== "function") {
    throw new Error("the vendored SM2 (vendor/sm-crypto/sm2.js) is not loaded");
  }
  return sm2;
}

/** SM2 (GB/T 32918.2, SM3, the default identifier) over `message` (bytes or text). */
function sm2Verifies(key, message, signatureHex) {
  if (!isSm2Key(key) || typeof signatureHex !== "string" || !/^[0-9a-fA-F]{128}$/.test(signatureHex)) {
    return false;
  }
  const bytes = typeof message === "string" ? utf8.encode(message) : message;
  return sm2Library().doVerifySignature(Array.from(bytes), signatureHex.toLowerCase(), "04" + key.toLowerCase(), {
    der: false,
    hash: true,
    userId: SM2_ID,
  });
}

/**
 * A trust snapshot from its file's bytes, once its signatures are checked against the
 * verifier's trust anchor {chainId, registry, governor, governorSealKey (128 hex or
 * null), maxAgeSeconds (optional, default 7 days)}, as GET /v1/trust-anchor answers it.
 * Throws SnapshotRefused with a code and a message.
 */
export async function loadTrustSnapshot(bytes, anchor) {
  let document;
  try {
    document = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(await gunzip(bytes)));
  } catch (exc) {
    throw new SnapshotRefused("format", `not a trust snapshot: ${exc.message}`);
  }
  if (document !== null && typeof document === "object" && document.format === FORMAT_1) {
    throw new SnapshotRefused(
      "format",
      `a trust snapshot of format ${FORMAT_1}, from before licence types were published in the registry: export a new one`,
    );
  }
  if (document === null || typeof document !== "object" || document.format !== FORMAT) {
    throw new SnapshotRefused("format", `not a trust snapshot of format ${FORMAT}`);
  }
  let body;
  let digest;
  let signer;
  let stated;
  try {
    body = document.body;
    if (body === null || typeof body !== "object" || Array.isArray(body)) throw new Error("no body");
    stated = checksummedOrNull(document.signatures.governor.address);
    if (stated === null) throw new Error("the governor's address is not an address");
    digest = plainHex(new Uint8Array(await crypto.subtle.digest("SHA-256", utf8.encode(canonical(body)))));
    signer = recoverSigner(signedText(body, digest), document.signatures.governor.signature);
  } catch (exc) {
    throw new SnapshotRefused("signature", `its signature cannot be read (${exc.message})`);
  }
  if (signer !== stated || body.governor !== stated) {
    throw new SnapshotRefused(
      "signature",
      "the governor's signature does not match the snapshot's content (it was altered after signing, or signed by another key)",
    );
  }
  const trusted = checksummedOrNull(anchor.governor);
  if (signer !== trusted) {
    throw new SnapshotRefused("signature", `signed by ${signer}, which is not the governor you trust (${anchor.governor})`);
  }
  const sm2 = document.signatures.sm2 ?? null;
  const pinned = anchor.governorSealKey ?? null;
  // As the service: a verifier that pins no SM2 key does not read "sm2" (snapshots from
  // before SM2 keys load); one that pins a key asks for its co-signature.
  if (pinned !== null) {
    const wanted = String(pinned).toLowerCase().replace(/^0x/, "");
    if (sm2 === null) {
      throw new SnapshotRefused("unsigned", "the snapshot has no SM2 co-signature, but you pin the governor's SM2 key");
    }
    if (typeof sm2 !== "object" || typeof sm2.publicKey !== "string" || sm2.publicKey.toLowerCase() !== wanted) {
      throw new SnapshotRefused("signature", "the snapshot is co-signed by an SM2 key that is not the governor's you pin");
    }
    if (!sm2Verifies(wanted, signedText(body, digest), sm2.signature)) {
      throw new SnapshotRefused("signature", "the governor's SM2 co-signature does not match the snapshot's content");
    }
  }
  if (anchor.chainId != null && String(body.chainId) !== String(anchor.chainId)) {
    throw new SnapshotRefused("other-registry", `of chain ${body.chainId}, but the trusted chain is ${anchor.chainId}`);
  }
  if (anchor.registry != null && String(body.registry).toLowerCase() !== String(anchor.registry).toLowerCase()) {
    throw new SnapshotRefused("other-registry", `of registry ${body.registry}, but the trusted registry is ${anchor.registry}`);
  }
  try {
    const types = await licenceTypesOf(body.licenceTypes);
    return build(body, digest, anchor.maxAgeSeconds ?? DEFAULT_MAX_AGE_SECONDS, types);
  } catch (exc) {
    if (exc instanceof SnapshotRefused) throw exc;
    throw new SnapshotRefused("format", `its content is not a snapshot's (${exc.message})`);
  }
}

// ---------------------------------------------------------------- the licence types

const HEX32 = /^[0-9a-f]{64}$/;
const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

/**
 * The snapshot's licence types (verifier.trust_snapshot._published_types): every
 * published version by "code:version" with its hash, and the page's form of each
 * definition it can read. A definition that does not hash to its stated hash refuses the
 * snapshot ("definition"); one that does but is not a readable, canonical definition of
 * that version is left out (its licences are "type.unavailable"), never used.
 */
async function licenceTypesOf(entries) {
  need(Array.isArray(entries), "licenceTypes");
  const published = new Map();
  const types = [];
  const unreadable = new Map();
  for (const entry of entries) {
    need(entry !== null && typeof entry === "object", "licence type");
    const { code, version, definitionHash, definition, blockNumber } = entry;
    need(isInt(code) && isInt(version) && isInt(blockNumber), "licence type code, version, block");
    need(typeof definitionHash === "string" && HEX32.test(definitionHash), "definition hash");
    need(typeof definition === "string" && !LONE_SURROGATE.test(definition), "definition text");
    const key = `${code}:${version}`;
    need(!published.has(key), `licence type ${code} version ${version} listed twice`);
    const actual = plainHex(new Uint8Array(await crypto.subtle.digest("SHA-256", utf8.encode(definition))));
    if (actual !== definitionHash) {
      throw new SnapshotRefused(
        "definition",
        `its definition of licence type ${code} version ${version} hashes to ${actual}, not to the ${definitionHash} it names for it`,
      );
    }
    published.set(key, { code, version, definitionHash, blockNumber });
    try {
      types.push(pageType(definition, code, version));
    } catch (exc) {
      unreadable.set(key, exc.message);
    }
  }
  return { published, types, unreadable };
}

/** RFC 8785 JSON of a parsed value: keys in UTF-16 code unit order (what sort() does),
 * strings and numbers as JSON.stringify writes them (JCS's own rules). */
function jcs(value) {
  if (Array.isArray(value)) return "[" + value.map(jcs).join(",") + "]";
  if (value !== null && typeof value === "object") {
    return "{" + Object.keys(value).sort().map((k) => JSON.stringify(k) + ":" + jcs(value[k])).join(",") + "}";
  }
  return JSON.stringify(value);
}

const TYPE_MEMBERS = ["id", "code", "version", "name", "owners", "mandatoryDisclosure", "mandatoryPersonal", "fields"];
const FIELD_MEMBERS = ["name", "label", "kind", "required", "personal", "maxLength", "pattern", "absentMeans", "example"];
const KINDS = ["text", "date", "credit_code"];

function only(obj, allowed, what) {
  need(obj !== null && typeof obj === "object" && !Array.isArray(obj), what);
  for (const name of Object.keys(obj)) need(allowed.includes(name), `${what}: unknown member ${name}`);
  return obj;
}

function label(value, what) {
  only(value, ["zh", "en"], what);
  need(typeof value.zh === "string" && typeof value.en === "string", what);
  return { zh: value.zh, en: value.en };
}

/** A published definition in the shape of GET v1/catalogue's types (what the checks
 * and the card read), or throws: not the canonical text (the registry's hash is of the
 * canonical form), of another code or version, or not of a definition's shape. The
 * service reads definitions with stricter rules (licence/catalogue_rules.py); a
 * definition it refuses cannot have been published by `elicence catalogue publish`. */
function pageType(text, code, version) {
  const raw = JSON.parse(text);
  need(jcs(raw) === text, "not the canonical form of its definition");
  only(raw, TYPE_MEMBERS, "definition");
  need(raw.code === code && raw.version === version, `it defines type ${raw.code} version ${raw.version}`);
  need(typeof raw.id === "string" && /^[a-z][a-z0-9]*(?:-[a-z0-9]+)*$/.test(raw.id), "id");
  need(Array.isArray(raw.fields) && raw.fields.length > 0, "fields");
  need(Array.isArray(raw.owners) && Array.isArray(raw.mandatoryDisclosure), "owners, mandatoryDisclosure");
  const mandatory = new Set(raw.mandatoryDisclosure);
  const fields = raw.fields.map((f, i) => {
    only(f, FIELD_MEMBERS, `fields[${i}]`);
    need(typeof f.name === "string" && /^[a-z][A-Za-z0-9]*$/.test(f.name), `fields[${i}].name`);
    need(KINDS.includes(f.kind) && typeof f.required === "boolean" && typeof f.personal === "boolean", `fields[${i}]`);
    need(f.maxLength === undefined || isInt(f.maxLength), `fields[${i}].maxLength`);
    need(f.pattern === undefined || typeof f.pattern === "string", `fields[${i}].pattern`);
    if (f.pattern !== undefined) new RegExp(`^(?:${f.pattern})$`, "u"); // throws if it does not compile
    return {
      name: f.name,
      label: label(f.label, `fields[${i}].label`),
      kind: f.kind,
      required: f.required,
      personal: f.personal,
      mandatoryDisclosure: mandatory.has(f.name),
      absentMeans: f.absentMeans === undefined ? null : label(f.absentMeans, `fields[${i}].absentMeans`),
      maxLength: f.maxLength ?? null,
      pattern: f.pattern ?? null,
    };
  });
  const names = fields.map((f) => f.name);
  need(new Set(names).size === names.length, "a field name twice");
  for (const name of mandatory) need(names.includes(name), `mandatoryDisclosure names no field ${name}`);
  return {
    id: raw.id,
    code,
    version,
    name: label(raw.name, "name"),
    owners: raw.owners.map((o, i) => label(o, `owners[${i}]`)),
    fields,
    mandatoryDisclosure: names.filter((n) => mandatory.has(n)),
  };
}

function need(condition, what) {
  if (!condition) throw new Error(what);
}

const isInt = (v) => Number.isSafeInteger(v);
const LOWER_HEX16 = /^[0-9a-f]{32}$/;
const ANY_HEX16 = /^[0-9a-fA-F]{32}$/;
/** A 16-byte hex value as a look-up key (lowercase), or null. The exporter writes
 * lowercase; the service reads either case (bytes.fromhex). */
const hexKey = (v) =>
  typeof v !== "string" ? null : LOWER_HEX16.test(v) ? v : ANY_HEX16.test(v) ? v.toLowerCase() : null;

/** The look-ups verification reads (verifier.trust_snapshot._build). */
function build(body, sha256, maxAgeSeconds, licenceTypes) {
  need(isInt(body.chainId) && typeof body.registry === "string", "chainId, registry");
  need(isInt(body.blockNumber) && isInt(body.blockTime), "blockNumber, blockTime");
  const agencies = new Map();
  const compromises = new Map();
  for (const raw of body.agencies) {
    need(isInt(raw.id) && Array.isArray(raw.keys) && raw.keys.length > 0, "agency");
    const sealKeys = (raw.sealKeys ?? []).map((k) => {
      need(isInt(k.number) && isInt(k.validFrom) && typeof k.publicKey === "string", "seal key");
      return { number: k.number, publicKey: k.publicKey, validFrom: k.validFrom, compromisedFrom: k.compromisedFromBlock ?? null };
    });
    agencies.set(raw.id, {
      id: raw.id,
      code: String(raw.code),
      name: String(raw.name),
      signer: checksummed(String(raw.keys[raw.keys.length - 1].address).toLowerCase()),
      sealKeys,
    });
    for (const key of raw.keys) {
      if (key.compromisedFromBlock != null) compromises.set(`${raw.id}:${key.number}`, key.compromisedFromBlock);
    }
  }
  const anchors = new Map();
  for (const row of body.anchors) {
    need(Array.isArray(row) && row.length === 8 && hexKey(row[0]) !== null, "anchor");
    const [root, agencyId, licenceType, count, block, time, keyNumber, typeVersion] = row;
    anchors.set(hexKey(root), { agencyId, licenceType, count, block, time, keyNumber, typeVersion });
  }
  // The changed statuses are most of a large snapshot (a million rows): they stay the
  // parsed rows, indexed by leaf id (a row's own string, no new key is made); the rare
  // leaf id listed under two agencies keeps a list of its rows.
  const statuses = body.statuses;
  const leaves = new Map();
  for (let i = 0; i < statuses.length; i += 1) {
    const row = statuses[i];
    const leaf = Array.isArray(row) && row.length === 6 ? hexKey(row[1]) : null;
    need(leaf !== null, "status");
    need(Number.isInteger(row[2]) && row[2] >= 0 && row[2] <= 4, "status value");
    need(row[5] === null || hexKey(row[5]) !== null, "successor");
    const seen = leaves.get(leaf);
    if (seen === undefined) leaves.set(leaf, i);
    else leaves.set(leaf, [...(Array.isArray(seen) ? seen : [seen]), i]);
  }
  const batchRevocations = new Map();
  for (const row of body.batchRevocations) {
    need(Array.isArray(row) && row.length === 3 && hexKey(row[0]) !== null, "batch revocation");
    const [root, reason, block] = row;
    batchRevocations.set(hexKey(root), { status: 2, reason, block, successor: null, batchRevoked: true });
  }
  return Object.freeze({
    chainId: body.chainId,
    registry: body.registry,
    governor: body.governor,
    blockNumber: body.blockNumber,
    blockHash: body.blockHash ?? null,
    blockTime: body.blockTime,
    sha256,
    maxAgeSeconds,
    counts: {
      agencies: agencies.size,
      anchors: anchors.size,
      statuses: statuses.length,
      licenceTypes: licenceTypes.published.size,
    },
    // The catalogue the page reads licences by, offline: {types} as GET v1/catalogue's.
    catalogue: Object.freeze({ types: licenceTypes.types }),
    published: licenceTypes.published,
    unreadableTypes: licenceTypes.unreadable,
    agencies,
    anchors,
    statuses,
    leaves,
    batchRevocations,
    compromises,
  });
}

/** How old the snapshot's knowledge is, in seconds, at `now`. */
export function snapshotAge(snapshot, now = new Date()) {
  return Math.floor(now.getTime() / 1000) - snapshot.blockTime;
}

/** The status one agency recorded for a leaf id, or null. */
function leafState(snapshot, agencyId, leaf) {
  const found = snapshot.leaves.get(leaf);
  if (found === undefined) return null;
  let state = null;
  for (const i of Array.isArray(found) ? found : [found]) {
    const [rowAgency, , status, reason, block, successor] = snapshot.statuses[i];
    // A later row for the same licence wins, as the service reads the rows.
    if (rowAgency === agencyId) {
      state = { status, reason, block, successor: successor && hexKey(successor), batchRevoked: false };
    }
  }
  return state;
}

/** As the index answers (verifier.trust_snapshot.TrustSnapshot.status_of). */
function statusOf(snapshot, root, leaf) {
  const anchor = snapshot.anchors.get(root);
  const own = leafState(snapshot, anchor ? anchor.agencyId : 0, leaf) ?? ACTIVE;
  if (FINAL.has(own.status)) return own;
  return snapshot.batchRevocations.get(root) ?? own;
}

/** Seal key of an agency for a batch anchored in `block`: the newest valid from then. */
function sealKeyAt(agency, block) {
  let found = null;
  for (const key of agency.sealKeys) {
    // Of two keys valid from one block, the later listed (the higher number) wins.
    if (key.validFrom <= block && (found === null || key.validFrom >= found.validFrom)) found = key;
  }
  return found;
}

// ---------------------------------------------------------------- the checks

const passed = (name, code, params = {}) => ({ name, outcome: "passed", status: null, reason: { code, params } });
const failed = (name, status, code, params = {}) => ({ name, outcome: "failed", status, reason: { code, params } });
const skipped = (name) => ({ name, outcome: "skipped", status: null, reason: { code: "skipped", params: {} } });
const CHECKS = ["integrity", "anchor", "issuer", "seal", "status", "validity"];
const LEAF_VERDICT = {
  1: ["SUSPENDED", "status.suspended"],
  2: ["REVOKED", "status.revoked"],
  3: ["SUPERSEDED", "status.superseded"],
  4: ["CANCELLED", "status.cancelled"],
};

function chinaTime(seconds) {
  return new Date(seconds * 1000 + CHINA_OFFSET_MS).toISOString().slice(0, 19) + "+08:00";
}

async function integrity(doc) {
  const root = doc.anchorJson.root;
  let leaf;
  let computed;
  try {
    leaf = await licenceId(doc);
    computed = bytesToHex(await computedRoot(doc, leaf));
  } catch (exc) {
    return [failed("integrity", "TAMPERED", "integrity.unreadable", { error: String(exc.message) }), null];
  }
  if (computed === root) return [passed("integrity", "integrity.ok", { root }), leaf];
  const mismatch = { computed, root };
  const problems = fieldProblems(doc.type, doc.fields);
  if (!problems.length) return [failed("integrity", "TAMPERED", "integrity.mismatch", mismatch), leaf];
  return [
    failed("integrity", "TAMPERED", "integrity.mismatch-fields", {
      ...mismatch,
      fields: [...new Set(problems.map((p) => p.path))].join(","),
      problems: problems.map((p) => `${p.path}: ${p.reason}`).join("; "),
    }),
    leaf,
  ];
}

function anchorCheck(doc, snapshot) {
  const ref = doc.anchorJson;
  if (BigInt(ref.chainId) !== BigInt(snapshot.chainId) || ref.registry.toLowerCase() !== snapshot.registry.toLowerCase()) {
    return [failed("anchor", "NOT_ANCHORED", "anchor.other-registry", {
      registry: ref.registry,
      chainId: Number(ref.chainId),
      trustedRegistry: snapshot.registry,
      trustedChainId: snapshot.chainId,
    }), null];
  }
  const anchor = snapshot.anchors.get(ref.root.slice(2));
  if (!anchor) {
    return [failed("anchor", "NOT_ANCHORED", "anchor.not-found", { root: ref.root, registry: snapshot.registry }), null];
  }
  const since = snapshot.compromises.get(`${anchor.agencyId}:${anchor.keyNumber}`);
  if (since != null && anchor.block >= since) {
    return [failed("anchor", "ISSUER_NOT_AUTHORISED", "anchor.key-compromised", {
      block: anchor.block,
      key: anchor.keyNumber,
      agencyId: anchor.agencyId,
      since,
    }), anchor];
  }
  return [passed("anchor", "anchor.ok", { block: anchor.block, time: chinaTime(anchor.time), count: anchor.count }), anchor];
}

function issuerCheck(doc, anchor, agency) {
  if (anchor.licenceType !== doc.type.code) {
    return failed("issuer", "ISSUER_NOT_AUTHORISED", "issuer.other-type", {
      anchoredType: anchor.licenceType,
      licenceType: doc.type.id,
      typeCode: doc.type.code,
    });
  }
  if (anchor.typeVersion !== (doc.type.version ?? 1)) {
    // The batch was hashed under the anchored version's fields: a document naming another
    // version was changed after issuing (verifier/checks.py).
    return failed("issuer", "TAMPERED", "issuer.other-type-version", {
      anchoredVersion: anchor.typeVersion,
      licenceType: doc.type.id,
      typeVersion: doc.type.version ?? 1,
    });
  }
  const named = doc.fields.issuingAuthority;
  if (named !== undefined && named !== agency.name) {
    return failed("issuer", "ISSUER_NOT_AUTHORISED", "issuer.other-authority", {
      named,
      agency: agency.name,
      agencyCode: agency.code,
    });
  }
  return passed("issuer", "issuer.ok", {
    agency: agency.name,
    agencyCode: agency.code,
    licenceType: doc.type.id,
    block: anchor.block,
  });
}

function chainIdBytes(chainId) {
  const out = new Uint8Array(8);
  let n = BigInt(chainId);
  for (let i = 7; i >= 0; i -= 1) {
    out[i] = Number(n & 0xffn);
    n >>= 8n;
  }
  return out;
}

/** The seal check (the pinned rules, first match wins). */
function sealCheck(doc, anchor, agency, snapshot) {
  const key = sealKeyAt(agency, anchor.block);
  const seal = doc.anchorJson.seal ?? null;
  if (key === null) {
    return seal === null
      ? passed("seal", "seal.not-required")
      : failed("seal", "TAMPERED", "seal.unexpected");
  }
  if (seal === null) return failed("seal", "TAMPERED", "seal.missing");
  if (!isSm2Key(key.publicKey)) return failed("seal", "ISSUER_NOT_AUTHORISED", "seal.key-malformed");
  if (key.compromisedFrom != null && anchor.block >= key.compromisedFrom) {
    return failed("seal", "ISSUER_NOT_AUTHORISED", "seal.key-compromised", { block: key.compromisedFrom });
  }
  const message = new Uint8Array([
    ...utf8.encode(SEAL_TAG),
    ...chainIdBytes(snapshot.chainId),
    ...hexToBytes(snapshot.registry.toLowerCase()),
    ...hexToBytes(doc.anchorJson.root),
  ]);
  if (!sm2Verifies(key.publicKey, message, seal.slice(2))) {
    return failed("seal", "TAMPERED", "seal.mismatch");
  }
  return passed("seal", "seal.ok", { keyNumber: key.number });
}

function statusCheck(doc, leaf, snapshot) {
  const state = statusOf(snapshot, doc.anchorJson.root.slice(2), plainHex(leaf));
  if (state.status === 0) return passed("status", "status.ok");
  let [status, code] = LEAF_VERDICT[state.status] ?? ["REVOKED", "status.unknown"];
  if (state.batchRevoked) code = "status.batch-revoked";
  const params = { block: state.block, reason: state.reason };
  if (code === "status.unknown") params.status = state.status;
  if (state.successor) params.successor = "0x" + state.successor;
  else if (code === "status.superseded") code = "status.revoked";
  return failed("status", status, code, params);
}

function validityCheck(doc, today) {
  const from = doc.fields.validFrom;
  const until = doc.fields.validUntil;
  const start = from ? parseDate(from) : null;
  const end = until ? parseDate(until) : null;
  if ((from && start === null) || (until && end === null)) {
    return failed("validity", "TAMPERED", "validity.not-dates");
  }
  if (start !== null && today < start) {
    return failed("validity", "NOT_YET_VALID", "validity.not-yet", { validFrom: start, today });
  }
  if (end !== null && today > end) {
    return failed("validity", "EXPIRED", "validity.expired", { validUntil: end, today });
  }
  const since = { validFrom: start ?? "None", today }; // as Python writes str(None)
  return end !== null
    ? passed("validity", "validity.ok", { ...since, validUntil: end })
    : passed("validity", "validity.ok-no-end", since);
}

/** The document `text` names: a licence JSON document or an EL2:/EL1: payload, read by
 * the snapshot's licence types (an EL2: payload also by its chain and registry, which
 * the payload does not carry). Throws DocumentRefused or PayloadRefused (each with
 * `.code`) when the service would give no verdict either. */
async function readDocument(text, snapshot) {
  const types = snapshot.catalogue;
  // As the page asks the service: JSON when it starts with "{", else a QR payload.
  const trimmed = text.replace(/^\uFEFF/, "").trim();
  if (trimmed.startsWith("{")) return loadsDocument(text, types);
  if (trimmed.startsWith(EL2_PREFIX)) return await readEl2(trimmed, types, snapshot);
  const { json, raw } = decodePayload(trimmed, types);
  let doc;
  try {
    doc = parseDocument(json, types);
  } catch (exc) {
    if (exc instanceof DocumentRefused) {
      throw new PayloadRefused(exc.code === "document" ? "document" : exc.code, exc.message);
    }
    throw exc;
  }
  if (!sameBytes(cborOf(doc), raw)) {
    throw new PayloadRefused("non-canonical", "the CBOR is not in its one deterministic form");
  }
  return doc;
}

/**
 * The verdict on `text` (licence JSON or EL1: payload) as of `snapshot`:
 * {status, checks: [{name, outcome, reason: {code, params}}], asOf: {blockNumber,
 * blockTime (ISO 8601, China time)}, stale, licenceId, ageSeconds}. Validity is judged
 * on `now`'s date in China Standard Time.
 */
export async function verifyOffline(text, snapshot, now = new Date()) {
  const doc = await readDocument(text, snapshot);
  const today = new Date(now.getTime() + CHINA_OFFSET_MS).toISOString().slice(0, 10);
  const [integrityCheck, leaf] = await integrity(doc);
  const checks = [integrityCheck];
  let anchor = null;
  if (integrityCheck.outcome === "passed") {
    const [check, found] = anchorCheck(doc, snapshot);
    checks.push(check);
    anchor = found;
  }
  if (anchor === null) {
    for (const name of CHECKS.slice(checks.length)) checks.push(skipped(name));
  } else {
    const agency = snapshot.agencies.get(anchor.agencyId);
    if (!agency) throw new Error(`agency ${anchor.agencyId} is not in the snapshot`);
    checks.push(issuerCheck(doc, anchor, agency));
    checks.push(sealCheck(doc, anchor, agency, snapshot));
    checks.push(statusCheck(doc, leaf, snapshot));
    checks.push(validityCheck(doc, today));
  }
  const failedChecks = checks.filter((c) => c.outcome === "failed");
  const age = snapshotAge(snapshot, now);
  const agency = anchor === null ? null : snapshot.agencies.get(anchor.agencyId);
  const state = anchor === null ? null : statusOf(snapshot, doc.anchorJson.root.slice(2), plainHex(leaf));
  const changed = state !== null && state.status !== 0;
  return {
    status: failedChecks.length ? failedChecks[0].status : "VALID",
    checks: checks.map(({ name, outcome, reason }) => ({ name, outcome, reason })),
    asOf: { blockNumber: snapshot.blockNumber, blockTime: chinaTime(snapshot.blockTime) },
    ageSeconds: age,
    stale: age > snapshot.maxAgeSeconds,
    // What the service's verdict also says (Verdict.to_json), for the page's card.
    licenceId: leaf ? bytesToHex(leaf) : null,
    licenceType: doc.type.id,
    licenceTypeName: doc.type.name.zh,
    fields: orderedFields(doc),
    hidden: doc.type.fields.map((f) => f.name).filter((n) => Object.hasOwn(doc.hidden, n)),
    issuer: agency ? { agencyId: agency.id, name: agency.name, code: agency.code, address: agency.signer } : null,
    anchor: anchor === null ? null : {
      chainId: snapshot.chainId,
      registry: snapshot.registry,
      root: doc.anchorJson.root,
      blockNumber: anchor.block,
      time: new Date(anchor.time * 1000).toISOString().replace(".000Z", "+00:00"),
      transaction: null,
    },
    statusReason: changed ? await statusReasonWords(state.reason) : null,
    successor: changed && state.successor ? "0x" + state.successor : null,
    blockHeight: snapshot.blockNumber,
  };
}

/** An EL2: payload, decoded by elformat.js (the format's second implementation) with
 * the snapshot's chain and registry, which an EL2: payload does not carry, and the
 * snapshot's licence types (a version it lacks: "type.unavailable"). */
async function readEl2(text, types, snapshot) {
  const deployment = { chainId: snapshot.chainId, registry: checksummed(snapshot.registry.toLowerCase()) };
  const typeOf = (code, version) => typeVersionOf(types, (t) => t.code === code, version, `code ${code}`);
  // PayloadRefused is elformat's PayloadError: its refusals pass through as they are.
  const decoded = await elformat.decodeEl2(text, typeOf, deployment);
  try {
    return parseDocument(decoded.json, types);
  } catch (exc) {
    if (exc instanceof DocumentRefused) {
      throw new PayloadRefused(exc.code === "document" ? "document" : exc.code, exc.message);
    }
    throw exc;
  }
}

function orderedFields(doc) {
  const out = {};
  for (const name of Object.keys(doc.fields)) out[name] = doc.fields[name];
  return out;
}

/** A status change's reason code in Chinese words (licence/reasons.py, via reasons.json). */
async function statusReasonWords(reason) {
  const table = (await pageJson("reasons.json")).statusReasons ?? {};
  return table[String(reason)]?.zh ?? `未知原因代码 ${reason}`; // as describe() words it
}
