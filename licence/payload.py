"""The `EL1:` payload: a licence or presentation as the text of a QR code.

A payload carries everything a verifier needs (fields, salts or secret, hidden
commitments, proof, anchor), so checking it needs the chain and nothing else.

    payload = "EL1:" || Base45(zlib(CBOR(P)))

- Base45 is RFC 9285 (alphabet `0-9 A-Z space $ % * + - . / :`, the QR alphanumeric set,
  so the whole text is coded in the QR's alphanumeric mode). Readers refuse characters
  outside the alphabet, a length of 3k+1 and groups whose value is out of range.
- zlib is RFC 1950: the two header bytes are exactly `78 DA` (deflate, 32 KiB window,
  no preset dictionary), then one deflate stream (RFC 1951), then the Adler-32 of the
  CBOR, and nothing after it. Writers compress at level 9. The bits deflate ignores (after
  a stored block's header, after the final block) are zero; readers refuse a stream
  where clearing one of them decodes the same, so that no bit of a payload can change
  without changing what it says or being refused.
- CBOR is RFC 8949 with the deterministic encoding of section 4.2.1 (shortest heads,
  definite lengths, no tags). P is an array of eight items, or nine when the batch is
  sealed:

      [0] version      unsigned integer: this layout and the document's hash suite,
                       1 = sha256-128, 2 = sm3-128 (one byte either way)
      [1] type         unsigned integer: the licence type's catalogue code (1..63)
      [2] chainId      unsigned integer 1..2^64-1: EIP-155 chain id of the registry's chain
      [3] registry     byte string of 20: the registry contract's address
      [4] root         byte string of 16: the batch root
      [5] proof        byte string of 16*n (n <= 40): the Merkle proof, bottom-up,
                       the hashes concatenated
      [6] keys         full document: byte string of 16, the licence secret;
                       presentation: array of byte strings of 16, the salt of each
                       disclosed field in catalogue order
      [7] fields       array with one item per field of the type, in catalogue order:
                       text string   the disclosed value
                       byte string   of 16: the commitment of a hidden field
                       null          the licence does not have this field
      [8] seal         byte string of 64: the agency's SM2 seal of the root
                       (licence.seal, r || s); absent for a batch anchored before its
                       agency had a seal key (an array of eight items)

The catalogue code and field order are those of `licence/licence_types/*.json`: a field
name is its position. Decoding builds the JSON document of docs/format.md and parses it
with the same strict rules, then re-encodes it and refuses the payload unless the CBOR
bytes are identical, so each document has one CBOR form.

A payload whose version names a suite this installation cannot compute is refused with
the reason `unsupported-hash-suite` (UnsupportedHashSuite.code), so that verifiers can
report it as such: the licence may be genuine.

Caps, checked before the work they protect: a payload is at most 4,296 characters (the
largest alphanumeric QR code) before anything is decoded; the decompressed CBOR at most
16 KiB, enforced while inflating.
"""

from __future__ import annotations

import io
import re
import sys
import zlib
from array import array
from typing import Any

import base45
import cbor2

from licence.catalogue import LicenceType, catalogue
from licence.digest import DEFAULT_SUITE, DIGEST_BYTES, SM3_SUITE
from licence.document import MAX_PROOF_LENGTH, LicenceDocument, parse_document
from licence.errors import DocumentError, PayloadError, UnknownLicenceType, UnsupportedHashSuite

PREFIX = "EL1:"
VERSION = 1  # the layout with the default suite
# Item [0] names the layout and the suite together, so a second suite costs no byte.
SUITE_OF_VERSION: dict[int, str] = {VERSION: DEFAULT_SUITE, 2: SM3_SUITE}
_VERSION_OF_SUITE = {suite: version for version, suite in SUITE_OF_VERSION.items()}
MAX_PAYLOAD_CHARS = 4296  # version 40-L alphanumeric: no QR code holds more
MAX_CBOR_BYTES = 16 * 1024

_ZLIB_HEADER = b"\x78\xda"
_BASE45 = re.compile(r"[0-9A-Z $%*+\-./:]*")
_LAYOUT_ITEMS = 8  # unsealed; a sealed payload has one item more, the seal
_SEAL = 64
_HASH = DIGEST_BYTES
_ADDRESS = 20


def encode_payload(document: LicenceDocument) -> str:
    """The `EL1:` payload of a licence or presentation (the same text every time)."""
    compressed = zlib.compress(_cbor_of(document), 9)
    text = PREFIX + bytes(base45.b45encode(compressed)).decode("ascii")
    if len(text) > MAX_PAYLOAD_CHARS:
        raise PayloadError(
            "too-long",
            f"the payload would be {len(text)} characters; a QR code holds {MAX_PAYLOAD_CHARS}"
            " (disclose fewer fields)",
        )
    return text


def decode_payload(text: str) -> LicenceDocument:
    """The document an `EL1:` payload carries; PayloadError names the step that failed."""
    if len(text) > MAX_PAYLOAD_CHARS:
        raise PayloadError(
            "too-long", f"{len(text)} characters; a payload has at most {MAX_PAYLOAD_CHARS}"
        )
    if not text.startswith(PREFIX):
        raise PayloadError("prefix", f"a payload starts with {PREFIX!r}, not {text[:4]!r}")
    compressed = _base45(text[len(PREFIX) :])
    raw = _inflate(compressed)
    items = _cbor_items(raw)
    try:
        document = parse_document(_json_of(items))
    except UnsupportedHashSuite as exc:
        raise PayloadError(exc.code, exc.reason) from None
    except DocumentError as exc:
        raise PayloadError("document", str(exc)) from None
    if _cbor_of(document) != raw:
        raise PayloadError("non-canonical", "the CBOR is not in its one deterministic form")
    return document


def _cbor_of(document: LicenceDocument) -> bytes:
    version = _VERSION_OF_SUITE.get(document.suite)
    if version is None:
        raise PayloadError(
            "unencodable",
            f"a payload carries the suites {', '.join(_VERSION_OF_SUITE)}, not {document.suite}",
        )
    if not 0 < document.anchor.chain_id < 2**64:
        raise PayloadError("unencodable", "payload version 1 carries chain ids below 2**64")
    names = document.licence_type.field_names
    keys: bytes | list[bytes]
    if document.secret is not None:
        keys = document.secret
    else:
        keys = [document.salts[n] for n in names if n in document.fields]
    fields: list[str | bytes | None] = [
        document.fields.get(n, document.hidden.get(n)) for n in names
    ]
    anchor = document.anchor
    items = [
        version,
        document.licence_type.code,
        anchor.chain_id,
        bytes.fromhex(anchor.registry[2:]),
        anchor.root,
        b"".join(anchor.proof),
        keys,
        fields,
    ]
    if anchor.seal is not None:
        items.append(anchor.seal)
    return cbor2.dumps(items, canonical=True)


def _base45(text: str) -> bytes:
    if not _BASE45.fullmatch(text):
        bad = next(c for c in text if not _BASE45.fullmatch(c))
        raise PayloadError("base45", f"{bad!r} is not a Base45 character")
    try:
        return base45_decode(text)
    except ValueError:
        raise PayloadError("base45", "not valid Base45 (bad length or group value)") from None


_B45_ALPHABET = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:"
_B45_VALUES = bytes(_B45_ALPHABET.index(c) if c in _B45_ALPHABET else 255 for c in range(256))


def base45_decode(text: str) -> bytes:
    """RFC 9285 Base45 decoding, done on whole columns of groups at once.

    The base45 package decodes group by group in Python; this is the hot path of every
    scanned QR code, so each of a group's three digits is taken as one slice of the text
    and combined in one pass (ValueError, as the package raises, for anything invalid).
    """
    digits = text.encode("ascii").translate(_B45_VALUES)
    if 255 in digits:
        raise ValueError("not a Base45 character")
    whole, rest = divmod(len(digits), 3)
    if rest == 1:
        raise ValueError("a Base45 text cannot end in a single character")
    cut = whole * 3
    values = [
        c + 45 * d + 2025 * e
        for c, d, e in zip(digits[0:cut:3], digits[1:cut:3], digits[2:cut:3], strict=True)
    ]
    if values and max(values) > 0xFFFF:
        raise ValueError("a Base45 group is larger than two bytes")
    pairs = array("H", values)
    if sys.byteorder == "little":
        pairs.byteswap()
    out = pairs.tobytes()
    if rest == 2:
        last = digits[cut] + 45 * digits[cut + 1]
        if last > 0xFF:
            raise ValueError("the last Base45 pair is larger than one byte")
        out += bytes([last])
    return out


def _inflate(data: bytes) -> bytes:
    if data[:2] != _ZLIB_HEADER:
        raise PayloadError("zlib", f"the zlib header must be 78 DA, not {data[:2].hex(' ')!r}")
    inflater = zlib.decompressobj()
    try:
        raw = inflater.decompress(data, MAX_CBOR_BYTES + 1)
    except zlib.error as exc:
        raise PayloadError("zlib", f"corrupt compressed data ({exc})") from None
    if len(raw) > MAX_CBOR_BYTES or inflater.unconsumed_tail:
        raise PayloadError("too-large", f"decompresses to more than {MAX_CBOR_BYTES} bytes")
    if not inflater.eof:
        raise PayloadError("zlib", "the compressed data is cut short")
    if inflater.unused_data:
        raise PayloadError("zlib", f"{len(inflater.unused_data)} bytes after the compressed data")
    if _has_free_bits(data, raw):
        raise PayloadError("non-canonical", "bits that deflate ignores are not zero")
    return raw


def _has_free_bits(data: bytes, raw: bytes) -> bool:
    # The padding after a stored block's 3-bit header, and after the end of the last
    # block, is ignored by inflate; left free, it would let a payload change and still
    # decode to the same presentation.
    first = data[2]
    if (first >> 1) & 0b11 == 0 and first >> 3:
        return True
    last = len(data) - 5  # the deflate stream's last byte, before the Adler-32
    for bit in range(8):
        if data[last] >> bit & 1:
            cleared = bytearray(data)
            cleared[last] ^= 1 << bit
            if _inflates_to(bytes(cleared), raw):
                return True
    return False


def _inflates_to(data: bytes, raw: bytes) -> bool:
    inflater = zlib.decompressobj()
    try:
        out = inflater.decompress(data, MAX_CBOR_BYTES + 1)
    except zlib.error:
        return False
    return inflater.eof and not inflater.unused_data and out == raw


def _cbor_items(raw: bytes) -> list[Any]:
    stream = io.BytesIO(raw)
    try:
        decoder = cbor2.CBORDecoder(stream, read_size=1, max_depth=4, allow_indefinite=False)
        value = decoder.decode()
    # The decoder runs on hostile bytes and its semantic-tag decoders raise many kinds of
    # error (ValueError, OverflowError, re.error, ...): every one means "malformed CBOR".
    except Exception as exc:
        raise PayloadError("cbor", f"malformed CBOR ({exc})") from None
    if stream.tell() != len(raw):
        raise PayloadError("cbor", f"{len(raw) - stream.tell()} bytes after the CBOR item")
    if not isinstance(value, list) or not value:
        raise PayloadError("layout", "the CBOR item must be an array of 8 or 9 items")
    if type(value[0]) is not int or value[0] not in SUITE_OF_VERSION:
        known = ", ".join(map(str, SUITE_OF_VERSION))
        raise PayloadError("version", f"unknown payload version {value[0]!r} (this reads {known})")
    if len(value) not in (_LAYOUT_ITEMS, _LAYOUT_ITEMS + 1):
        raise PayloadError(
            "layout", f"the array has {len(value)} items, not {_LAYOUT_ITEMS} or 9 (sealed)"
        )
    return value


def _json_of(items: list[Any]) -> dict[str, Any]:
    version, code, chain_id, registry, root, proof, keys, fields = items[:_LAYOUT_ITEMS]
    sealed = len(items) > _LAYOUT_ITEMS
    licence_type = _licence_type(code)
    if type(chain_id) is not int or not 0 < chain_id < 2**64:
        raise PayloadError("layout", "[2] chainId must be an integer in 1..2**64-1")
    _bytes(registry, _ADDRESS, "[3] registry")
    _bytes(root, _HASH, "[4] root")
    if type(proof) is not bytes or len(proof) % _HASH or len(proof) > MAX_PROOF_LENGTH * _HASH:
        raise PayloadError(
            "layout", f"[5] proof must be a byte string of {_HASH}*n bytes, n <= {MAX_PROOF_LENGTH}"
        )
    names = licence_type.field_names
    if type(fields) is not list or len(fields) != len(names):
        raise PayloadError("layout", f"[7] fields must be an array of {len(names)} items")
    disclosed: dict[str, str] = {}
    hidden: dict[str, str] = {}
    for name, item in zip(names, fields, strict=True):
        if type(item) is str:
            disclosed[name] = item
        elif type(item) is bytes:
            hidden[name] = _hex(_bytes(item, _HASH, f"[7] fields ({name})"))
        elif item is not None:
            raise PayloadError("layout", f"[7] fields ({name}) must be text, {_HASH} bytes or null")
    doc: dict[str, Any] = {
        "format": "elicence/1",
        "hashSuite": SUITE_OF_VERSION[version],
        "type": licence_type.id,
        "fields": disclosed,
        "anchor": {
            "chainId": chain_id,
            "registry": _hex(registry),
            "root": _hex(root),
            "proof": [_hex(proof[i : i + _HASH]) for i in range(0, len(proof), _HASH)],
        },
    }
    if sealed:
        doc["anchor"]["seal"] = _hex(_bytes(items[_LAYOUT_ITEMS], _SEAL, "[8] seal"))
    if type(keys) is bytes:
        if hidden:
            raise PayloadError("layout", "[6] a full document (secret) hides no field")
        doc["secret"] = _hex(_bytes(keys, _HASH, "[6] secret"))
    elif type(keys) is list and len(keys) == len(disclosed):
        doc["salts"] = {
            name: _hex(_bytes(salt, _HASH, f"[6] salt of {name}"))
            for name, salt in zip(disclosed, keys, strict=True)
        }
        doc["hidden"] = hidden
    else:
        raise PayloadError(
            "layout", f"[6] keys must be a secret of {_HASH} bytes or one salt per disclosed field"
        )
    return doc


def _licence_type(code: object) -> LicenceType:
    if type(code) is not int:
        raise PayloadError("layout", "[1] type must be a catalogue code")
    try:
        return catalogue().by_code(code)
    except UnknownLicenceType:
        raise PayloadError("type", f"no licence type has catalogue code {code}") from None


def _bytes(value: object, size: int, where: str) -> bytes:
    if type(value) is not bytes or len(value) != size:
        raise PayloadError("layout", f"{where} must be a byte string of {size} bytes")
    return value


def _hex(value: bytes) -> str:
    return "0x" + value.hex()
