"""Issuing, step 1: checking the input before anything is issued.

Each slice of the input (a batch's worth of rows) is checked where it is read, in a
worker process when the input is large (issuer.pool): its rows' field problems, their
licence numbers, and its input digest, which identifies the batch across runs. Then,
in the calling process, what spans slices: a licence number used twice in the input,
and numbers another batch of the records already holds.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from issuer.compiled import ensure_compiled
from issuer.errors import IssuingError, LicenceValidationError
from issuer.records import BatchRecord, BatchState, Records
from issuer.spreadsheet import InputRow
from issuer.validation import RowsCheck
from ledger.errors import LedgerError
from ledger.registry import Registry
from licence.catalogue import LicenceType, catalogue
from licence.fields import FieldProblem, field_problems


def input_digest(licence_type: LicenceType, chain_id: int, registry: str, rows: Any) -> bytes:
    """What identifies a batch across runs: type, chain, registry and its rows' fields.

    Fields are taken in catalogue order (absent ones as null), so the digest does not
    depend on column order; nothing is taken from the clock. This is the definition;
    `InputDigest` computes the same in C.
    """
    names = licence_type.field_names
    content = [
        licence_type.id,
        chain_id,
        registry.lower(),
        [[row.get(n) for n in names] for row in rows],
    ]
    text = json.dumps(content, ensure_ascii=False, separators=(",", ":"), default=str)
    # surrogatepass: a JSON Lines input can hold a lone surrogate ("\ud800"), which the
    # check reports as a problem of its row; the digest of such rows must still exist.
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).digest()


class InputDigest:
    """`input_digest` of many batches of one type, chain and registry: in C for text rows.

    Issuing takes the digest of every batch of its input; in Python, JSON-encoding a
    hundred thousand rows costs 6 us a row. Rows holding anything but text (a JSON
    Lines number, say) are left to the definition.
    """

    def __init__(self, licence_type: LicenceType, chain_id: int, registry: str) -> None:
        self._type, self._chain_id, self._registry = licence_type, chain_id, registry
        self._names = licence_type.field_names
        head = json.dumps(
            [licence_type.id, chain_id, registry.lower()], ensure_ascii=False, separators=(",", ":")
        )
        # `[type,chain,"registry",[` then the rows (in C), then `]]`
        self._head = head[:-1].encode("utf-8") + b",["
        ensure_compiled()
        from issuer import _wrap

        self._digest = _wrap.input_digest

    def of(self, rows: Sequence[Mapping[str, object]]) -> bytes:
        """The digest of a batch of `rows`."""
        digest = self._digest(rows, self._names, self._head)
        if digest is None:
            return input_digest(self._type, self._chain_id, self._registry, rows)
        return digest


@dataclass(frozen=True)
class Checked:
    """One slice of the input, checked: what a worker sends back."""

    problems: list[FieldProblem]
    digest: bytes
    numbers: list[tuple[int, str | None]]  # per row: (row number, licence number if text)


def check_slice(
    checked: list[InputRow] | None, licence_type: str, chain_id: int, registry: str
) -> Checked | None:
    """A slice's rows checked (None for an irregular part of a split file: None)."""
    if checked is None:
        return None
    kind = catalogue().get(licence_type)
    fields = [row.fields for row in checked]
    problems = [
        problem
        for at in RowsCheck(kind).refused(fields)
        for problem in field_problems(kind, fields[at], row=checked[at].number)
    ]
    numbers = [
        (row.number, number if isinstance(number := row.fields.get("licenceNumber"), str) else None)
        for row in checked
    ]
    return Checked(problems, InputDigest(kind, chain_id, registry).of(fields), numbers)


def batch_digest(
    fields: list[Mapping[str, object]], licence_type: str, chain_id: int, registry: str
) -> bytes:
    """The input digest of a batch of rows (their fields)."""
    kind = catalogue().get(licence_type)
    return InputDigest(kind, chain_id, registry).of(fields)


def checked_rows(
    read_problems: list[FieldProblem],
    found: list[FieldProblem],
    numbers: list[tuple[int, str | None]],
    skip_invalid: bool,
) -> tuple[list[int], list[FieldProblem]]:
    """The input's rows to issue (as indexes), and the problems to report first.

    `found` are the field problems of every row (the workers' check), `numbers` each
    row's (row number, licence number); here is added what spans rows, a licence number
    used twice in the input. Every problem of the input is known before any batch is
    anchored.
    """
    problems = [*read_problems, *found]
    licence_numbers = [number for _, number in numbers]
    if len(set(licence_numbers)) != len(licence_numbers):
        first_row: dict[object, int] = {}
        for row, number in numbers:
            if number is None:
                continue
            if number in first_row:
                problems.append(
                    FieldProblem("licenceNumber", f"repeats row {first_row[number]}", number, row)
                )
            else:
                first_row[number] = row
    if not problems:
        return list(range(len(numbers))), []
    problems.sort(key=lambda p: p.row or 0)
    if not skip_invalid:
        raise LicenceValidationError(problems)
    bad_rows = {p.row for p in problems}
    kept = [i for i, (row, _) in enumerate(numbers) if row not in bad_rows]
    return kept, problems


def already_issued(
    registry: Registry,
    records: Records,
    licence_type: LicenceType,
    groups: list[list[tuple[int, str | None]]],
    existing: list[BatchRecord | None],
) -> list[FieldProblem]:
    """Rows whose licence number another batch already holds (a changed input, re-run).

    `groups` holds each batch's rows as (row number, licence number).
    """
    problems: list[FieldProblem] = []
    for group, record in zip(groups, existing, strict=True):
        if record is not None:
            continue  # the batch itself: a resumed run
        by_number = {str(number): row for row, number in group}
        taken = records.issued_numbers(licence_type.id, by_number)
        for batch_id in sorted(set(taken.values())):
            stale = records.batch(batch_id)
            if stale.state is BatchState.PLANNED and _not_anchored(registry, stale.root):
                # A plan from a run that stopped before anchoring, for input since
                # changed: nothing was issued, so the plan may go.
                records.forget_batch(batch_id)
                taken = {k: v for k, v in taken.items() if v != batch_id}
        for number, batch_id in taken.items():
            root = records.batch(batch_id).root
            problems.append(
                FieldProblem(
                    "licenceNumber",
                    f"was already issued in batch 0x{root.hex()} with different fields; "
                    "to change a licence, supersede it with a new number",
                    number,
                    by_number[number],
                )
            )
    return sorted(problems, key=lambda p: p.row or 0)


def _not_anchored(registry: Registry, root: bytes) -> bool:
    try:
        return registry.anchor_of(root) is None
    except LedgerError as exc:
        raise IssuingError(f"cannot read the registry: {exc}") from exc
