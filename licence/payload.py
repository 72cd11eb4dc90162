"""QR payloads: a licence or presentation as the text of a QR code.

A payload carries what a verifier needs besides its own trust anchor (fields, salts or
secret, hidden commitments, proof, seal), so checking it needs the chain and nothing
else. Writers write `EL2:`; readers read `EL2:` and `EL1:` (codes printed before EL2).

    EL2 payload = "EL2:" || Base45(raw DEFLATE with a preset dictionary of CBOR(P))
    EL1 payload = "EL1:" || Base45(zlib(CBOR(P1)))

- Base45 is RFC 9285 (alphabet `0-9 A-Z space $ % * + - . / :`, the QR alphanumeric set,
  so the whole text is coded in the QR's alphanumeric mode). Readers refuse characters
  outside the alphabet, a length of 3k+1 and groups whose value is out of range.
- EL2: one raw DEFLATE stream (RFC 1951; no zlib header, no Adler-32: the CBOR's own
  checks and the hashes catch any change) whose window starts with the preset dictionary
  `licence/payload_dictionary.txt` (common words of Guangdong licences, SHA-256 in
  docs/format.md), and nothing after it. Writers compress at level 9; readers accept any
  valid stream with that dictionary (the CBOR must still be canonical).
- EL1: zlib (RFC 1950) with the header exactly `78 DA` (32 KiB window, no dictionary),
  the deflate stream, then the Adler-32 of the CBOR, and nothing after it.
- Both: the bits deflate ignores (after a stored block's header, after the final block)
  are zero; readers refuse a stream where clearing one of them decodes the same, so that
  no such bit of a payload can change without changing what it says or being refused.
- CBOR is RFC 8949 with the deterministic encoding of section 4.2.1 (shortest heads,
  definite lengths, no tags). EL2's P is an array of six items, or seven when sealed:

      [0] suite        unsigned integer: 1 = sha256-128, 2 = sm3-128
      [1] type         unsigned integer: the licence type's catalogue code (1..65535)
      [2] typeVersion  unsigned integer 1..65535: the version of the type it was issued under
      [3] proof        byte string of 16*n (n <= 40): the Merkle proof, bottom-up
      [4] keys         byte string: full document, the licence secret (16 bytes);
                       presentation, the salts of the disclosed fields concatenated in
                       catalogue order (16 each). Sixteen bytes with no hidden field are
                       a secret (a presentation disclosing one field hides another: every
                       type requires three)
      [5] fields       array with one item per field of the type version, in order:
                       text string   the disclosed value
                       byte string   of 16: the commitment of a hidden field
                       null          the licence does not have this field
      [6] seal         byte string of 64: the agency's SM2 seal of the root; absent for a
                       batch anchored before its agency had a seal key

  No root: the reader folds the leaf and the proof, and the verifier finds out whether
  that root is anchored. No chainId and no registry: they are the verifier's own (the
  arguments of decode_payload; without them an EL2 payload is refused, reason
  `deployment`). A payload read with another deployment gives a root that is not
  anchored there.
  EL1's P1 is [version (the suite: 1 or 2), type, chainId, registry (20 bytes), root
  (16), proof, keys (secret, or an array of salts), fields, seal?]: type version 1.

Decoding builds the JSON document of docs/format.md and parses it with the same strict
rules, then re-encodes it and refuses the payload unless the CBOR bytes are identical,
so each document has one CBOR form. A (type, version) the catalogue lacks raises
UnknownTypeVersion (a verifier may load it and decode again).

A payload whose suite this installation cannot compute is refused with the reason
`unsupported-hash-suite` (UnsupportedHashSuite.code), so that verifiers can report it as
such: the licence may be genuine.

Caps, checked before the work they protect: a payload is at most 4,296 characters (the
largest alphanumeric QR code) before anything is decoded; the decompressed CBOR at most
16 KiB, enforced while inflating.
"""

from __future__ import annotations

import dataclasses
import io
import re
import sys
import zlib
from array import array
from importlib import resources
from typing import Any

import base45
import cbor2

from licence.catalogue import MAX_TYPE_CODE, MAX_TYPE_VERSION, LicenceType, catalogue
from licence.digest import DEFAULT_SUITE, DIGEST_BYTES, SM3_SUITE
from licence.document import MAX_PROOF_LENGTH, LicenceDocument, parse_document
from licence.errors import (
    DocumentError,
    PayloadError,
    UnknownLicenceType,
    UnknownTypeVersion,
    UnsupportedHashSuite,
)
from licence.merkle import fold_proof

PREFIX = "EL2:"  # what writers write
EL1_PREFIX = "EL1:"
PREFIXES = (PREFIX, EL1_PREFIX)
LAYOUT = 2  # encode_payload's default; 1 writes EL1 (for readers that predate EL2)
VERSION = 1  # item [0] with the default suite
# Item [0] names the suite (EL1: the layout and the suite), so a second suite costs no byte.
SUITE_OF_VERSION: dict[int, str] = {VERSION: DEFAULT_SUITE, 2: SM3_SUITE}
_VERSION_OF_SUITE = {suite: version for version, suite in SUITE_OF_VERSION.items()}
MAX_PAYLOAD_CHARS = 4296  # version 40-L alphanumeric: no QR code holds more
MAX_CBOR_BYTES = 16 * 1024

# The preset dictionary: normative, its SHA-256 in docs/format.md. Read as bytes, as is.
DICTIONARY = (resources.files("licence") / "payload_dictionary.txt").read_bytes()
_RAW = -15  # zlib's wbits for a raw deflate stream with a 32 KiB window
_ZLIB_HEADER = b"\x78\xda"
_BASE45 = re.compile(r"[0-9A-Z $%*+\-./:]*")
_EL1_ITEMS = 8  # unsealed; a sealed payload has one item more, the seal
_EL2_ITEMS = 6
_SEAL = 64
_HASH = DIGEST_BYTES
_ADDRESS = 20
_ADDRESS_TEXT = re.compile(r"0x[0-9a-fA-F]{40}")


def encode_payload(document: LicenceDocument, *, layout: int = LAYOUT) -> str:
    """The payload of a licence or presentation (the same text every time): `EL2:`, or
    with `layout=1` the `EL1:` form that verifiers installed before EL2 read."""
    if layout == 2:
        compressor = zlib.compressobj(9, zlib.DEFLATED, _RAW, zdict=DICTIONARY)
        compressed = compressor.compress(_el2_cbor_of(document)) + compressor.flush()
        prefix = PREFIX
    elif layout == 1:
        compressed = zlib.compress(_el1_cbor_of(document), 9)
        prefix = EL1_PREFIX
    else:
        raise ValueError(f"payload layouts are 1 (EL1:) and 2 (EL2:), not {layout!r}")
    text = prefix + bytes(base45.b45encode(compressed)).decode("ascii")
    if len(text) > MAX_PAYLOAD_CHARS:
        raise PayloadError(
            "too-long",
            f"the payload would be {len(text)} characters; a QR code holds {MAX_PAYLOAD_CHARS}"
            " (disclose fewer fields)",
        )
    return text


def decode_payload(
    text: str, *, chain_id: int | None = None, registry: str | None = None
) -> LicenceDocument:
    """The document a payload carries; PayloadError names the step that failed.

    `chain_id` and `registry` are the verifier's own deployment (the chain and registry
    it trusts): an `EL2:` payload does not carry them and cannot be read without them
    (reason `deployment`). An `EL1:` payload carries its own and ignores them.
    UnknownTypeVersion when the catalogue lacks the payload's type version.
    """
    if len(text) > MAX_PAYLOAD_CHARS:
        raise PayloadError(
            "too-long", f"{len(text)} characters; a payload has at most {MAX_PAYLOAD_CHARS}"
        )
    if text.startswith(EL1_PREFIX):
        return _decode_el1(text)
    if not text.startswith(PREFIX):
        raise PayloadError(
            "prefix", f"a payload starts with {PREFIX!r} or {EL1_PREFIX!r}, not {text[:4]!r}"
        )
    deployment = _deployment(chain_id, registry)
    raw = _inflate_raw(_base45(text[len(PREFIX) :]))
    items = _cbor_items(raw, _EL2_ITEMS)
    document = _parsed(_el2_json_of(items, deployment))
    # The root is what the leaf and the proof fold to: the verifier asks whether it is
    # anchored. The parsed document's hashes are kept, not computed again.
    root = fold_proof(document.licence_id, document.anchor.proof, document.suite)
    rooted = dataclasses.replace(document, anchor=dataclasses.replace(document.anchor, root=root))
    rooted.__dict__["commitments"] = document.commitments
    rooted.__dict__["licence_id"] = document.licence_id
    if _el2_cbor_of(rooted) != raw:
        raise PayloadError("non-canonical", "the CBOR is not in its one deterministic form")
    return rooted


def _deployment(chain_id: int | None, registry: str | None) -> tuple[int, str]:
    if chain_id is None or registry is None:
        raise PayloadError(
            "deployment",
            "an EL2: payload names no chain or registry: it is read with the verifier's own "
            "(chain id and registry address)",
        )
    if type(chain_id) is not int or not 0 < chain_id < 2**64:
        raise PayloadError("deployment", f"chain id {chain_id!r} is not in 1..2**64-1")
    if not isinstance(registry, str) or not _ADDRESS_TEXT.fullmatch(registry):
        raise PayloadError("deployment", f"registry {registry!r} is not a 0x address")
    return chain_id, registry


def _decode_el1(text: str) -> LicenceDocument:
    raw = _inflate_zlib(_base45(text[len(EL1_PREFIX) :]))
    items = _cbor_items(raw, _EL1_ITEMS)
    document = _parsed(_el1_json_of(items))
    if _el1_cbor_of(document) != raw:
        raise PayloadError("non-canonical", "the CBOR is not in its one deterministic form")
    return document


def _parsed(doc: dict[str, Any]) -> LicenceDocument:
    try:
        return parse_document(doc)
    except UnsupportedHashSuite as exc:
        raise PayloadError(exc.code, exc.reason) from None
    except UnknownTypeVersion:
        raise
    except DocumentError as exc:
        raise PayloadError("document", str(exc)) from None


def _suite_number(document: LicenceDocument) -> int:
    number = _VERSION_OF_SUITE.get(document.suite)
    if number is None:
        raise PayloadError(
            "unencodable",
            f"a payload carries the suites {', '.join(_VERSION_OF_SUITE)}, not {document.suite}",
        )
    return number


def _field_items(document: LicenceDocument) -> list[str | bytes | None]:
    return [
        document.fields.get(n, document.hidden.get(n)) for n in document.licence_type.field_names
    ]


def _el2_cbor_of(document: LicenceDocument) -> bytes:
    names = document.licence_type.field_names
    if document.secret is not None:
        keys = document.secret
    else:
        if len(document.fields) == 1 and not document.hidden:
            # Its 16 bytes of keys would read as a secret; no type allows it (three fields
            # are required), so it is refused rather than written ambiguously.
            raise PayloadError(
                "unencodable", "a presentation of one field that hides none reads as a licence"
            )
        keys = b"".join(document.salts[n] for n in names if n in document.fields)
    items: list[object] = [
        _suite_number(document),
        document.licence_type.code,
        document.licence_type.version,
        b"".join(document.anchor.proof),
        keys,
        _field_items(document),
    ]
    if document.anchor.seal is not None:
        items.append(document.anchor.seal)
    return cbor2.dumps(items, canonical=True)


def _el1_cbor_of(document: LicenceDocument) -> bytes:
    version = _suite_number(document)
    if document.licence_type.version != 1:
        raise PayloadError(
            "unencodable",
            f"an EL1: payload names no type version; this licence is of version "
            f"{document.licence_type.version}",
        )
    if not 0 < document.anchor.chain_id < 2**64:
        raise PayloadError("unencodable", "payload version 1 carries chain ids below 2**64")
    names = document.licence_type.field_names
    keys: bytes | list[bytes]
    if document.secret is not None:
        keys = document.secret
    else:
        keys = [document.salts[n] for n in names if n in document.fields]
    anchor = document.anchor
    items = [
        version,
        document.licence_type.code,
        anchor.chain_id,
        bytes.fromhex(anchor.registry[2:]),
        anchor.root,
        b"".join(anchor.proof),
        keys,
        _field_items(document),
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


def _inflate_zlib(data: bytes) -> bytes:
    if data[:2] != _ZLIB_HEADER:
        raise PayloadError("zlib", f"the zlib header must be 78 DA, not {data[:2].hex(' ')!r}")
    raw = _inflated(data, zlib.decompressobj(), "zlib")
    if _has_free_bits(data, raw, first=2, last=len(data) - 5, inflater=zlib.decompressobj):
        raise PayloadError("non-canonical", "bits that deflate ignores are not zero")
    return raw


def _raw_inflater() -> Any:
    return zlib.decompressobj(_RAW, zdict=DICTIONARY)


def _inflate_raw(data: bytes) -> bytes:
    raw = _inflated(data, _raw_inflater(), "deflate")
    if _has_free_bits(data, raw, first=0, last=len(data) - 1, inflater=_raw_inflater):
        raise PayloadError("non-canonical", "bits that deflate ignores are not zero")
    return raw


def _inflated(data: bytes, inflater: Any, step: str) -> bytes:
    try:
        # The cap is enforced while inflating: a bomb stops after MAX_CBOR_BYTES + 1.
        raw: bytes = inflater.decompress(data, MAX_CBOR_BYTES + 1)
    except zlib.error as exc:
        raise PayloadError(step, f"corrupt compressed data ({exc})") from None
    if len(raw) > MAX_CBOR_BYTES or inflater.unconsumed_tail:
        raise PayloadError("too-large", f"decompresses to more than {MAX_CBOR_BYTES} bytes")
    if not inflater.eof:
        raise PayloadError(step, "the compressed data is cut short")
    if inflater.unused_data:
        raise PayloadError(step, f"{len(inflater.unused_data)} bytes after the compressed data")
    return raw


def _has_free_bits(data: bytes, raw: bytes, *, first: int, last: int, inflater: Any) -> bool:
    # The padding after a stored block's 3-bit header, and after the end of the last
    # block, is ignored by inflate; left free, it would let a payload change and still
    # decode to the same presentation. `first` and `last` are the deflate stream's first
    # and last bytes.
    head = data[first]
    if (head >> 1) & 0b11 == 0 and head >> 3:
        return True
    for bit in range(8):
        if data[last] >> bit & 1:
            cleared = bytearray(data)
            cleared[last] ^= 1 << bit
            if _inflates_to(bytes(cleared), raw, inflater()):
                return True
    return False


def _inflates_to(data: bytes, raw: bytes, inflater: Any) -> bool:
    try:
        out = inflater.decompress(data, MAX_CBOR_BYTES + 1)
    except zlib.error:
        return False
    return bool(inflater.eof) and not inflater.unused_data and out == raw


def _cbor_items(raw: bytes, size: int) -> list[Any]:
    """The CBOR array of `size` items (one more when sealed)."""
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
        raise PayloadError(
            "layout", f"the CBOR item must be an array of {size} or {size + 1} items"
        )
    if type(value[0]) is not int or value[0] not in SUITE_OF_VERSION:
        known = ", ".join(map(str, SUITE_OF_VERSION))
        raise PayloadError("version", f"unknown payload version {value[0]!r} (this reads {known})")
    if len(value) not in (size, size + 1):
        raise PayloadError(
            "layout", f"the array has {len(value)} items, not {size} or {size + 1} (sealed)"
        )
    return value


def _el2_json_of(items: list[Any], deployment: tuple[int, str]) -> dict[str, Any]:
    suite, code, version, proof, keys, fields = items[:_EL2_ITEMS]
    if type(version) is not int or not 1 <= version <= MAX_TYPE_VERSION:
        raise PayloadError(
            "type-version", f"[2] typeVersion must be an integer in 1..{MAX_TYPE_VERSION}"
        )
    licence_type = _licence_type(code, version)
    _proof(proof, "[3]")
    disclosed, hidden = _fields(fields, licence_type, "[5]")
    chain_id, registry = deployment
    doc = _document(
        suite,
        licence_type,
        disclosed=disclosed,
        chain_id=chain_id,
        registry=registry,
        root=bytes(_HASH),
        proof=proof,
    )
    if len(items) > _EL2_ITEMS:
        doc["anchor"]["seal"] = _hex(_bytes(items[_EL2_ITEMS], _SEAL, "[6] seal"))
    if type(keys) is not bytes or len(keys) % _HASH:
        raise PayloadError("layout", f"[4] keys must be a byte string of {_HASH}*n bytes")
    if len(keys) == _HASH and not hidden:
        doc["secret"] = _hex(keys)
    elif len(keys) == _HASH * len(disclosed):
        doc["salts"] = {
            name: _hex(keys[i * _HASH : (i + 1) * _HASH]) for i, name in enumerate(disclosed)
        }
        doc["hidden"] = hidden
    else:
        raise PayloadError(
            "layout",
            f"[4] keys must be a secret of {_HASH} bytes or {_HASH} bytes of salt per "
            "disclosed field",
        )
    return doc


def _el1_json_of(items: list[Any]) -> dict[str, Any]:
    version, code, chain_id, registry, root, proof, keys, fields = items[:_EL1_ITEMS]
    licence_type = _licence_type(code, 1)
    if type(chain_id) is not int or not 0 < chain_id < 2**64:
        raise PayloadError("layout", "[2] chainId must be an integer in 1..2**64-1")
    _bytes(registry, _ADDRESS, "[3] registry")
    _bytes(root, _HASH, "[4] root")
    _proof(proof, "[5]")
    disclosed, hidden = _fields(fields, licence_type, "[7]")
    doc = _document(
        version,
        licence_type,
        disclosed=disclosed,
        chain_id=chain_id,
        registry=_hex(registry),
        root=root,
        proof=proof,
    )
    if len(items) > _EL1_ITEMS:
        doc["anchor"]["seal"] = _hex(_bytes(items[_EL1_ITEMS], _SEAL, "[8] seal"))
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


def _document(
    suite: int,
    licence_type: LicenceType,
    *,
    disclosed: dict[str, str],
    chain_id: int,
    registry: str,
    root: bytes,
    proof: bytes,
) -> dict[str, Any]:
    """The JSON document of docs/format.md, without its secret or salts."""
    return {
        "format": "elicence/1",
        "hashSuite": SUITE_OF_VERSION[suite],
        "type": licence_type.id,
        "typeVersion": licence_type.version,
        "fields": disclosed,
        "anchor": {
            "chainId": chain_id,
            "registry": registry,
            "root": _hex(root),
            "proof": [_hex(proof[i : i + _HASH]) for i in range(0, len(proof), _HASH)],
        },
    }


def _proof(proof: object, where: str) -> None:
    if type(proof) is not bytes or len(proof) % _HASH or len(proof) > MAX_PROOF_LENGTH * _HASH:
        raise PayloadError(
            "layout",
            f"{where} proof must be a byte string of {_HASH}*n bytes, n <= {MAX_PROOF_LENGTH}",
        )


def _fields(
    fields: object, licence_type: LicenceType, where: str
) -> tuple[dict[str, str], dict[str, str]]:
    """The disclosed values and hidden commitments (hex) of the fields item."""
    names = licence_type.field_names
    if type(fields) is not list or len(fields) != len(names):
        raise PayloadError("layout", f"{where} fields must be an array of {len(names)} items")
    disclosed: dict[str, str] = {}
    hidden: dict[str, str] = {}
    for name, item in zip(names, fields, strict=True):
        if type(item) is str:
            disclosed[name] = item
        elif type(item) is bytes:
            hidden[name] = _hex(_bytes(item, _HASH, f"{where} fields ({name})"))
        elif item is not None:
            raise PayloadError(
                "layout", f"{where} fields ({name}) must be text, {_HASH} bytes or null"
            )
    return disclosed, hidden


def _licence_type(code: object, version: int) -> LicenceType:
    if type(code) is not int:
        raise PayloadError("layout", "[1] type must be a catalogue code")
    if not 1 <= code <= MAX_TYPE_CODE:
        raise PayloadError("type", f"[1] type code {code} is not in 1..{MAX_TYPE_CODE}")
    try:
        return catalogue().by_code(code, version)
    except UnknownLicenceType:
        # A verifier may load that version (checked against the registry) and decode again.
        raise UnknownTypeVersion(code, version) from None


def _bytes(value: object, size: int, where: str) -> bytes:
    if type(value) is not bytes or len(value) != size:
        raise PayloadError("layout", f"{where} must be a byte string of {size} bytes")
    return value


def _hex(value: bytes) -> str:
    return "0x" + value.hex()
