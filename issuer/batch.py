"""Wrapping a batch: the pure recipe from validated licences to anchored-ready documents.

wrap each licence (a fresh secret, a commitment per field, the leaf), build one tree over
the leaves, attach each proof and the root. Nothing here touches the chain or the disk.
"""

from __future__ import annotations

import secrets as random_source
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from issuer.catalogue import LicenceType
from issuer.digest import DEFAULT_SUITE, SECRET_BYTES, commitment, derive_salts, leaf_hash
from issuer.document import AnchorRef, LicenceDocument
from issuer.errors import FieldProblem, LicenceValidationError
from issuer.merkle import MerkleTree, build_tree
from issuer.validation import field_problems


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
    for row_number, row in enumerate(rows, start=1):
        problems.extend(field_problems(licence_type, row, row=row_number))
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
    return problems


def wrap_batch(
    licence_type: LicenceType,
    rows: Sequence[Mapping[str, str]],
    *,
    chain_id: int,
    registry: str,
    secrets: Sequence[bytes] | None = None,
    suite: str = DEFAULT_SUITE,
) -> WrappedBatch:
    """Validate every row, then wrap them into one batch.

    Raises LicenceValidationError listing every problem of every row.
    """
    if not rows:
        raise LicenceValidationError([FieldProblem("", "a batch needs at least one licence")])
    problems = batch_problems(licence_type, rows)
    if problems:
        raise LicenceValidationError(problems)
    if secrets is None:
        secrets = [random_source.token_bytes(SECRET_BYTES) for _ in rows]
    names = licence_type.field_names
    leaves = []
    for row, secret in zip(rows, secrets, strict=True):
        present = [n for n in names if n in row]
        salts = derive_salts(secret, present, suite)
        commitments = {
            n: commitment(n, row[n], field_salt, suite)
            for n, field_salt in zip(present, salts, strict=True)
        }
        leaves.append(leaf_hash(licence_type.id, commitments, suite))
    tree = build_tree(leaves, suite)
    documents = tuple(
        LicenceDocument(
            licence_type=licence_type,
            fields={n: row[n] for n in names if n in row},
            anchor=AnchorRef(chain_id, registry, tree.root, tuple(tree.proof(i))),
            suite=suite,
            secret=secret,
        )
        for i, (row, secret) in enumerate(zip(rows, secrets, strict=True))
    )
    return WrappedBatch(licence_type, tree, documents)
