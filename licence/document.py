"""The elicence/1 document: a licence (or a presentation of it) and its anchor.

A full document carries every field and the licence secret; a presentation carries the
disclosed fields with their salts and, for each hidden field, only its commitment. Both
lead to the same licence id, and the same root through the Merkle proof. docs/format.md
is the normative description; this module parses strictly (unknown members, duplicate
keys, malformed hex are errors naming the offending member) because a lenient parser is
where two verifiers start to disagree.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from typing import Any

from Crypto.Hash import keccak

from licence.catalogue import MAX_TYPE_VERSION, LicenceType, catalogue
from licence.digest import (
    DEFAULT_SUITE,
    DIGEST_BYTES,
    FORMAT,
    commitment,
    derive_salts,
    hash_function,
    leaf_hash,
    salt,
)
from licence.errors import DocumentError, UnknownLicenceType, UnknownTypeVersion
from licence.merkle import fold_proof

MAX_DOCUMENT_BYTES = 64 * 1024
MAX_PROOF_LENGTH = 40  # a 2^40-licence batch is far beyond any province
_HEX_DIGEST = re.compile(rf"0x[0-9a-f]{{{2 * DIGEST_BYTES}}}")
_ADDRESS = re.compile(r"0x[0-9a-fA-F]{40}")
_HEX_SEAL = re.compile(r"0x[0-9a-f]{128}")
SEAL_BYTES = 64  # licence.seal.SEAL_BYTES: an SM2 signature r || s


@dataclass(frozen=True)
class AnchorRef:
    """Where the licence's batch root is anchored, the licence's path to it, and the
    agency's SM2 seal over the root (licence.seal; None for a batch anchored before its
    agency had a seal key)."""

    chain_id: int
    registry: str
    root: bytes
    proof: tuple[bytes, ...]
    seal: bytes | None = None


@dataclass(frozen=True)
class LicenceDocument:
    """A licence or a presentation of it, with its anchor reference."""

    licence_type: LicenceType
    fields: dict[str, str]
    anchor: AnchorRef
    suite: str = DEFAULT_SUITE
    secret: bytes | None = None
    salts: dict[str, bytes] = field(default_factory=dict)
    hidden: dict[str, bytes] = field(default_factory=dict)

    @property
    def is_presentation(self) -> bool:
        """True when the salts are given one by one rather than derived from a secret."""
        return self.secret is None

    def salt_of(self, name: str) -> bytes:
        """The salt of a disclosed field."""
        if self.secret is not None:
            return salt(self.secret, name, self.suite)
        return self.salts[name]

    @cached_property
    def commitments(self) -> dict[str, bytes]:
        """Each present field's commitment, disclosed or hidden, in catalogue order."""
        fields, hidden, suite = self.fields, self.hidden, self.suite
        salts = (
            dict(zip(fields, derive_salts(self.secret, list(fields), suite), strict=True))
            if self.secret is not None
            else self.salts
        )
        result: dict[str, bytes] = {}
        for name in self.licence_type.field_names:
            if name in fields:
                result[name] = commitment(name, fields[name], salts[name], suite)
            elif name in hidden:
                result[name] = hidden[name]
        return result

    @cached_property
    def licence_id(self) -> bytes:
        """The leaf hash: what the registry's statuses are keyed by."""
        return leaf_hash(self.licence_type.id, self.commitments, self.suite)

    def computed_root(self) -> bytes:
        """The root the document's fields and proof lead to."""
        return fold_proof(self.licence_id, self.anchor.proof, self.suite)

    def to_json(self) -> dict[str, Any]:
        """The document as a JSON object (member order for people; hashing does not use it)."""
        names = self.licence_type.field_names
        doc: dict[str, Any] = {
            "format": FORMAT,
            "hashSuite": self.suite,
            "type": self.licence_type.id,
            "typeVersion": self.licence_type.version,
            "fields": {n: self.fields[n] for n in names if n in self.fields},
        }
        if self.secret is not None:
            doc["secret"] = _hex(self.secret)
        else:
            doc["salts"] = {n: _hex(self.salts[n]) for n in names if n in self.salts}
            doc["hidden"] = {n: _hex(self.hidden[n]) for n in names if n in self.hidden}
        anchor: dict[str, Any] = {
            "chainId": self.anchor.chain_id,
            "registry": self.anchor.registry,
            "root": _hex(self.anchor.root),
        }
        # Before the proof: issuing writes everything up to the proof once per batch.
        if self.anchor.seal is not None:
            anchor["seal"] = _hex(self.anchor.seal)
        anchor["proof"] = [_hex(p) for p in self.anchor.proof]
        doc["anchor"] = anchor
        return doc

    def to_bytes(self) -> bytes:
        """The document as compact UTF-8 JSON on one line, as written to files.

        Compact because batches write tens of thousands of these, and json's C encoder
        only serves the unindented form (about four times faster); any JSON viewer
        indents it for a person.
        """
        text = json.dumps(self.to_json(), ensure_ascii=False, separators=(",", ":"))
        return (text + "\n").encode("utf-8")


def _hex(value: bytes) -> str:
    return "0x" + value.hex()


def _reject_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise DocumentError(key, "appears twice in one object")
        result[key] = value
    return result


def _reject_constant(name: str) -> Any:
    raise DocumentError("", f"{name} is not a JSON number")


def loads_document(data: bytes | str) -> LicenceDocument:
    """Parse a document from JSON text; DocumentError says what is wrong and where."""
    if isinstance(data, str):
        data = data.encode("utf-8")
    if len(data) > MAX_DOCUMENT_BYTES:
        raise DocumentError("", f"document is {len(data)} bytes; the limit is {MAX_DOCUMENT_BYTES}")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DocumentError("", f"not UTF-8 text (byte {exc.start})") from None
    try:
        raw = json.loads(
            text, object_pairs_hook=_reject_duplicate_keys, parse_constant=_reject_constant
        )
    except json.JSONDecodeError as exc:
        raise DocumentError(
            "", f"not JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from None
    return parse_document(raw)


def parse_document(raw: object) -> LicenceDocument:
    """Check a decoded JSON value and build the document it describes."""
    obj = _object(raw, "")
    _only_members(
        obj,
        "",
        required={"format", "type", "fields", "anchor"},
        optional={"hashSuite", "typeVersion", "secret", "salts", "hidden"},
    )
    if obj["format"] != FORMAT:
        raise DocumentError(
            "format", f"unsupported format {obj['format']!r} (this version reads {FORMAT})"
        )
    suite = _string(obj.get("hashSuite", DEFAULT_SUITE), "hashSuite")
    hash_function(suite)
    type_id = _string(obj["type"], "type")
    version = _type_version(obj.get("typeVersion", 1))
    try:
        licence_type = catalogue().get(type_id, version)
    except UnknownLicenceType:
        # A verifier may load that version (checked against the registry) and parse again.
        raise UnknownTypeVersion(type_id, version, _root_if_any(obj["anchor"])) from None

    fields = _fields(obj["fields"], licence_type)
    secret, salts, hidden = _secret_or_salts(obj, fields, licence_type)
    for spec in licence_type.fields:
        if spec.required and spec.name not in fields and spec.name not in hidden:
            raise DocumentError(
                f"fields.{spec.name}", "required field is neither disclosed nor hidden"
            )
    return LicenceDocument(
        licence_type=licence_type,
        fields=fields,
        anchor=_anchor(obj["anchor"]),
        suite=suite,
        secret=secret,
        salts=salts,
        hidden=hidden,
    )


def _type_version(raw: object) -> int:
    # bool is an int in Python, not a version in JSON.
    if not isinstance(raw, int) or isinstance(raw, bool) or not 1 <= raw <= MAX_TYPE_VERSION:
        raise DocumentError("typeVersion", f"must be a whole number from 1 to {MAX_TYPE_VERSION}")
    return raw


def _fields(raw: object, licence_type: LicenceType) -> dict[str, str]:
    obj = _object(raw, "fields")
    for name, value in obj.items():
        if licence_type.field(name) is None:
            raise DocumentError(
                f"fields.{name}", f"is not a field of {licence_type.name.zh} ({licence_type.id})"
            )
        text = _string(value, f"fields.{name}")
        if not text.isascii():
            try:
                text.encode("utf-8")
            except UnicodeEncodeError:
                raise DocumentError(
                    f"fields.{name}", "contains an unpaired surrogate (not Unicode text)"
                ) from None
    return dict(obj)


def _secret_or_salts(
    obj: Mapping[str, object], fields: Mapping[str, str], licence_type: LicenceType
) -> tuple[bytes | None, dict[str, bytes], dict[str, bytes]]:
    if "secret" in obj:
        for member in ("salts", "hidden"):
            if member in obj:
                raise DocumentError(
                    member, "a full document has a secret and no salts or hidden fields"
                )
        return _digest(obj["secret"], "secret"), {}, {}
    if "salts" not in obj:
        raise DocumentError(
            "secret", "missing: a document needs a secret (or, as a presentation, salts)"
        )
    salts = {k: _digest(v, f"salts.{k}") for k, v in _object(obj["salts"], "salts").items()}
    hidden = {
        k: _digest(v, f"hidden.{k}") for k, v in _object(obj.get("hidden", {}), "hidden").items()
    }
    if set(salts) != set(fields):
        missing = sorted(set(fields) - set(salts))
        extra = sorted(set(salts) - set(fields))
        where = f"salts.{(missing or extra)[0]}"
        raise DocumentError(
            where,
            "every disclosed field needs exactly one salt"
            + (" (missing)" if missing else " (no such disclosed field)"),
        )
    for name in hidden:
        if licence_type.field(name) is None:
            raise DocumentError(
                f"hidden.{name}", f"is not a field of {licence_type.name.zh} ({licence_type.id})"
            )
        if name in fields:
            raise DocumentError(f"hidden.{name}", "is both disclosed and hidden")
        if name in licence_type.mandatory_disclosure:
            raise DocumentError(f"hidden.{name}", "must always be disclosed")
    return None, salts, hidden


def _root_if_any(raw: object) -> bytes | None:
    """The anchor's root if the anchor member is well formed, else None (no error: the
    document is refused for its type first)."""
    try:
        return _anchor(raw).root
    except DocumentError:
        return None


def _anchor(raw: object) -> AnchorRef:
    obj = _object(raw, "anchor")
    _only_members(
        obj, "anchor", required={"chainId", "registry", "root", "proof"}, optional={"seal"}
    )
    chain_id = obj["chainId"]
    if not isinstance(chain_id, int) or isinstance(chain_id, bool) or chain_id <= 0:
        raise DocumentError("anchor.chainId", "must be a positive whole number")
    registry = _string(obj["registry"], "anchor.registry")
    if not _ADDRESS.fullmatch(registry):
        raise DocumentError("anchor.registry", "must be 0x followed by 40 hex digits")
    if registry != registry.lower() and _checksummed(registry.lower()) != registry:
        raise DocumentError("anchor.registry", "mixed-case address with a wrong EIP-55 checksum")
    proof = obj["proof"]
    if not isinstance(proof, list):
        raise DocumentError("anchor.proof", "must be a list of hashes")
    if len(proof) > MAX_PROOF_LENGTH:
        raise DocumentError("anchor.proof", f"has {len(proof)} hashes; at most {MAX_PROOF_LENGTH}")
    return AnchorRef(
        chain_id=chain_id,
        registry=_checksummed(registry.lower()),
        root=_digest(obj["root"], "anchor.root"),
        proof=tuple(_digest(p, f"anchor.proof[{i}]") for i, p in enumerate(proof)),
        seal=_seal(obj["seal"]) if "seal" in obj else None,
    )


def _seal(raw: object) -> bytes:
    # Only the form is checked here; whether r and s are in range, and the seal verifies,
    # is the verifier's `seal` check, so that a bad seal is a verdict, not a parse error.
    text = _string(raw, "anchor.seal")
    if not _HEX_SEAL.fullmatch(text):
        raise DocumentError(
            "anchor.seal", f"must be 0x followed by {2 * SEAL_BYTES} lowercase hex digits"
        )
    return bytes.fromhex(text[2:])


@lru_cache(maxsize=256)
def _checksummed(address: str) -> str:
    """The EIP-55 form of a lower-case 0x address: a letter is capitalised where the
    Keccak-256 of the lower-case hex has a nibble of 8 or more."""
    # Cached: the Keccak hash costs, and nearly every document names the same registry.
    digits = address[2:]
    nibbles = keccak.new(data=digits.encode("ascii"), digest_bits=256).hexdigest()
    return "0x" + "".join(
        c.upper() if int(n, 16) >= 8 else c for c, n in zip(digits, nibbles, strict=False)
    )


def _object(raw: object, path: str) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise DocumentError(path, f"must be a JSON object, not {_json_type(raw)}")
    return raw


def _string(raw: object, path: str) -> str:
    if not isinstance(raw, str):
        raise DocumentError(path, f"must be a string, not {_json_type(raw)}")
    return raw


def _digest(raw: object, path: str) -> bytes:
    text = _string(raw, path)
    if not _HEX_DIGEST.fullmatch(text):
        raise DocumentError(path, f"must be 0x followed by {2 * DIGEST_BYTES} lowercase hex digits")
    return bytes.fromhex(text[2:])


def _only_members(
    obj: Mapping[str, object], path: str, *, required: set[str], optional: set[str]
) -> None:
    prefix = f"{path}." if path else ""
    for name in sorted(required - obj.keys()):
        raise DocumentError(prefix + name, "is missing")
    for name in sorted(obj.keys() - required - optional):
        raise DocumentError(prefix + name, "is not a member of an elicence/1 document")


def _json_type(value: object) -> str:
    match value:
        case None:
            return "null"
        case bool():
            return "a boolean"
        case int() | float():
            return "a number"
        case str():
            return "a string"
        case list():
            return "a list"
        case dict():
            return "an object"
    return type(value).__name__
