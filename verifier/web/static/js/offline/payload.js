// Reading an EL1: payload in the browser, as strictly as the service (licence/payload.py):
// Base45, zlib with its header 78 DA and no free bits, deterministic CBOR, the layout of
// docs/format.md ("The payload"), then the document's own rules and the re-encoding rule.
// Each refusal carries the same reason code the service gives (PayloadRefused.code).
//
// zlib is the vendored pako's inflate half (a classic <script>, global `pako`): the
// browser's DecompressionStream cannot stop at the 16 KiB cap or be told to refuse
// bytes after the stream, and the same code runs under Node in tests/web.

import { cborEncode, payloadItems } from "../elformat.js";
import { typeVersionOf } from "./document.js";

export const PREFIX = "EL1:";
const MAX_PAYLOAD_CHARS = 4296; // the largest alphanumeric QR code (version 40-L)
const MAX_CBOR_BYTES = 16 * 1024;
const MAX_PROOF_LENGTH = 40;
const MAX_TYPE_CODE = 65535;
const LAYOUT_ITEMS = 8; // a sealed payload has one more: the seal
const HASH = 16;
const ADDRESS = 20;
const SEAL = 64;
// The service decodes with cbor2 and max_depth=4, which refuses any item (a scalar too)
// nested deeper than five levels, the outermost being level 1.
const MAX_DEPTH = 5;
export const SUITE_OF_VERSION = { 1: "sha256-128", 2: "sm3-128" };

/** A payload the service would refuse; `code` is its reason code (docs/format.md). */
export class PayloadRefused extends Error {
  constructor(code, detail) {
    super(`${code}: ${detail}`);
    this.code = code;
    this.detail = detail;
  }
}

// ---------------------------------------------------------------- Base45 (RFC 9285)

const BASE45 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:";

export function base45Decode(text) {
  const digits = [];
  for (const c of text) {
    const value = BASE45.indexOf(c);
    if (value < 0) throw new PayloadRefused("base45", `${JSON.stringify(c)} is not a Base45 character`);
    digits.push(value);
  }
  if (digits.length % 3 === 1) throw new PayloadRefused("base45", "not valid Base45 (bad length)");
  const out = [];
  let i = 0;
  for (; i + 2 < digits.length; i += 3) {
    const n = digits[i] + 45 * digits[i + 1] + 2025 * digits[i + 2];
    if (n > 0xffff) throw new PayloadRefused("base45", "not valid Base45 (group value)");
    out.push(n >> 8, n & 0xff);
  }
  if (i < digits.length) {
    const n = digits[i] + 45 * digits[i + 1];
    if (n > 0xff) throw new PayloadRefused("base45", "not valid Base45 (group value)");
    out.push(n);
  }
  return Uint8Array.from(out);
}

// ---------------------------------------------------------------- zlib (RFC 1950)

const TOO_LARGE = Symbol("too large");

/** {ok, raw, trailing, error} of inflating `data` with the cap, never throwing. */
function tryInflate(data) {
  const pako = globalThis.pako;
  if (!pako || typeof pako.Inflate !== "function") {
    throw new Error("the vendored pako inflate (vendor/pako/pako_inflate.umd.min.js) is not loaded");
  }
  const inflater = new pako.Inflate({ windowBits: 15, chunkSize: MAX_CBOR_BYTES + 1 });
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
    if (exc === TOO_LARGE) return { ok: false, error: "too-large" };
    return { ok: false, error: "zlib", detail: String(exc) };
  }
  if (!inflater.ended || inflater.err !== 0) {
    const cut = inflater.err === -5 || !inflater.ended;
    return { ok: false, error: "zlib", detail: cut ? "the compressed data is cut short" : inflater.msg };
  }
  const raw = new Uint8Array(total);
  let at = 0;
  for (const chunk of chunks) {
    raw.set(chunk, at);
    at += chunk.length;
  }
  return { ok: true, raw, trailing: inflater.strm.avail_in };
}

function sameBytes(a, b) {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i += 1) if (a[i] !== b[i]) return false;
  return true;
}

function inflate(data) {
  if (data.length < 2 || data[0] !== 0x78 || data[1] !== 0xda) {
    throw new PayloadRefused("zlib", "the zlib header must be 78 DA");
  }
  const result = tryInflate(data);
  if (!result.ok) throw new PayloadRefused(result.error, result.detail ?? "more than 16 KiB");
  if (result.trailing) throw new PayloadRefused("zlib", `${result.trailing} bytes after the compressed data`);
  if (hasFreeBits(data, result.raw)) {
    throw new PayloadRefused("non-canonical", "bits that deflate ignores are not zero");
  }
  return result.raw;
}

// The padding after a stored block's 3-bit header, and after the end of the last block,
// is ignored by inflate; left free, a payload could change and still decode the same.
function hasFreeBits(data, raw) {
  const first = data[2];
  if (((first >> 1) & 0b11) === 0 && first >> 3) return true;
  const last = data.length - 5; // the deflate stream's last byte, before the Adler-32
  for (let bit = 0; bit < 8; bit += 1) {
    if ((data[last] >> bit) & 1) {
      const cleared = data.slice();
      cleared[last] ^= 1 << bit;
      const again = tryInflate(cleared);
      if (again.ok && !again.trailing && sameBytes(again.raw, raw)) return true;
    }
  }
  return false;
}

// ---------------------------------------------------------------- CBOR (RFC 8949)

// What the service's decoder (cbor2) gives for kinds no payload uses: something that is
// no integer, bytes, text, array or null, so the layout checks refuse it as they do there.
class Other {
  constructor(kind) {
    this.kind = kind;
  }
}

const strictUtf8 = new TextDecoder("utf-8", { fatal: true });

function cborDecode(bytes) {
  let at = 0;
  const need = (n) => {
    if (at + n > bytes.length) throw new PayloadRefused("cbor", "malformed CBOR (premature end)");
  };
  const argument = (info) => {
    if (info < 24) return BigInt(info);
    const size = { 24: 1, 25: 2, 26: 4, 27: 8 }[info];
    if (size === undefined) throw new PayloadRefused("cbor", "malformed CBOR (indefinite or reserved length)");
    need(size);
    let n = 0n;
    for (let i = 0; i < size; i += 1) n = (n << 8n) | BigInt(bytes[at + i]);
    at += size;
    return n;
  };
  const length = (n) => {
    if (n > BigInt(bytes.length)) throw new PayloadRefused("cbor", "malformed CBOR (length)");
    return Number(n);
  };
  const item = (depth) => {
    if (depth > MAX_DEPTH) throw new PayloadRefused("cbor", "malformed CBOR (nested too deep)");
    need(1);
    const head = bytes[at];
    at += 1;
    const major = head >> 5;
    const info = head & 0x1f;
    if (major === 7) {
      if (info === 22) return null;
      if (info === 31) throw new PayloadRefused("cbor", "malformed CBOR (break)");
      if (info >= 28) throw new PayloadRefused("cbor", "malformed CBOR (reserved)");
      argument(info);
      return new Other("simple or float");
    }
    const n = argument(info);
    switch (major) {
      case 0:
        return n <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(n) : n;
      case 1: {
        const negative = -1n - n;
        return negative >= BigInt(Number.MIN_SAFE_INTEGER) ? Number(negative) : negative;
      }
      case 2: {
        const size = length(n);
        need(size);
        at += size;
        return bytes.slice(at - size, at);
      }
      case 3: {
        const size = length(n);
        need(size);
        at += size;
        try {
          return strictUtf8.decode(bytes.subarray(at - size, at));
        } catch {
          throw new PayloadRefused("cbor", "malformed CBOR (text is not UTF-8)");
        }
      }
      case 4: {
        const count = length(n);
        const out = [];
        for (let i = 0; i < count; i += 1) out.push(item(depth + 1));
        return out;
      }
      case 5: {
        const count = length(n);
        for (let i = 0; i < 2 * count; i += 1) item(depth + 1);
        return new Other("map");
      }
      default: // 6, a tag: what it tags is read, the whole is no payload item
        item(depth + 1);
        return new Other("tag");
    }
  };
  const value = item(1);
  if (at !== bytes.length) throw new PayloadRefused("cbor", `${bytes.length - at} bytes after the CBOR item`);
  return value;
}

// ---------------------------------------------------------------- the layout

const isInt = (v) => typeof v === "number" || typeof v === "bigint";
const isBytes = (v) => v instanceof Uint8Array;

function hex(bytes) {
  return "0x" + Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

function expectBytes(value, size, where) {
  if (!isBytes(value) || value.length !== size) {
    throw new PayloadRefused("layout", `${where} must be a byte string of ${size} bytes`);
  }
  return value;
}

function cborItems(raw) {
  const value = cborDecode(raw);
  if (!Array.isArray(value) || value.length === 0) {
    throw new PayloadRefused("layout", "the CBOR item must be an array of 8 or 9 items");
  }
  if (!isInt(value[0]) || !Object.hasOwn(SUITE_OF_VERSION, String(value[0]))) {
    throw new PayloadRefused("version", `unknown payload version ${String(value[0])}`);
  }
  if (value.length !== LAYOUT_ITEMS && value.length !== LAYOUT_ITEMS + 1) {
    throw new PayloadRefused("layout", `the array has ${value.length} items, not 8 or 9 (sealed)`);
  }
  return value;
}

/** The JSON document (as parsed JSON) that the items P describe. */
function jsonOf(items, catalogue) {
  const [version, code, chainId, registry, root, proof, keys, fields] = items;
  if (!isInt(code)) throw new PayloadRefused("layout", "[1] type must be a catalogue code");
  if (!(code >= 1 && code <= MAX_TYPE_CODE)) {
    throw new PayloadRefused("type", `[1] type code ${code} is not in 1..${MAX_TYPE_CODE}`);
  }
  // An EL1: payload is of version 1 of its type (it names none).
  const type = typeVersionOf(catalogue, (t) => t.code === code, 1, `code ${code}`);
  if (!isInt(chainId) || !(BigInt(chainId) > 0n && BigInt(chainId) < 2n ** 64n)) {
    throw new PayloadRefused("layout", "[2] chainId must be an integer in 1..2**64-1");
  }
  expectBytes(registry, ADDRESS, "[3] registry");
  expectBytes(root, HASH, "[4] root");
  if (!isBytes(proof) || proof.length % HASH || proof.length > MAX_PROOF_LENGTH * HASH) {
    throw new PayloadRefused("layout", "[5] proof must be a byte string of 16*n bytes, n <= 40");
  }
  const names = type.fields.map((f) => f.name);
  if (!Array.isArray(fields) || fields.length !== names.length) {
    throw new PayloadRefused("layout", `[7] fields must be an array of ${names.length} items`);
  }
  const disclosed = {};
  const hidden = {};
  names.forEach((name, i) => {
    const item = fields[i];
    if (typeof item === "string") disclosed[name] = item;
    else if (isBytes(item)) hidden[name] = hex(expectBytes(item, HASH, `[7] fields (${name})`));
    else if (item !== null) throw new PayloadRefused("layout", `[7] fields (${name}) must be text, 16 bytes or null`);
  });
  const proofs = [];
  for (let i = 0; i < proof.length; i += HASH) proofs.push(hex(proof.subarray(i, i + HASH)));
  const doc = {
    format: "elicence/1",
    hashSuite: SUITE_OF_VERSION[String(version)],
    type: type.id,
    fields: disclosed,
    anchor: { chainId, registry: hex(registry), root: hex(root), proof: proofs },
  };
  if (items.length > LAYOUT_ITEMS) doc.anchor.seal = hex(expectBytes(items[LAYOUT_ITEMS], SEAL, "[8] seal"));
  const disclosedNames = Object.keys(disclosed);
  if (isBytes(keys)) {
    if (Object.keys(hidden).length) throw new PayloadRefused("layout", "[6] a full document (secret) hides no field");
    doc.secret = hex(expectBytes(keys, HASH, "[6] secret"));
  } else if (Array.isArray(keys) && keys.length === disclosedNames.length) {
    doc.salts = {};
    disclosedNames.forEach((name, i) => {
      doc.salts[name] = hex(expectBytes(keys[i], HASH, `[6] salt of ${name}`));
    });
    doc.hidden = hidden;
  } else {
    throw new PayloadRefused("layout", "[6] keys must be a secret of 16 bytes or one salt per disclosed field");
  }
  return doc;
}

/** The CBOR bytes of a parsed document, as the service writes them (elformat.js's
 * items 0-7, and the seal as item 8 when the document has one). */
export function cborOf(document) {
  const items = payloadItems(
    {
      hashSuite: document.suite,
      fields: document.fields,
      secret: document.secret,
      salts: document.salts,
      hidden: document.hidden,
      anchor: document.anchorJson,
    },
    document.type,
  );
  return cborEncode(items);
}

/**
 * The document an EL1: payload carries, as the JSON value the service builds from it,
 * with the raw CBOR to hold the parsed document's encoding to. PayloadRefused otherwise.
 */
export function decodePayload(text, catalogue) {
  if (text.length > MAX_PAYLOAD_CHARS) {
    throw new PayloadRefused("too-long", `${text.length} characters; a payload has at most ${MAX_PAYLOAD_CHARS}`);
  }
  if (!text.startsWith(PREFIX)) throw new PayloadRefused("prefix", `a payload starts with ${PREFIX}`);
  const raw = inflate(base45Decode(text.slice(PREFIX.length)));
  return { json: jsonOf(cborItems(raw), catalogue), raw };
}

export { sameBytes };
