// The elicence/1 format in the browser, for the present page: read a licence or a
// presentation, hide fields, and write the EL1: payload of docs/format.md.
//
// Everything runs on the holder's device: hashing uses WebCrypto (crypto.subtle) for
// SHA-256 and the vendored sm-crypto for SM3 (WebCrypto has none; a global `sm3`), the
// CBOR and Base45 encoders are the few lines below, and zlib is the vendored pako
// (a global `pako`). Both globals come from classic <script>s loaded before this module.
//
// With H* the licence's hash suite's hash (SHA-256 for "sha256-128", SM3 for "sm3-128"):
//   salt(name)              = HMAC-H*(secret, UTF-8(name))[0:16]
//   commitment(name, value) = H*(0x02 || salt || JCS([name, value]))[0:16]
//   payload                 = "EL1:" || Base45(zlib(CBOR([version, code, chainId,
//                                  registry, root, proof, keys, fields(, seal)])))
// where the version names the suite too (1 sha256-128, 2 sm3-128), and item 8, the
// agency's 64-byte SM2 seal of the root, is there only when the licence has one.
//
// The service's decoder (licence/payload.py) is strict: deterministic CBOR, zlib header 78 DA,
// nothing after the stream. tests/web feeds this module's payloads to it.

const DIGEST_BYTES = 16;
const DEFAULT_SUITE = "sha256-128";
const PREFIX = "EL1:";
const MAX_PAYLOAD_CHARS = 4296; // the largest alphanumeric QR code (version 40-L)
const HEX16 = /^0x[0-9a-f]{32}$/;
const HEX_SEAL = /^0x[0-9a-f]{128}$/; // anchor.seal: SM2 r || s
const ADDRESS = /^0x[0-9a-fA-F]{40}$/;
const utf8 = new TextEncoder();

/** A problem with the file the holder opened; `key` names a message of the dictionary. */
export class FormatError extends Error {
  constructor(key, detail = "") {
    super(detail ? `${key}: ${detail}` : key);
    this.key = key;
    this.detail = detail;
  }
}

// ---------------------------------------------------------------- bytes and hashes

export function hexToBytes(hex) {
  const digits = hex.slice(2);
  const out = new Uint8Array(digits.length / 2);
  for (let i = 0; i < out.length; i += 1) {
    out[i] = parseInt(digits.slice(2 * i, 2 * i + 2), 16);
  }
  return out;
}

export function bytesToHex(bytes) {
  return "0x" + Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
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

async function sha256x128(data) {
  const digest = await crypto.subtle.digest("SHA-256", data);
  return new Uint8Array(digest, 0, DIGEST_BYTES).slice();
}

async function hmacSha256x128(key, data) {
  const imported = await crypto.subtle.importKey(
    "raw", key, { name: "HMAC", hash: "SHA-256" }, false, ["sign"],
  );
  const mac = await crypto.subtle.sign("HMAC", imported, data);
  return new Uint8Array(mac, 0, DIGEST_BYTES).slice();
}

// sm-crypto's sm3(bytes) is SM3 and sm3(bytes, {key}) HMAC-SM3 (RFC 2104), both as hex.
function sm3x128(data) {
  return hexToBytes("0x" + globalThis.sm3(data).slice(0, 2 * DIGEST_BYTES));
}

function hmacSm3x128(key, data) {
  return hexToBytes("0x" + globalThis.sm3(data, { key }).slice(0, 2 * DIGEST_BYTES));
}

// Each suite: its payload version (docs/format.md), its hash and HMAC, truncated.
const SUITES = {
  "sha256-128": { version: 1, hash: sha256x128, hmac: hmacSha256x128 },
  "sm3-128": { version: 2, hash: sm3x128, hmac: hmacSm3x128 },
};

/** A hash suite this page can compute, by name; FormatError "err-suite" otherwise. */
function suiteNamed(name) {
  // Own members only: a suite named "toString" is no suite.
  const known = typeof name === "string" && Object.hasOwn(SUITES, name);
  if (!known || (name === "sm3-128" && typeof globalThis.sm3 !== "function")) {
    throw new FormatError("err-suite", String(name));
  }
  return SUITES[name];
}

/** The salt of field `name`: HMAC-H* keyed with the licence secret, first 16 bytes. */
export async function saltOf(secret, name, suite = DEFAULT_SUITE) {
  return suiteNamed(suite).hmac(secret, utf8.encode(name));
}

/** The commitment to one field's value. JSON.stringify of an array of two strings is
 * exactly their RFC 8785 form (same escapes, UTF-8, no white space). */
export async function commitmentOf(name, value, salt, suite = DEFAULT_SUITE) {
  const jcs = utf8.encode(JSON.stringify([name, value]));
  return suiteNamed(suite).hash(concat(Uint8Array.of(0x02), salt, jcs));
}

// ---------------------------------------------------------------- reading a licence

/** JSON.parse that keeps integers above 2^53 exact (as BigInt) where the browser gives
 * the source text to revivers; chain ids may be as large as 2^64 - 1. */
export function parseJson(text) {
  return JSON.parse(text.replace(/^\uFEFF/, ""), (key, value, context) => {
    if (typeof value === "number" && !Number.isSafeInteger(value) && context && context.source) {
      return /^\d+$/.test(context.source) ? BigInt(context.source) : value;
    }
    return value;
  });
}

function isPlainObject(value) {
  return value !== null && typeof value === "object" && !Array.isArray(value);
}

function expectHex(value, where) {
  if (typeof value !== "string" || !HEX16.test(value)) {
    throw new FormatError("err-member", where);
  }
  return value;
}

/**
 * A licence or presentation from its JSON text, checked enough to present it: the
 * verifier checks the rest (and the hashes). Returns {type, fields, secret, salts,
 * hidden, anchor, raw} with hex strings as in the file.
 */
export function readLicence(text, catalogue) {
  let raw;
  try {
    raw = parseJson(text);
  } catch (exc) {
    throw new FormatError("err-json", exc.message);
  }
  if (!isPlainObject(raw)) throw new FormatError("err-json", "not an object");
  if (raw.format !== "elicence/1") throw new FormatError("err-format", String(raw.format));
  const suite = raw.hashSuite ?? DEFAULT_SUITE;
  suiteNamed(suite);
  const type = catalogue.types.find((t) => t.id === raw.type);
  if (!type) throw new FormatError("err-type", String(raw.type));
  if (!isPlainObject(raw.fields)) throw new FormatError("err-member", "fields");
  for (const [name, value] of Object.entries(raw.fields)) {
    if (!type.fields.some((f) => f.name === name)) throw new FormatError("err-member", `fields.${name}`);
    if (typeof value !== "string") throw new FormatError("err-member", `fields.${name}`);
  }
  const anchor = raw.anchor;
  if (!isPlainObject(anchor)) throw new FormatError("err-member", "anchor");
  const chainId = anchor.chainId;
  const chainOk = typeof chainId === "bigint"
    ? chainId > 0n && chainId < 2n ** 64n
    : Number.isSafeInteger(chainId) && chainId > 0;
  if (!chainOk) throw new FormatError("err-member", "anchor.chainId");
  if (typeof anchor.registry !== "string" || !ADDRESS.test(anchor.registry)) {
    throw new FormatError("err-member", "anchor.registry");
  }
  expectHex(anchor.root, "anchor.root");
  if (!Array.isArray(anchor.proof) || anchor.proof.length > 40) {
    throw new FormatError("err-member", "anchor.proof");
  }
  anchor.proof.forEach((h, i) => expectHex(h, `anchor.proof[${i}]`));
  if ("seal" in anchor && (typeof anchor.seal !== "string" || !HEX_SEAL.test(anchor.seal))) {
    throw new FormatError("err-member", "anchor.seal");
  }

  const licence = { type, suite, fields: raw.fields, anchor, secret: null, salts: {}, hidden: {} };
  if ("secret" in raw) {
    if ("salts" in raw || "hidden" in raw) throw new FormatError("err-member", "secret");
    licence.secret = expectHex(raw.secret, "secret");
  } else {
    if (!isPlainObject(raw.salts) || !isPlainObject(raw.hidden)) {
      throw new FormatError("err-member", "salts");
    }
    for (const name of Object.keys(raw.fields)) {
      licence.salts[name] = expectHex(raw.salts[name], `salts.${name}`);
    }
    for (const [name, value] of Object.entries(raw.hidden)) {
      if (!type.fields.some((f) => f.name === name) || name in raw.fields) {
        throw new FormatError("err-member", `hidden.${name}`);
      }
      licence.hidden[name] = expectHex(value, `hidden.${name}`);
    }
  }
  return licence;
}

/** Each field of the licence's type in catalogue order, with what the licence has:
 * "disclosed" (a value), "hidden" (only a commitment) or "absent". */
export function fieldStates(licence) {
  return licence.type.fields.map((spec) => {
    let state = "absent";
    if (spec.name in licence.fields) state = "disclosed";
    else if (spec.name in licence.hidden) state = "hidden";
    const mandatory = licence.type.mandatoryDisclosure.includes(spec.name);
    return { spec, state, value: licence.fields[spec.name], mandatory };
  });
}

/**
 * The presentation that discloses `disclose` (names) plus every mandatory field the
 * licence has, and hides every other field it has. As JSON-ready object (docs/format.md).
 */
export async function present(licence, disclose) {
  const { type } = licence;
  const wanted = new Set([...type.mandatoryDisclosure, ...disclose]);
  const secret = licence.secret ? hexToBytes(licence.secret) : null;
  const fields = {};
  const salts = {};
  const hidden = {};
  for (const spec of type.fields) {
    const name = spec.name;
    if (name in licence.hidden) {
      if (disclose.includes(name)) throw new FormatError("err-reveal", name);
      hidden[name] = licence.hidden[name];
      continue;
    }
    if (!(name in licence.fields)) continue; // the licence does not have this field
    const salt = secret
      ? await saltOf(secret, name, licence.suite)
      : hexToBytes(licence.salts[name]);
    if (wanted.has(name)) {
      fields[name] = licence.fields[name];
      salts[name] = bytesToHex(salt);
    } else {
      const committed = await commitmentOf(name, licence.fields[name], salt, licence.suite);
      hidden[name] = bytesToHex(committed);
    }
  }
  return {
    format: "elicence/1",
    hashSuite: licence.suite,
    type: type.id,
    fields,
    salts,
    hidden,
    anchor: licence.anchor,
  };
}

/** JSON text of a presentation (chain ids above 2^53 written exactly). */
export function toJsonText(document) {
  return JSON.stringify(
    document,
    (key, value) => {
      if (typeof value !== "bigint") return value;
      // JSON.rawJSON writes the digits as they are; without it a chain id this large
      // cannot be written exactly, so it is refused rather than rounded.
      if (typeof JSON.rawJSON === "function") return JSON.rawJSON(value.toString());
      throw new FormatError("err-member", "anchor.chainId");
    },
    2,
  );
}

// ---------------------------------------------------------------- CBOR (RFC 8949)

// Deterministic encoding (section 4.2.1): the shortest head for every length and
// integer, definite lengths. Only the kinds a payload uses: unsigned integers, byte
// strings, text strings, arrays and null.
function cborHead(major, value, out) {
  const n = BigInt(value);
  const top = major << 5;
  if (n < 24n) out.push(top | Number(n));
  else if (n < 0x100n) out.push(top | 24, Number(n));
  else if (n < 0x10000n) out.push(top | 25, Number(n >> 8n), Number(n & 0xffn));
  else if (n < 0x100000000n) {
    out.push(top | 26);
    for (let shift = 24n; shift >= 0n; shift -= 8n) out.push(Number((n >> shift) & 0xffn));
  } else {
    out.push(top | 27);
    for (let shift = 56n; shift >= 0n; shift -= 8n) out.push(Number((n >> shift) & 0xffn));
  }
}

function cborItem(value, out) {
  if (value === null) {
    out.push(0xf6);
  } else if (typeof value === "number" || typeof value === "bigint") {
    cborHead(0, value, out);
  } else if (value instanceof Uint8Array) {
    cborHead(2, value.length, out);
    for (const b of value) out.push(b);
  } else if (typeof value === "string") {
    const bytes = utf8.encode(value);
    cborHead(3, bytes.length, out);
    for (const b of bytes) out.push(b);
  } else if (Array.isArray(value)) {
    cborHead(4, value.length, out);
    for (const item of value) cborItem(item, out);
  } else {
    throw new TypeError(`no CBOR form for ${typeof value}`);
  }
}

export function cborEncode(value) {
  const out = [];
  cborItem(value, out);
  return Uint8Array.from(out);
}

// ---------------------------------------------------------------- Base45 (RFC 9285)

const BASE45 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:";

export function base45Encode(bytes) {
  let text = "";
  for (let i = 0; i + 1 < bytes.length; i += 2) {
    let n = bytes[i] * 256 + bytes[i + 1];
    const c = n % 45;
    n = (n - c) / 45;
    text += BASE45[c] + BASE45[n % 45] + BASE45[(n - (n % 45)) / 45];
  }
  if (bytes.length % 2) {
    const n = bytes[bytes.length - 1];
    text += BASE45[n % 45] + BASE45[(n - (n % 45)) / 45];
  }
  return text;
}

// ---------------------------------------------------------------- the payload

/** The CBOR array P of docs/format.md for a licence or presentation. */
export function payloadItems(document, type) {
  const names = type.fields.map((f) => f.name);
  const keys = document.secret
    ? hexToBytes(document.secret)
    : names.filter((n) => n in document.fields).map((n) => hexToBytes(document.salts[n]));
  const fields = names.map((n) => {
    if (n in document.fields) return document.fields[n];
    if (document.hidden && n in document.hidden) return hexToBytes(document.hidden[n]);
    return null;
  });
  const { anchor } = document;
  const items = [
    suiteNamed(document.hashSuite ?? DEFAULT_SUITE).version,
    type.code,
    BigInt(anchor.chainId),
    hexToBytes(anchor.registry.toLowerCase()),
    hexToBytes(anchor.root),
    concat(...anchor.proof.map(hexToBytes)),
    keys,
    fields,
  ];
  // A presentation keeps its licence's seal: the verifier refuses a sealed batch's
  // licence without it.
  if (anchor.seal !== undefined) items.push(hexToBytes(anchor.seal));
  return items;
}

/** The EL1: text of a document: "EL1:" + Base45(zlib level 9 (CBOR(P))). */
export function encodePayload(document, type) {
  const cbor = cborEncode(payloadItems(document, type));
  // Level 9 with the default 32 KiB window gives the header 78 DA the reader requires.
  const compressed = pako.deflate(cbor, { level: 9 });
  const text = PREFIX + base45Encode(compressed);
  if (text.length > MAX_PAYLOAD_CHARS) {
    throw new FormatError("err-too-long", String(text.length));
  }
  return text;
}
