"""Batch encoders: the licence ids and full documents of a whole batch.

The bytes are the format's (licence/digest.py, licence/document.py): these build the
same ones for a hundred thousand licences at a time, with every per-type piece made
once, in C (issuer/_wrap.c) when it is built and in Python otherwise
(issuer/compiled.py). Tests compare both with the format's definitions on arbitrary text.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence

from issuer import compiled
from licence.catalogue import LicenceType
from licence.digest import (
    DEFAULT_SUITE,
    DIGEST_BYTES,
    FORMAT,
    SECRET_BYTES,
    EncoderPlan,
    encoder_plan,
    hash_function,
    salt_function,
)
from licence.document import AnchorRef

COMPILED_SUITE = "sha256-128"  # the suite issuer/_wrap.c implements

Encode = Callable[
    [Sequence[Mapping[str, str]], bytes, EncoderPlan], tuple[list[bytes], list[bytes]]
]


class LicenceIds:
    """Licence ids of many licences of one type, with every per-type piece made once.

    `derive_salts`, `commitment` and `leaf_hash` of licence.digest in one pass per
    licence, with every per-name piece made once per type (`encoder_plan`): issuing
    hashes a hundred thousand licences. In C when it is built (the calls around each of a
    licence's 34 hashes cost Python about 1 us a field), else `encode_in_python`.
    """

    def __init__(self, licence_type: str, names: Sequence[str], suite: str = DEFAULT_SUITE) -> None:
        self._plan = encoder_plan(licence_type, names, suite)  # DocumentError: unknown suite
        self._encode: Encode
        if suite == COMPILED_SUITE and compiled.available():
            from issuer import _wrap

            self._encode = _wrap.encode
        else:
            self._encode = _python_encoder(suite)

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

        self._head = b'{"format":%b,"hashSuite":%b,"type":%b,"typeVersion":%b,"fields":{' % (
            dumps(FORMAT),
            dumps(suite),
            dumps(licence_type.id),
            dumps(licence_type.version),
        )
        # The seal is the same in every document of a batch, so it goes in this part
        # made once (to_json() writes it before the proof for that reason).
        seal = b',"seal":%b' % dumps(_hex(anchor.seal)) if anchor.seal is not None else b""
        self._anchor = b'","anchor":{"chainId":%b,"registry":%b,"root":%b%b,"proof":' % (
            dumps(anchor.chain_id),
            dumps(anchor.registry),
            dumps(_hex(anchor.root)),
            seal,
        )

    def write_batch(
        self, fields: list[bytes], secrets: Sequence[bytes], levels: Sequence[Sequence[bytes]]
    ) -> list[bytes]:
        """Every document of a batch: `write` with `proof_texts` for each licence.

        `levels` is the batch's tree (MerkleTree.levels). In C when it is built.
        """
        if compiled.available():
            from issuer import _wrap

            return _wrap.documents(self._head, fields, b"".join(secrets), self._anchor, levels)
        if not levels or len(levels[-1]) != 1:
            raise ValueError("a tree has at least its root's level")
        if any(len(node) != DIGEST_BYTES for level in levels for node in level):
            raise ValueError("tree nodes must be 16 bytes")
        if len(levels[0]) != len(fields):
            raise ValueError("the tree's leaves must be the licences")
        if len(secrets) != len(fields) or any(len(secret) != SECRET_BYTES for secret in secrets):
            raise ValueError("need 16 bytes of secret per licence")
        return [
            self.write(member_text, secret, proof)
            for member_text, secret, proof in zip(fields, secrets, proof_texts(levels), strict=True)
        ]

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


def _python_encoder(suite: str) -> Encode:
    """`LicenceIds.encode` in Python: the format's definitions with the type's pieces made once."""
    hasher = hash_function(suite)
    salts_of = salt_function(suite)

    def encode(
        rows: Sequence[Mapping[str, str]], secrets: bytes, plan: EncoderPlan
    ) -> tuple[list[bytes], list[bytes]]:
        fields, leaf_order, tail = plan
        if len(secrets) != SECRET_BYTES * len(rows):
            raise ValueError(
                f"{len(rows)} rows need {SECRET_BYTES * len(rows)} bytes of secrets, "
                f"not {len(secrets)}"
            )
        names = [field[0] for field in fields]
        ids: list[bytes] = []
        members: list[bytes] = []
        for index, row in enumerate(rows):
            present = [at for at, name in enumerate(names) if name in row]
            texts: dict[int, bytes] = {}
            for at in present:
                value = row[names[at]]
                if not isinstance(value, str):
                    raise TypeError(f"field {names[at]!r} is {type(value).__name__}, not str")
                texts[at] = _string_text(value).encode("utf-8")
            secret = secrets[index * SECRET_BYTES : (index + 1) * SECRET_BYTES]
            salts = salts_of(secret, [fields[at][1] for at in present])
            commitments = {
                at: hasher(b"\x02" + field_salt + fields[at][2] + texts[at] + b"]")
                for at, field_salt in zip(present, salts, strict=True)
            }
            leaf_members = b",".join(
                fields[at][3] + commitments[at].hex().encode() + b'"'
                for at in leaf_order
                if at in commitments
            )
            ids.append(hasher(b'\x00{"commitments":{' + leaf_members + tail))
            members.append(b",".join(fields[at][4] + texts[at] for at in present))
        return ids, members

    return encode


# What json.dumps(ensure_ascii=False) writes for a string: the form of the format's texts.
_string_text = json.encoder.encode_basestring


def _hex(value: bytes) -> str:
    return "0x" + value.hex()
