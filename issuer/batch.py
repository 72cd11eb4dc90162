"""Wrapping a batch: the pure recipe from validated licences to anchored-ready documents.

wrap each licence (a fresh secret, a commitment per field, the leaf), build one tree over
the leaves, attach each proof and the root. Nothing here touches the chain or the disk.
`wrap_batch` gives LicenceDocument objects; `encode_batch`, issuing's path, gives the
same documents directly as the bytes written to their files.
"""

from __future__ import annotations

import secrets as random_source
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from issuer.encoder import FullDocumentWriter, LicenceIds
from issuer.errors import LicenceValidationError
from issuer.validation import RowsCheck
from licence.catalogue import LicenceType
from licence.digest import DEFAULT_SUITE, SECRET_BYTES
from licence.document import AnchorRef, LicenceDocument
from licence.fields import FieldProblem, field_problems
from licence.merkle import MerkleTree, build_tree

# What seals a batch: its root -> the agency's SM2 seal of it (licence.seal.seal_root with
# the agency's key, chain and registry bound in). Called once per batch.
Sealer = Callable[[bytes], bytes]


@dataclass(frozen=True)
class WrappedBatch:
    """A batch ready to anchor: its tree and one document per licence, in input order."""

    licence_type: LicenceType
    tree: MerkleTree
    documents: tuple[LicenceDocument, ...]

    @property
    def root(self) -> bytes:
        """The hash to anchor."""
        return self.tree.root


def batch_problems(
    licence_type: LicenceType, rows: Sequence[Mapping[str, object]]
) -> list[FieldProblem]:
    """Every problem of every row (rows numbered from 1), and licence numbers used twice."""
    problems: list[FieldProblem] = []
    first_row_of: dict[object, int] = {}
    for index in RowsCheck(licence_type).refused(rows):
        problems.extend(field_problems(licence_type, rows[index], row=index + 1))
    for row_number, row in enumerate(rows, start=1):
        number = row.get("licenceNumber")
        if number in first_row_of:
            problems.append(
                FieldProblem(
                    "licenceNumber",
                    f"repeats row {first_row_of[number]} of this batch",
                    number,
                    row_number,
                )
            )
        elif number is not None:
            first_row_of[number] = row_number
    return sorted(problems, key=lambda problem: problem.row or 0)  # each row's together


def wrap_batch(
    licence_type: LicenceType,
    rows: Sequence[Mapping[str, str]],
    *,
    chain_id: int,
    registry: str,
    secrets: Sequence[bytes] | None = None,
    suite: str = DEFAULT_SUITE,
    sealer: Sealer | None = None,
) -> WrappedBatch:
    """Validate every row, then wrap them into one batch (sealed by `sealer` if given).

    Raises LicenceValidationError listing every problem of every row.
    """
    if not rows:
        raise LicenceValidationError([FieldProblem("", "a batch needs at least one licence")])
    problems = batch_problems(licence_type, rows)
    if problems:
        raise LicenceValidationError(problems)
    secrets = _secrets(rows, secrets)
    _, leaves = _leaves(licence_type, rows, secrets, suite)
    tree = build_tree(leaves, suite)
    seal = sealer(tree.root) if sealer is not None else None
    names = licence_type.field_names
    documents = tuple(
        LicenceDocument(
            licence_type=licence_type,
            fields={n: row[n] for n in names if n in row},
            anchor=AnchorRef(chain_id, registry, tree.root, tuple(tree.proof(i)), seal),
            suite=suite,
            secret=secret,
        )
        for i, (row, secret) in enumerate(zip(rows, secrets, strict=True))
    )
    return WrappedBatch(licence_type, tree, documents)


@dataclass(frozen=True)
class EncodedBatch:
    """A batch ready to anchor, as the bytes of its documents: what issuing writes."""

    root: bytes
    licence_ids: list[bytes]
    secrets: list[bytes]
    documents: list[bytes]  # each what LicenceDocument.to_bytes() gives
    seal: bytes | None = None  # the agency's seal of the root, in every document


def encode_batch(
    licence_type: LicenceType,
    rows: Sequence[Mapping[str, str]],
    *,
    chain_id: int,
    registry: str,
    secrets: Sequence[bytes] | None = None,
    suite: str = DEFAULT_SUITE,
    sealer: Sealer | None = None,
) -> EncodedBatch:
    """The documents `wrap_batch` makes, as their `to_bytes()`, for rows already checked.

    The rows must have passed `batch_problems`: issue_file checks every row of its input
    before any batch is anchored, and does not pay for the check twice. Each value's JSON
    text is made once, for its commitment and for the document.
    """
    if not rows:
        raise LicenceValidationError([FieldProblem("", "a batch needs at least one licence")])
    secrets = _secrets(rows, secrets)
    texts, leaves = _leaves(licence_type, rows, secrets, suite)
    tree = build_tree(leaves, suite)
    seal = sealer(tree.root) if sealer is not None else None
    anchor = AnchorRef(chain_id, registry, tree.root, (), seal)
    writer = FullDocumentWriter(licence_type, anchor, suite)
    documents = writer.write_batch(texts, secrets, tree.levels)
    return EncodedBatch(tree.root, leaves, secrets, documents, seal)


def _secrets(rows: Sequence[object], given: Sequence[bytes] | None) -> list[bytes]:
    if given is not None:
        return list(given)
    # One draw from the OS's CSPRNG, cut into secrets: as unpredictable as one draw each.
    pool = random_source.token_bytes(SECRET_BYTES * len(rows))
    return [pool[i : i + SECRET_BYTES] for i in range(0, len(pool), SECRET_BYTES)]


def _leaves(
    licence_type: LicenceType,
    rows: Sequence[Mapping[str, str]],
    secrets: Sequence[bytes],
    suite: str,
) -> tuple[list[bytes], list[bytes]]:
    """Each licence's document field members (catalogue order) and its licence id."""
    ids, fields = LicenceIds(licence_type.id, licence_type.field_names, suite).encode(
        rows, b"".join(secrets)
    )
    return fields, ids
