// Reading an EL1: payload in the browser, as strictly as the service (licence/payload.py):
// Base45, zlib with its header 78 DA and no free bits, deterministic CBOR, the layout of
// docs/format.md ("The payload"), then the document's own rules and the re-encoding rule.
// Each refusal carries the same reason code the service gives (PayloadRefused.code).
// The Base45, inflate and CBOR readers are elformat.js's, which EL2: payloads share.
//
// zlib is the vendored pako's inflate half (a classic <script>, global `pako`): the
// browser's DecompressionStream cannot stop at the 16 KiB cap or be told to refuse
// bytes after the stream, and the same code runs under Node in tests/web.

import {
  PayloadError as PayloadRefused,
  SUITE_OF_VERSION,
  base45Decode,
  byteString,
  bytesToHex,
  cborEncode,
  fieldsOf,
  inflateStrict,
  payloadArray,
  payloadItems,
  proofOf,
  sameBytes,
  typeCode,
} from "../elformat.js";
import { typeVersionOf } from "./document.js";

export { PayloadRefused, sameBytes };

export const PREFIX = "EL1:";
const MAX_PAYLOAD_CHARS = 4296; // the largest alphanumeric QR code (version 40-L)
const LAYOUT_ITEMS = 8; // a sealed payload has one more: the seal
const HASH = 16;
const ADDRESS = 20;
const SEAL = 64;

function inflate(data) {
  if (data.length < 2 || data[0] !== 0x78 || data[1] !== 0xda) {
    throw new PayloadRefused("zlib", "the zlib header must be 78 DA");
  }
  // The deflate stream runs from after the header to before the Adler-32.
  return inflateStrict(data, { options: { windowBits: 15 }, code: "zlib", first: 2, trailer: 4 });
}

// ---------------------------------------------------------------- the layout

const isInt = (v) => typeof v === "number" || typeof v === "bigint";

/** The JSON document (as parsed JSON) that the items P describe. */
function jsonOf(items, catalogue) {
  const [version, code, chainId, registry, root, proof, keys, fields] = items;
  typeCode(code);
  // An EL1: payload is of version 1 of its type (it names none).
  const type = typeVersionOf(catalogue, (t) => t.code === code, 1, `code ${code}`);
  if (!isInt(chainId) || !(BigInt(chainId) > 0n && BigInt(chainId) < 2n ** 64n)) {
    throw new PayloadRefused("layout", "[2] chainId must be an integer in 1..2**64-1");
  }
  byteString(registry, ADDRESS, "[3] registry");
  byteString(root, HASH, "[4] root");
  const proofs = proofOf(proof, "[5]");
  const { disclosed, hidden } = fieldsOf(fields, type, "[7]");
  const doc = {
    format: "elicence/1",
    hashSuite: SUITE_OF_VERSION[version],
    type: type.id,
    fields: disclosed,
    anchor: { chainId, registry: bytesToHex(registry), root: bytesToHex(root), proof: proofs },
  };
  if (items.length > LAYOUT_ITEMS) doc.anchor.seal = bytesToHex(byteString(items[LAYOUT_ITEMS], SEAL, "[8] seal"));
  const disclosedNames = Object.keys(disclosed);
  if (keys instanceof Uint8Array) {
    if (Object.keys(hidden).length) throw new PayloadRefused("layout", "[6] a full document (secret) hides no field");
    doc.secret = bytesToHex(byteString(keys, HASH, "[6] secret"));
  } else if (Array.isArray(keys) && keys.length === disclosedNames.length) {
    doc.salts = {};
    disclosedNames.forEach((name, i) => {
      doc.salts[name] = bytesToHex(byteString(keys[i], HASH, `[6] salt of ${name}`));
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
  return { json: jsonOf(payloadArray(raw, LAYOUT_ITEMS), catalogue), raw };
}
