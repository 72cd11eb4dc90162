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
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from itertools import chain
from operator import itemgetter
from pathlib import Path
from typing import Any, cast

import orjson

from issuer.encoder import LicenceIds
from issuer.errors import IssuingError, LicenceValidationError
from issuer.records import BatchRecord, BatchState, Records
from issuer.spreadsheet import CsvChunks, Input, InputRow
from issuer.validation import RowsCheck
from ledger.errors import LedgerError
from ledger.registry import Registry
from licence.catalogue import LicenceType
from licence.digest import DEFAULT_SUITE
from licence.document import LicenceDocument, loads_document
from licence.errors import LicenceFormatError
from licence.fields import FieldProblem, field_problems


def input_digest(licence_type: LicenceType, chain_id: int, registry: str, rows: Any) -> bytes:
    """What identifies a batch across runs: type, chain, registry and its rows' fields.

    Fields are taken in catalogue order (absent ones as null), so the digest does not
    depend on column order; nothing is taken from the clock. This is the definition;
    `InputDigest` computes the same faster.
    """
    names = licence_type.field_names
    content = [
        *_digest_head(licence_type, chain_id, registry),
        [[row.get(n) for n in names] for row in rows],
    ]
    text = json.dumps(content, ensure_ascii=False, separators=(",", ":"), default=str)
    # surrogatepass: a JSON Lines input can hold a lone surrogate ("\ud800"), which the
    # check reports as a problem of its row; the digest of such rows must still exist.
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).digest()


def _digest_head(licence_type: LicenceType, chain_id: int, registry: str) -> list[object]:
    # A later version is named, so that a batch planned or anchored under one version
    # is never resumed under another (its documents would name a version its anchor
    # does not); version 1 keeps the digest it had before types had versions, so the
    # records of earlier runs still find their batches.
    if licence_type.version == 1:
        return [licence_type.id, chain_id, registry.lower()]
    return [licence_type.id, licence_type.version, chain_id, registry.lower()]


class InputDigest:
    """`input_digest` of many batches of one type, chain and registry, fast for text rows.

    Issuing takes the digest of every batch of its input; with json.dumps, encoding a
    hundred thousand rows costs 6 us a row. For rows of text alone, orjson writes the
    same bytes (tested on arbitrary text) in about 1.2 us (C did it in 0.7 us: less
    than the 2x that would keep it compiled); rows holding anything else (a JSON Lines
    number, a lone surrogate) are left to the definition.
    """

    def __init__(self, licence_type: LicenceType, chain_id: int, registry: str) -> None:
        self._type, self._chain_id, self._registry = licence_type, chain_id, registry
        self._names = licence_type.field_names
        head = json.dumps(
            _digest_head(licence_type, chain_id, registry),
            ensure_ascii=False,
            separators=(",", ":"),
        )
        # `[type,chain,"registry",[` (a later version named after the type) then the
        # rows, then `]]`
        self._head = head[:-1].encode("utf-8") + b",["
        self._every_field = itemgetter(*self._names)  # a tuple, written as a JSON list

    def of(self, rows: Sequence[Mapping[str, object]]) -> bytes:
        """The digest of a batch of `rows`."""
        digest = self._text_digest(rows)
        if digest is None:
            return input_digest(self._type, self._chain_id, self._registry, rows)
        return digest

    def _text_digest(self, rows: Sequence[Mapping[str, object]]) -> bytes | None:
        try:
            table: list[Any] = [self._every_field(row) for row in rows]  # the usual case
        except KeyError:
            table = [[row.get(name) for name in self._names] for row in rows]
        if not set(map(type, chain.from_iterable(table))) <= _TEXT_OR_NULL:
            return None
        try:
            text = orjson.dumps(table)
        except orjson.JSONEncodeError:  # a lone surrogate: the definition takes it
            return None
        return hashlib.sha256(self._head + text[1:] + b"]").digest()


_TEXT_OR_NULL = frozenset({str, type(None)})


@dataclass(frozen=True)
class Checked:
    """One slice of the input, checked: what a worker sends back."""

    problems: list[FieldProblem]
    digest: bytes
    numbers: list[tuple[int, str | None]]  # per row: (row number, licence number if text)


def check_slice(
    checked: list[InputRow] | None, kind: LicenceType, chain_id: int, registry: str
) -> Checked | None:
    """A slice's rows checked under `kind` (None for an irregular part of a split file).

    The type comes whole, not by id: a worker's catalogue may lack the version the run
    resolved (loaded from the registry), or call another version current."""
    if checked is None:
        return None
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
    fields: list[Mapping[str, object]], kind: LicenceType, chain_id: int, registry: str
) -> bytes:
    """The input digest of a batch of rows (their fields) of type `kind`."""
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


@dataclass(frozen=True)
class AlreadyIssued:
    """A row issued before, in another batch, with the very same fields: left out."""

    row: int
    number: str
    root: bytes  # the batch it was issued in


@dataclass(frozen=True)
class IssuedBefore:
    """The rows of an input whose licence numbers the records already hold."""

    same: list[tuple[int, AlreadyIssued]]  # (position in the input, the row): skipped
    problems: list[FieldProblem]  # rows whose fields differ from what was issued


FieldsOf = Callable[[list[int]], list[Mapping[str, object]]]


def input_problems(licence_type: LicenceType, source: Input) -> list[FieldProblem]:
    """Every problem issuing `source` would find before sending anything, found with no
    chain, key or records: each row's fields, and licence numbers used twice.

    What only the records can tell (a number issued before with other fields) is left
    to issuing itself.
    """
    if isinstance(source, CsvChunks):
        source = source.read_whole(licence_type)
    fields = [row.fields for row in source.rows]
    found = [
        problem
        for at in RowsCheck(licence_type).refused(fields)
        for problem in field_problems(licence_type, fields[at], row=source.rows[at].number)
    ]
    numbers = [
        (row.number, number if isinstance(number := row.fields.get("licenceNumber"), str) else None)
        for row in source.rows
    ]
    _, problems = checked_rows(source.problems, found, numbers, skip_invalid=True)
    if not source.rows and not problems:
        problems.append(FieldProblem("", "the input holds no licence"))
    return problems


def already_issued(
    registry: Registry,
    records: Records,
    licence_type: LicenceType,
    *,
    batches: list[list[int]],
    numbers: list[tuple[int, str | None]],
    existing: list[BatchRecord | None],
    fields_of: FieldsOf,
    suite: str = DEFAULT_SUITE,
) -> IssuedBefore:
    """Rows whose licence number another batch already holds (a sheet run again, changed).

    `batches` holds each batch's rows as positions in the input, `numbers` each row's
    (row number, licence number), `fields_of` gives the fields of rows by position. A
    row issued before with the same fields (its licence id, recomputed with the recorded
    secret in `suite`, is the recorded one, or, issued in another suite, its document
    holds the same fields) is left out as already issued; a row whose fields differ is a
    problem naming each changed field, read from the issued document.
    """
    same: list[tuple[int, AlreadyIssued]] = []
    problems: list[FieldProblem] = []
    for batch, record in zip(batches, existing, strict=True):
        if record is not None:
            continue  # the batch itself: a resumed run
        at = {str(numbers[position][1]): position for position in batch}
        taken = records.issued_numbers(licence_type.id, at)
        for batch_id in sorted(set(taken.values())):
            stale = records.batch(batch_id)
            if stale.state is BatchState.PLANNED and _not_anchored(registry, stale.root):
                # A plan from a run that stopped before anchoring, for input since
                # changed: nothing was issued, so the plan may go.
                records.forget_batch(batch_id)
                taken = {k: v for k, v in taken.items() if v != batch_id}
        for batch_id in sorted(set(taken.values())):
            earlier = records.batch(batch_id)
            mine = [number for number, owner in taken.items() if owner == batch_id]
            positions = [at[number] for number in mine]
            found = _compare(
                licence_type,
                records,
                earlier,
                mine,
                fields_of(positions),
                suite=suite,
                anchored_version=_anchored_version(registry, earlier),
            )
            for number, position, problem in zip(mine, positions, found, strict=True):
                row = numbers[position][0]
                if problem is None:
                    same.append((position, AlreadyIssued(row, number, earlier.root)))
                else:
                    problems.extend(replace(p, row=row) for p in problem)
    same.sort(key=lambda found: found[0])
    return IssuedBefore(same, sorted(problems, key=lambda p: p.row or 0))


def _compare(
    licence_type: LicenceType,
    records: Records,
    earlier: BatchRecord,
    numbers: list[str],
    fields: list[Mapping[str, object]],
    *,
    suite: str,
    anchored_version: int | None = None,
) -> list[list[FieldProblem] | None]:
    """Per licence number of batch `earlier`: None when `fields` are what was issued,
    else the problems to report (rows not yet set)."""
    issued = {r.number: r for r in records.licences(batch_id=earlier.id)}
    secrets = records.secrets_of(earlier.id)
    rows = cast(list[Mapping[str, str]], fields)  # checked: every value is text
    mine = [secrets[issued[number].position] for number in numbers]
    encoder = LicenceIds(licence_type.id, licence_type.field_names, suite)
    ids, _ = encoder.encode(rows, b"".join(mine))
    found: list[list[FieldProblem] | None] = []
    for number, row, licence_id in zip(numbers, rows, ids, strict=True):
        changed = None
        if licence_id != issued[number].licence_id:
            changed = _changed(licence_type, earlier, number, issued[number].licence_id, row)
        if changed:
            found.append(changed)
        elif earlier.state is BatchState.WRITTEN:
            found.append(None)
        else:
            reason = (
                f"was issued in batch 0x{earlier.root.hex()} by a run that stopped before "
                "writing its documents: run that input again to finish it"
            )
            if anchored_version not in (None, licence_type.version):
                reason += (
                    f" with --type-version {anchored_version}, the version it was anchored under"
                )
            found.append([FieldProblem("licenceNumber", reason, number)])
    return found


def _anchored_version(registry: Registry, earlier: BatchRecord) -> int | None:
    """The type version a batch not yet written was anchored under (None: not anchored
    yet, or written: its documents are out, and name it)."""
    if earlier.state is BatchState.WRITTEN:
        return None
    try:
        anchor = registry.anchor_of(earlier.root)
    except LedgerError as exc:
        raise IssuingError(f"cannot read the registry: {exc}") from exc
    return None if anchor is None else anchor.type_version


def _changed(
    licence_type: LicenceType,
    earlier: BatchRecord,
    number: str,
    licence_id: bytes,
    row: Mapping[str, str],
) -> list[FieldProblem]:
    """The fields of `row` that differ from licence `number` as issued, each a problem
    (none: the document issued has the same fields, hashed in another suite).

    The records keep no field values (nothing personal), so the values issued are read
    from the licence's document in the batch's output folder, if it is still there.
    """
    batch = f"batch 0x{earlier.root.hex()}"
    advice = "to change a licence, supersede it with a new number"
    issued = _issued_document(earlier, number, licence_id)
    if issued is None:
        folder = earlier.out_dir
        where = f" (its document is not in {folder} to name them)" if folder else ""
        reason = f"was already issued in {batch} with different fields{where}; {advice}"
        return [FieldProblem("licenceNumber", reason, number)]
    return [
        FieldProblem(
            name,
            f"differs from licence {number} already issued in {batch} "
            f"({_shown(issued.fields.get(name))}); {advice}",
            row.get(name),
        )
        for name in licence_type.field_names
        if issued.fields.get(name) != row.get(name)
    ]


def _shown(value: str | None) -> str:
    return "which has no value" if value is None else f"which has {value!r}"


def _issued_document(
    earlier: BatchRecord, number: str, licence_id: bytes
) -> LicenceDocument | None:
    if earlier.out_dir is None:
        return None
    # Staging names a document after its number, or its licence id when the number is
    # not a safe file name.
    for name in (f"{number}.json", f"0x{licence_id.hex()}.json"):
        try:
            document = loads_document((Path(earlier.out_dir) / name).read_bytes())
        except (OSError, LicenceFormatError):
            continue
        if document.licence_id == licence_id:
            return document
    return None


def _not_anchored(registry: Registry, root: bytes) -> bool:
    try:
        return registry.anchor_of(root) is None
    except LedgerError as exc:
        raise IssuingError(f"cannot read the registry: {exc}") from exc
