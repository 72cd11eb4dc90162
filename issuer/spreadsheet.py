"""Reading an agency's input: CSV (UTF-8, with or without BOM) or JSON Lines.

Columns (CSV headers, JSONL keys) may be catalogue field names (`holderName`) or their
Chinese or English labels (`名称`, `Name`), so a spreadsheet exported from an office
system needs no renaming. Cells are kept as text exactly as written: validation, not
this reader, reports white space or other problems, because what is hashed is the text
the holder sees. An empty cell means the field is absent (e.g. no end date: 长期).

Rows are numbered as the agency sees them: in a CSV, the spreadsheet row (the header is
row 1, the first licence row 2); in JSON Lines, the line number.

Problems with the file as a whole (not UTF-8, an unknown or repeated column) raise
InputError; problems with one row (a wrong cell count, a line that is not a JSON object)
are returned with the rows, so that every bad row is reported at once.
"""

from __future__ import annotations

import csv
import gc
import io
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from issuer.catalogue import LicenceType
from issuer.errors import FieldProblem, IssuerError

JSONL_SUFFIXES = frozenset({".jsonl", ".ndjson"})


class InputError(IssuerError, ValueError):
    """The input file as a whole cannot be read as licences (unusable input)."""


@dataclass(frozen=True)
class InputRow:
    """One licence as read: its row number in the file and its fields (text, or raw JSON)."""

    number: int
    fields: dict[str, object]


@dataclass(frozen=True)
class ReadInput:
    """The rows of an input file and the problems that kept some rows from being read."""

    rows: list[InputRow]
    problems: list[FieldProblem]


def column_names(licence_type: LicenceType) -> dict[str, str]:
    """Every accepted column heading -> field name (names, Chinese and English labels)."""
    names: dict[str, str] = {}
    for spec in licence_type.fields:
        for heading in (spec.name, spec.label.zh, spec.label.en, spec.label.en.lower()):
            names.setdefault(heading, spec.name)
    return names


@contextmanager
def _collector_paused() -> Iterator[None]:
    """No cyclic garbage collection inside: for loops that make many objects and keep them.

    Such a loop makes no garbage, yet CPython's collector runs every 700 new containers
    and now and then walks every object made so far: about a fifth of the time of
    reading a hundred thousand rows.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def read_input(path: Path, licence_type: LicenceType, data: bytes | None = None) -> ReadInput:
    """The licences in `path` (CSV, or JSONL for .jsonl/.ndjson names)."""
    if data is None:
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise InputError(f"cannot read {path}: {exc.strerror}") from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputError(
            f"{path} is not UTF-8 text (byte {exc.start}): save it as CSV UTF-8"
        ) from None
    with _collector_paused():
        if path.suffix.lower() in JSONL_SUFFIXES:
            return _read_jsonl(text, licence_type)
        return _read_csv(text, licence_type)


def _field_of(heading: str, licence_type: LicenceType, known: dict[str, str]) -> str:
    name = known.get(heading.strip()) or known.get(heading.strip().lower())
    if name is None:
        accepted = ", ".join(f"{s.name} ({s.label.zh})" for s in licence_type.fields)
        raise InputError(
            f"column {heading!r} is not a field of {licence_type.name.zh}; "
            f"the columns are: {accepted}"
        )
    return name


def _read_csv(text: str, licence_type: LicenceType) -> ReadInput:
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        header = next(reader, None)
        if header is None:
            raise InputError("the file is empty: the first row must name the columns")
        known = column_names(licence_type)
        fields = [_field_of(h, licence_type, known) for h in header]
        repeated = sorted({f for f in fields if fields.count(f) > 1})
        if repeated:
            raise InputError(f"the columns name {', '.join(repeated)} more than once")
        rows: list[InputRow] = []
        problems: list[FieldProblem] = []
        # Spreadsheet numbering: the header is row 1.
        width = len(fields)
        for number, cells in enumerate(reader, start=2):
            if len(cells) == width and "" not in cells:
                # The usual row, every cell filled: a hundred thousand of them are read
                # before the workers can start, so it skips the general case's filter.
                rows.append(InputRow(number, dict(zip(fields, cells, strict=True))))
                continue
            if not any(cells):
                continue  # a blank line (or a row of empty cells) is no licence
            if len(cells) > width:
                problems.append(
                    FieldProblem(
                        "",
                        f"has {len(cells)} cells but the header names {width} columns",
                        None,
                        number,
                    )
                )
                continue
            rows.append(
                InputRow(number, {f: c for f, c in zip(fields, cells, strict=False) if c != ""})
            )
    except csv.Error as exc:
        raise InputError(f"not a well-formed CSV file (row {reader.line_num}): {exc}") from None
    return ReadInput(rows, problems)


def _read_jsonl(text: str, licence_type: LicenceType) -> ReadInput:
    known = column_names(licence_type)
    rows: list[InputRow] = []
    problems: list[FieldProblem] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            raw = json.loads(line)
        except json.JSONDecodeError as exc:
            problems.append(FieldProblem("", f"is not valid JSON ({exc.msg})", None, number))
            continue
        if not isinstance(raw, dict):
            problems.append(FieldProblem("", "is not a JSON object", None, number))
            continue
        fields: dict[str, object] = {}
        twice = []
        for key, value in raw.items():
            # An unknown key is left under its own name, so validation reports it per row.
            name = known.get(str(key)) or str(key)
            if name in fields:
                twice.append(FieldProblem(name, "is given twice", value, number))
            if value is not None and value != "":
                fields[name] = value
        problems.extend(twice)
        if not twice:
            rows.append(InputRow(number, fields))
    return ReadInput(rows, problems)
