"""Batch encoders: the licence ids and full documents of a whole batch, in C (issuer/_wrap.c).

The bytes are the format's (licence/digest.py, licence/document.py): these build the
same ones for a hundred thousand licences at a time, with every per-type piece made
once. Tests compare them with the Python definitions on arbitrary text.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence

from issuer.compiled import ensure_compiled
from licence.catalogue import LicenceType
from licence.digest import DEFAULT_SUITE, FORMAT, encoder_plan
from licence.document import AnchorRef
from licence.errors import DocumentError

_WRAP_SUITE = "sha256-128"  # the suite issuer/_wrap.c implements


class LicenceIds:
    """Licence ids of many licences of one type, hashed in C (issuer/_wrap.c).

    `derive_salts`, `commitment` and `leaf_hash` of licence.digest in one pass per
    licence, with every per-name piece made once per type (`encoder_plan`): issuing
    hashes a hundred thousand licences, and from Python the calls around each of a
    licence's 34 hashes cost 1.7 us a field. Same bytes as the Python definitions (a test
    compares them on arbitrary text).
    """

    def __init__(self, licence_type: str, names: Sequence[str], suite: str = DEFAULT_SUITE) -> None:
        plan = encoder_plan(licence_type, names, suite)  # DocumentError for an unknown suite
        if suite != _WRAP_SUITE:
            raise DocumentError("hashSuite", f"no batch encoder for hash suite {suite!r}")
        self._plan = plan
        ensure_compiled()
        from issuer import _wrap

        self._encode = _wrap.encode

    def encode(
        self, rows: Sequence[Mapping[str, str]], secrets: bytes
    ) -> tuple[list[bytes], list[bytes]]:
        """Each row's licence id, and its document's field members.

        `secrets` holds each row's secret, SECRET_BYTES apiece, in row order. The members
        are the fields present in a row, in the order of `names`, as the document's
        "fields" object writes them without its braces: `"name":"value",...`.
        """
        return self._encode(rows, secrets, self._plan)


class FullDocumentWriter:
    """`LicenceDocument.to_bytes()` of the full documents of one batch, from bytes made once.

    Issuing writes tens of thousands of documents that differ only in their fields,
    secret and proof; building each one's dict for json.dumps cost about as much as
    hashing the licence. The pieces below are to_json()'s members in its order, each written by
    json.dumps with to_bytes()'s settings, so the bytes are the same (a test compares
    them). The fields come as `LicenceIds.encode` writes them while hashing.
    """

    def __init__(self, licence_type: LicenceType, anchor: AnchorRef, suite: str) -> None:
        def dumps(value: object) -> bytes:
            return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8")

        self._head = b'{"format":%b,"hashSuite":%b,"type":%b,"fields":{' % (
            dumps(FORMAT),
            dumps(suite),
            dumps(licence_type.id),
        )
        self._anchor = b'","anchor":{"chainId":%b,"registry":%b,"root":%b,"proof":' % (
            dumps(anchor.chain_id),
            dumps(anchor.registry),
            dumps(_hex(anchor.root)),
        )

    def write_batch(
        self, fields: list[bytes], secrets: Sequence[bytes], levels: Sequence[Sequence[bytes]]
    ) -> list[bytes]:
        """Every document of a batch, in C: `write` with `proof_texts` for each licence.

        `levels` is the batch's tree (MerkleTree.levels); issuing writes a hundred
        thousand documents, and from Python their proofs and joins cost 5 us each.
        """
        from issuer import _wrap  # compiled: only issuing writes batches

        return _wrap.documents(self._head, fields, b"".join(secrets), self._anchor, levels)

    def write(self, fields: bytes, secret: bytes, proof_text: bytes) -> bytes:
        """The document of `fields` (its "fields" members: `"name":"value",...`)."""
        secret_text = secret.hex().encode()
        return b"".join(
            (self._head, fields, b'},"secret":"0x', secret_text, self._anchor, proof_text, b"}}\n")
        )


def proof_texts(levels: Sequence[Sequence[bytes]]) -> list[bytes]:
    """Each leaf's proof as its document writes it: a JSON list of 0x-hex strings.

    The proofs of neighbouring leaves share everything above their first sibling, so
    each level's texts are built from the level above instead of hex-encoding every
    sibling of every leaf (levels as `MerkleTree.levels`, leaves first).
    """
    above = [b""]  # the root's proof is empty
    for level in reversed(levels[:-1]):
        quoted = [b'"0x' + node.hex().encode() + b'"' for node in level]
        texts = []
        for index in range(len(level)):
            rest = above[index >> 1]
            sibling = index ^ 1
            if sibling >= len(level):
                texts.append(rest)
            elif rest:
                texts.append(quoted[sibling] + b"," + rest)
            else:
                texts.append(quoted[sibling])
        above = texts
    return [b"[" + text + b"]" for text in above]


def _hex(value: bytes) -> str:
    return "0x" + value.hex()
