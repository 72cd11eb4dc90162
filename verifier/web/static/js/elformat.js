// The elicence/1 format in the browser, for the present page: read a licence or a
// presentation, hide fields, and write the EL2: payload of docs/format.md; and, for the
// offline verify page, read an EL2: payload (decodeEl2) with the Base45, inflate, CBOR
// and layout readers that the EL1: reader (js/offline/payload.js) uses too.
//
// Everything runs on the holder's device: hashing uses WebCrypto (crypto.subtle) for
// SHA-256 and the vendored sm-crypto for SM3 (WebCrypto has none; a global `sm3`), the
// CBOR and Base45 coders are the few lines below, and deflate is the vendored pako
// (a global `pako`: its deflate half on the present page, its inflate half on the verify
// page). Both globals come from classic <script>s loaded before this module.
//
// With H* the licence's hash suite's hash (SHA-256 for "sha256-128", SM3 for "sm3-128"):
//   salt(name)              = HMAC-H*(secret, UTF-8(name))[0:16]
//   commitment(name, value) = H*(0x02 || salt || JCS([name, value]))[0:16]
//   payload                 = "EL2:" || Base45(raw deflate with the preset dictionary
//                                  (js/payload-dictionary.js) of CBOR([suite, code,
//                                  typeVersion, proof, keys, fields(, seal)])))
// where suite is 1 (sha256-128) or 2 (sm3-128), keys the secret or the disclosed fields'
// salts concatenated, and item 6, the agency's 64-byte SM2 seal of the root, is there only
// when the licence has one. No root, chain or registry: the verifier uses its own.
//
// The service's decoder (licence/payload.py) is strict: deterministic CBOR, nothing after
// the stream, the free bits of deflate zero. tests/web feeds this module's payloads to it.

import { PAYLOAD_DICTIONARY } from "./payload-dictionary.js";

const DIGEST_BYTES = 16;
const DEFAULT_SUITE = "sha256-128";
const PREFIX = "EL2:";
const MAX_PAYLOAD_CHARS = 4296; // the largest alphanumeric QR code (version 40-L)
const MAX_CBOR_BYTES = 16 * 1024; // the cap while inflating
const MAX_PROOF_LENGTH = 40;
const MAX_TYPE_CODE = 65535;
const MAX_TYPE_VERSION = 65535;
const HEX16 = /^0x[0-9a-f]{32}$/;
const HEX_SEAL = /^0x[0-9a-f]{128}$/; // anchor.seal: SM2 r || s
const ADDRESS = /^0x[0-9a-fA-F]{40}$/;
const utf8 = new TextEncoder();
/** The EL2: payload's preset dictionary, as bytes (licence/payload_dictionary.txt). */
export const DICTIONARY = utf8.encode(PAYLOAD_DICTIONARY);

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
  const typeVersion = raw.typeVersion ?? 1; // absent: issued before type versions
  if (!Number.isSafeInteger(typeVersion) || typeVersion < 1 || typeVersion > MAX_TYPE_VERSION) {
    throw new FormatError("err-member", "typeVersion");
  }
  const type = catalogue.types.find((t) => t.id === raw.type && (t.version ?? 1) === typeVersion);
  if (!type) throw new FormatError("err-type", `${raw.type} version ${typeVersion}`);
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
    typeVersion: type.version ?? 1,
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

/** The CBOR array of an EL1: payload (docs/format.md), which readers still read: the
 * offline page re-encodes EL1: payloads with it to check they are canonical. */
export function payloadItems(document, type) {
  const names = type.fields.map((f) => f.name);
  const keys = document.secret
    ? hexToBytes(document.secret)
    : names.filter((n) => n in document.fields).map((n) => hexToBytes(document.salts[n]));
  const { anchor } = document;
  const items = [
    suiteNamed(document.hashSuite ?? DEFAULT_SUITE).version,
    type.code,
    BigInt(anchor.chainId),
    hexToBytes(anchor.registry.toLowerCase()),
    hexToBytes(anchor.root),
    concat(...anchor.proof.map(hexToBytes)),
    keys,
    fieldItems(document, names),
  ];
  if (anchor.seal !== undefined) items.push(hexToBytes(anchor.seal));
  return items;
}

function fieldItems(document, names) {
  return names.map((n) => {
    if (n in document.fields) return document.fields[n];
    if (document.hidden && n in document.hidden) return hexToBytes(document.hidden[n]);
    return null;
  });
}

/** The CBOR array P of an EL2: payload (docs/format.md) for a licence or presentation. */
export function el2Items(document, type) {
  const names = type.fields.map((f) => f.name);
  let keys;
  if (document.secret) {
    keys = hexToBytes(document.secret);
  } else {
    const shown = names.filter((n) => n in document.fields);
    const hidesNone = !document.hidden || Object.keys(document.hidden).length === 0;
    // Sixteen bytes of keys with no hidden field read as a secret; no type allows such a
    // presentation (three fields are required), so none is written.
    if (shown.length === 1 && hidesNone) throw new FormatError("err-member", "salts");
    keys = concat(...shown.map((n) => hexToBytes(document.salts[n])));
  }
  const items = [
    suiteNamed(document.hashSuite ?? DEFAULT_SUITE).version,
    type.code,
    document.typeVersion ?? type.version ?? 1,
    concat(...document.anchor.proof.map(hexToBytes)),
    keys,
    fieldItems(document, names),
  ];
  // A presentation keeps its licence's seal: the verifier refuses a sealed batch's
  // licence without it.
  if (document.anchor.seal !== undefined) items.push(hexToBytes(document.anchor.seal));
  return items;
}

/** The EL2: text of a document: "EL2:" + Base45(raw deflate, level 9, with the preset
 * dictionary, of CBOR(P)): the same text as licence/payload.py writes (tests/web). */
export function encodePayload(document, type) {
  const cbor = cborEncode(el2Items(document, type));
  // legacyHash: zlib's own hash of three bytes (pako 3's default hash differs), so that the
  // page writes zlib's stream, as Python does, and payloads as short.
  const compressed = pako.deflateRaw(cbor, { level: 9, dictionary: DICTIONARY, legacyHash: true });
  const text = PREFIX + base45Encode(compressed);
  if (text.length > MAX_PAYLOAD_CHARS) {
    throw new FormatError("err-too-long", String(text.length));
  }
  return text;
}

// ---------------------------------------------------------------- reading payloads

// What both readers share: this module's decodeEl2 and js/offline/payload.js (EL1:).

/** A payload refused; `code` is the service's reason code (docs/format.md).
 * js/offline/payload.js exports it as PayloadRefused. */
export class PayloadError extends Error {
  constructor(code, detail) {
    super(`${code}: ${detail}`);
    this.code = code;
    this.detail = detail;
  }
}

export function base45Decode(text) {
  const out = [];
  const digits = [];
  for (const c of text) {
    const value = BASE45.indexOf(c);
    if (value < 0) throw new PayloadError("base45", `${JSON.stringify(c)} is not a Base45 character`);
    digits.push(value);
  }
  if (digits.length % 3 === 1) throw new PayloadError("base45", "not valid Base45 (bad length)");
  let i = 0;
  for (; i + 2 < digits.length; i += 3) {
    const n = digits[i] + 45 * digits[i + 1] + 2025 * digits[i + 2];
    if (n > 0xffff) throw new PayloadError("base45", "not valid Base45 (group value)");
    out.push(n >> 8, n & 0xff);
  }
  if (i < digits.length) {
    const n = digits[i] + 45 * digits[i + 1];
    if (n > 0xff) throw new PayloadError("base45", "not valid Base45 (group value)");
    out.push(n);
  }
  return Uint8Array.from(out);
}

const TOO_LARGE = Symbol("too large");

/** {ok, raw, trailing, error, detail} of inflating `data` with pako `options` and the
 * 16 KiB cap (enforced while inflating: a bomb stops there); `error` is "too-large" or
 * `code`. Never throws. */
function tryInflate(data, options, code) {
  const inflate = globalThis.pako;
  if (!inflate || typeof inflate.Inflate !== "function") {
    throw new Error("the vendored pako inflate (vendor/pako/pako_inflate.umd.min.js) is not loaded");
  }
  const inflater = new inflate.Inflate({ ...options, chunkSize: MAX_CBOR_BYTES + 1 });
  const chunks = [];
  let total = 0;
  inflater.onData = (chunk) => {
    total += chunk.length;
    if (total > MAX_CBOR_BYTES) throw TOO_LARGE;
    chunks.push(chunk.slice());
  };
  try {
    inflater.push(data, true);
  } catch (exc) {
    if (exc === TOO_LARGE) return { ok: false, error: "too-large", detail: "more than 16 KiB" };
    return { ok: false, error: code, detail: String(exc) };
  }
  if (!inflater.ended || inflater.err !== 0) {
    const cut = inflater.err === -5 || !inflater.ended;
    return { ok: false, error: code, detail: cut ? "the compressed data is cut short" : inflater.msg };
  }
  return { ok: true, raw: concat(...chunks), trailing: inflater.strm.avail_in };
}

/**
 * What `data` inflates to with pako `options`, as strictly as the service: PayloadError
 * `code` ("deflate" for EL2:, "zlib" for EL1:) when it is corrupt, cut short or followed
 * by more bytes, "too-large" past 16 KiB, "non-canonical" when bits inflate ignores are
 * not zero. The deflate stream starts at byte `first` and `trailer` bytes (zlib's
 * Adler-32) follow it.
 */
export function inflateStrict(data, { options, code, first, trailer }) {
  const result = data.length ? tryInflate(data, options, code) : { ok: false, error: code, detail: "no data" };
  if (!result.ok) throw new PayloadError(result.error, result.detail);
  if (result.trailing) throw new PayloadError(code, `${result.trailing} bytes after the compressed data`);
  // The padding after a stored block's 3-bit header, and after the last block, is
  // ignored by inflate; left free, a payload could change and still decode the same.
  let free = ((data[first] >> 1) & 0b11) === 0 && data[first] >> 3 !== 0;
  const last = data.length - 1 - trailer;
  for (let bit = 0; bit < 8 && !free; bit += 1) {
    if ((data[last] >> bit) & 1) {
      const cleared = data.slice();
      cleared[last] ^= 1 << bit;
      const again = tryInflate(cleared, options, code);
      free = again.ok && !again.trailing && sameBytes(again.raw, result.raw);
    }
  }
  if (free) throw new PayloadError("non-canonical", "bits that deflate ignores are not zero");
  return result.raw;
}

export function sameBytes(a, b) {
  return a.length === b.length && a.every((byte, i) => byte === b[i]);
}

// As Python's UTF-8 decoding, which keeps a leading U+FEFF in the text.
const strictUtf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });
const NOT_A_PAYLOAD_ITEM = Symbol("another CBOR kind"); // refused by the layout checks
// The service decodes with cbor2 and max_depth=4, which refuses any item (a scalar too)
// nested deeper than five levels, the outermost being level 1.
const MAX_DEPTH = 5;

/**
 * The one CBOR item of `bytes`, as the service's decoder (cbor2) reads it: integers
 * (BigInt past 2^53), byte strings, text, arrays and null; every other kind it reads
 * (simple values, floats, maps, tags) is NOT_A_PAYLOAD_ITEM, which the layout refuses,
 * and what cbor2 refuses is PayloadError "cbor". The re-encoding check refuses any
 * non-deterministic form.
 */
export function cborDecode(bytes) {
  let at = 0;
  const need = (n) => {
    if (at + n > bytes.length) throw new PayloadError("cbor", "malformed CBOR (cut short)");
  };
  const argument = (info) => {
    if (info < 24) return BigInt(info);
    const size = { 24: 1, 25: 2, 26: 4, 27: 8 }[info];
    if (size === undefined) throw new PayloadError("cbor", "malformed CBOR (indefinite or reserved length)");
    need(size);
    let n = 0n;
    for (let i = 0; i < size; i += 1) n = (n << 8n) | BigInt(bytes[at + i]);
    at += size;
    return n;
  };
  const item = (depth) => {
    if (depth > MAX_DEPTH) throw new PayloadError("cbor", "malformed CBOR (nested too deep)");
    need(1);
    const head = bytes[at];
    at += 1;
    const major = head >> 5;
    const info = head & 0x1f;
    if (major === 7) {
      if (info === 22) return null;
      if (info === 31) throw new PayloadError("cbor", "malformed CBOR (break)");
      if (info >= 28) throw new PayloadError("cbor", "malformed CBOR (reserved)");
      const simple = argument(info); // or a float's bits
      // A simple value in two bytes is one of 32..255 (RFC 8949, section 3.3).
      if (info === 24 && simple < 32n) throw new PayloadError("cbor", "malformed CBOR (simple value)");
      return NOT_A_PAYLOAD_ITEM;
    }
    const n = argument(info);
    if (major === 0) return n <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(n) : n;
    if (major === 1) {
      const negative = -1n - n;
      return negative >= BigInt(Number.MIN_SAFE_INTEGER) ? Number(negative) : negative;
    }
    if (major === 2 || major === 3) {
      if (n > BigInt(bytes.length - at)) throw new PayloadError("cbor", "malformed CBOR (cut short)");
      const body = bytes.slice(at, at + Number(n));
      at += Number(n);
      if (major === 2) return body;
      try {
        return strictUtf8.decode(body);
      } catch {
        throw new PayloadError("cbor", "malformed CBOR (text is not UTF-8)");
      }
    }
    if (major === 4 || major === 5) {
      if (n > BigInt(bytes.length - at)) throw new PayloadError("cbor", "malformed CBOR (cut short)");
      const count = Number(n) * (major === 5 ? 2 : 1);
      const out = [];
      for (let i = 0; i < count; i += 1) out.push(item(depth + 1));
      return major === 4 ? out : NOT_A_PAYLOAD_ITEM;
    }
    item(depth + 1); // a tag's content
    return NOT_A_PAYLOAD_ITEM;
  };
  const value = item(1);
  if (at !== bytes.length) throw new PayloadError("cbor", `${bytes.length - at} bytes after the CBOR item`);
  return value;
}

const isBytes = (value, size) => value instanceof Uint8Array && (size === undefined || value.length === size);
const isInt = (value) => Number.isSafeInteger(value) && value >= 0;

// The layout checks both payloads share (licence/payload.py's _licence_type, _proof,
// _fields, _bytes); `where` is the item's index in the payload's array, as "[5]".

/** The payload's CBOR array of `size` items (one more when sealed), item [0] a hash
 * suite's number; PayloadError otherwise. */
export function payloadArray(raw, size) {
  const items = cborDecode(raw);
  if (!Array.isArray(items) || !items.length) {
    throw new PayloadError("layout", `the CBOR item must be an array of ${size} or ${size + 1} items`);
  }
  if (!isInt(items[0]) || SUITE_OF_VERSION[items[0]] === undefined) {
    throw new PayloadError("version", `unknown payload version ${String(items[0])}`);
  }
  if (items.length !== size && items.length !== size + 1) {
    throw new PayloadError("layout", `the array has ${items.length} items, not ${size} or ${size + 1} (sealed)`);
  }
  return items;
}

/** `value` when it is a byte string of `size` bytes; PayloadError "layout" otherwise. */
export function byteString(value, size, where) {
  if (!isBytes(value, size)) throw new PayloadError("layout", `${where} must be a byte string of ${size} bytes`);
  return value;
}

/** Item [1], the type's code: "layout" when no integer, "type" outside 1..65535. */
export function typeCode(code) {
  if (typeof code !== "number" && typeof code !== "bigint") {
    throw new PayloadError("layout", "[1] type must be a catalogue code");
  }
  if (!(code >= 1 && code <= MAX_TYPE_CODE)) {
    throw new PayloadError("type", `[1] type code ${code} is not in 1..${MAX_TYPE_CODE}`);
  }
  return code;
}

/** The proof item's digests, as hex: 16*n bytes, n <= 40; PayloadError "layout" otherwise. */
export function proofOf(proof, where) {
  if (!isBytes(proof) || proof.length % DIGEST_BYTES || proof.length > MAX_PROOF_LENGTH * DIGEST_BYTES) {
    throw new PayloadError("layout", `${where} proof must be a byte string of 16*n bytes, n <= ${MAX_PROOF_LENGTH}`);
  }
  const digests = [];
  for (let i = 0; i < proof.length; i += DIGEST_BYTES) digests.push(bytesToHex(proof.slice(i, i + DIGEST_BYTES)));
  return digests;
}

/** {disclosed, hidden} of the fields item, one entry a field of `type` in its order:
 * text (disclosed), a 16-byte commitment (hidden, as hex) or null (absent). */
export function fieldsOf(fields, type, where) {
  const names = type.fields.map((f) => f.name);
  if (!Array.isArray(fields) || fields.length !== names.length) {
    throw new PayloadError("layout", `${where} fields must be an array of ${names.length} items`);
  }
  const disclosed = {};
  const hidden = {};
  names.forEach((name, i) => {
    const value = fields[i];
    if (typeof value === "string") disclosed[name] = value;
    else if (isBytes(value)) hidden[name] = bytesToHex(byteString(value, DIGEST_BYTES, `${where} fields (${name})`));
    else if (value !== null) throw new PayloadError("layout", `${where} fields (${name}) must be text, 16 bytes or null`);
  });
  return { disclosed, hidden };
}

// ---------------------------------------------------------------- reading EL2:

/**
 * The document an EL2: payload carries, read with the verifier's own `deployment`
 * ({chainId, registry}: an EL2: payload names neither), as {json, raw}: `json` the JSON
 * document of docs/format.md (its anchor.root the root its leaf and proof fold to, which
 * the verifier looks up), `raw` the CBOR. `types` is {types: [...]} as GET v1/catalogue
 * gives them, or a function (code, version) returning one (or throwing). PayloadError
 * (`code` the service's reason) for what licence/payload.py refuses; the document's own
 * rules (a hidden mandatory field, ...) are the caller's strict parser's.
 */
export async function decodeEl2(text, types, deployment) {
  if (text.length > MAX_PAYLOAD_CHARS) {
    throw new PayloadError("too-long", `${text.length} characters; a payload has at most ${MAX_PAYLOAD_CHARS}`);
  }
  if (!text.startsWith(PREFIX)) throw new PayloadError("prefix", `an EL2: payload starts with "EL2:"`);
  if (!deployment || deployment.chainId === undefined || typeof deployment.registry !== "string") {
    throw new PayloadError("deployment", "an EL2: payload is read with the verifier's own chain id and registry");
  }
  const raw = inflateStrict(base45Decode(text.slice(PREFIX.length)), {
    options: { raw: true, dictionary: DICTIONARY },
    code: "deflate",
    first: 0,
    trailer: 0,
  });
  const items = payloadArray(raw, 6);
  const [suite, code, version, proof, keys, fields] = items;
  if (!isInt(version) || version < 1 || version > MAX_TYPE_VERSION) {
    throw new PayloadError("type-version", `[2] typeVersion must be an integer in 1..${MAX_TYPE_VERSION}`);
  }
  typeCode(code);
  const type = typeof types === "function"
    ? types(code, version)
    : types.types.find((t) => t.code === code && (t.version ?? 1) === version);
  if (!type) throw new PayloadError("type", `unknown licence type code ${code} version ${version}`);
  const proofHex = proofOf(proof, "[3]");
  const { disclosed, hidden } = fieldsOf(fields, type, "[5]");
  const json = {
    format: "elicence/1",
    hashSuite: SUITE_OF_VERSION[suite],
    type: type.id,
    typeVersion: version,
    fields: disclosed,
    anchor: { chainId: deployment.chainId, registry: deployment.registry, root: null, proof: proofHex },
  };
  if (items.length === 7) json.anchor.seal = bytesToHex(byteString(items[6], 64, "[6] seal"));
  const shown = Object.keys(disclosed);
  if (!isBytes(keys) || keys.length % DIGEST_BYTES) {
    throw new PayloadError("layout", "[4] keys must be a byte string of 16*n bytes");
  }
  if (keys.length === DIGEST_BYTES && !Object.keys(hidden).length) {
    json.secret = bytesToHex(keys);
  } else if (keys.length === DIGEST_BYTES * shown.length) {
    json.salts = {};
    shown.forEach((name, i) => {
      json.salts[name] = bytesToHex(keys.slice(i * DIGEST_BYTES, (i + 1) * DIGEST_BYTES));
    });
    json.hidden = hidden;
  } else {
    throw new PayloadError("layout", "[4] keys must be a secret of 16 bytes or 16 bytes of salt per disclosed field");
  }
  if (!sameBytes(cborEncode(el2Items(json, type)), raw)) {
    throw new PayloadError("non-canonical", "the CBOR is not in its one deterministic form");
  }
  json.anchor.root = bytesToHex(await rootOf(json, type.fields.map((f) => f.name)));
  return { json, raw };
}

/** Each hash suite's name by its number in a payload (item [0]). */
export const SUITE_OF_VERSION = Object.fromEntries(Object.entries(SUITES).map(([name, s]) => [s.version, name]));

/** The root a document's fields and proof lead to (docs/format.md, "Hashing"). */
async function rootOf(json, names) {
  const { hash } = suiteNamed(json.hashSuite);
  const secret = json.secret ? hexToBytes(json.secret) : null;
  const committed = {};
  for (const name of names) {
    if (name in json.fields) {
      const salt = secret ? await saltOf(secret, name, json.hashSuite) : hexToBytes(json.salts[name]);
      committed[name] = bytesToHex(await commitmentOf(name, json.fields[name], salt, json.hashSuite));
    } else if (json.hidden && name in json.hidden) {
      committed[name] = json.hidden[name];
    }
  }
  // JCS: keys sorted by UTF-16 code units, which is what Array.prototype.sort compares.
  const sorted = {};
  for (const name of Object.keys(committed).sort()) sorted[name] = committed[name];
  const body = JSON.stringify({ commitments: sorted, format: "elicence/1", hashSuite: json.hashSuite, type: json.type });
  let node = await hash(concat(Uint8Array.of(0x00), utf8.encode(body)));
  for (const sibling of json.anchor.proof.map(hexToBytes)) {
    const [a, b] = compare(node, sibling) <= 0 ? [node, sibling] : [sibling, node];
    node = await hash(concat(Uint8Array.of(0x01), a, b));
  }
  return node;
}

function compare(a, b) {
  for (let i = 0; i < a.length; i += 1) if (a[i] !== b[i]) return a[i] - b[i];
  return 0;
}
