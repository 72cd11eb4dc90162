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

Issuing reads a large CSV file in parts (`read_for_issuing`, `CsvChunks`), one per batch,
in its worker processes; any part that does not read as plainly as expected sends it
back to `read_input`, which is the definition.
"""

from __future__ import annotations

import csv
import gc
import io
import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from issuer import compiled
from issuer.errors import IssuerError
from licence.catalogue import LicenceType
from licence.fields import FieldProblem

JSONL_SUFFIXES = frozenset({".jsonl", ".ndjson"})
# Below this many lines a CSV file is read at once: splitting pays only for many rows.
SPLIT_FROM = 4_000
_BOM = "\ufeff".encode()


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

    @property
    def count(self) -> int:
        """The rows read."""
        return len(self.rows)


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
        fields = _columns(header, licence_type)
        # Spreadsheet numbering: the header is row 1.
        rows, problems, _ = _csv_rows(reader, fields, 2)
    except csv.Error as exc:
        raise InputError(f"not a well-formed CSV file (row {reader.line_num}): {exc}") from None
    return ReadInput(rows, problems)


def _columns(header: list[str], licence_type: LicenceType) -> list[str]:
    known = column_names(licence_type)
    fields = [_field_of(h, licence_type, known) for h in header]
    repeated = sorted({f for f in fields if fields.count(f) > 1})
    if repeated:
        raise InputError(f"the columns name {', '.join(repeated)} more than once")
    return fields


def _csv_rows(
    records: Iterator[list[str]], fields: list[str], first_number: int
) -> tuple[list[InputRow], list[FieldProblem], int]:
    """The rows and row problems of CSV records numbered from `first_number`, and how many
    records there were (blank ones included)."""
    rows: list[InputRow] = []
    problems: list[FieldProblem] = []
    width = len(fields)
    number = first_number - 1
    for number, cells in enumerate(records, start=first_number):
        if len(cells) == width and "" not in cells:
            # The usual row, every cell filled: a hundred thousand of them are read
            # before anything else can start, so it skips the general case's filter.
            rows.append(InputRow(number, dict(zip(fields, cells, strict=True))))
            continue
        if not any(cells):
            continue  # a blank line (or a row of empty cells) is no licence
        if len(cells) > width:
            problems.append(
                FieldProblem(
                    "", f"has {len(cells)} cells but the header names {width} columns", None, number
                )
            )
            continue
        rows.append(
            InputRow(number, {f: c for f, c in zip(fields, cells, strict=False) if c != ""})
        )
    return rows, problems, number - first_number + 1


@dataclass(frozen=True)
class CsvChunks:
    """A large CSV file, split where its records end, for worker processes to read in parts.

    Reading a hundred thousand rows takes half a second on one core, while the others
    wait; split, each worker reads the parts it checks. Part k holds records
    [k * chunk_records, (k + 1) * chunk_records) after the header. A part that does not
    read as the split expected (a malformed row, bytes that are not UTF-8, a record count
    that differs), or blank lines anywhere but at the end of the file, make the whole
    file be read by `read_input`, the definition, which reports every problem as usual.
    """

    path: Path
    data: bytes
    fields: tuple[str, ...]
    ends: tuple[int, ...]  # ends[0]: the header's end; part k is data[ends[k]:ends[k + 1]]
    chunk_records: int
    records: int

    @property
    def count(self) -> int:
        """Records after the header (an upper bound on the licences: a few may be blank)."""
        return self.records

    def part(self, index: int) -> list[InputRow] | None:
        """The rows of part `index`, numbered as in the file; None when it is irregular."""
        start, end = self.ends[index], self.ends[index + 1]
        first = 2 + index * self.chunk_records
        expected = min(self.chunk_records, self.records - index * self.chunk_records)
        with _collector_paused():
            # Most parts are plain rows (no quotes, every cell filled), read by a plain
            # split; any other part is read by csv.reader, as the whole file would be.
            plain = plain_rows(self.data, start, end, self.fields)
            if plain is not None:
                if len(plain) != expected:
                    return None
                return [InputRow(number, row) for number, row in enumerate(plain, start=first)]
            try:
                text = self.data[start:end].decode("utf-8")
                reader = csv.reader(io.StringIO(text, newline=""), strict=True)
                rows, problems, count = _csv_rows(reader, list(self.fields), first)
            except (UnicodeDecodeError, csv.Error):
                return None
        return None if problems or count != expected else rows

    def read_whole(self, licence_type: LicenceType) -> ReadInput:
        """The file read at once, as `read_input` reads it."""
        return read_input(self.path, licence_type, self.data)


Input = ReadInput | CsvChunks


def read_for_issuing(path: Path, licence_type: LicenceType, chunk_records: int) -> Input:
    """The input to issue: a large CSV file split into parts, or else read whole."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror}") from None
    if path.suffix.lower() in JSONL_SUFFIXES or data.count(b"\n") < SPLIT_FROM:
        return read_input(path, licence_type, data)
    start = len(_BOM) if data.startswith(_BOM) else 0
    header_end = data.find(b"\n", start) + 1
    try:
        header = list(csv.reader(io.StringIO(data[start:header_end].decode("utf-8"), newline="")))
    except (UnicodeDecodeError, csv.Error):
        header = []
    scanned = record_bounds(data, header_end, chunk_records) if header_end else None
    if len(header) != 1 or scanned is None:
        return read_input(path, licence_type, data)  # which says what is wrong
    ends, records = scanned
    return CsvChunks(
        path,
        data,
        tuple(_columns(header[0], licence_type)),
        (header_end, *ends),
        chunk_records,
        records,
    )


def record_bounds(data: bytes, start: int, every: int) -> tuple[list[int], int] | None:
    """Where every `every`-th record of data[start:] ends (and the last), and how many there are.

    The records are those csv.reader(strict=True) reads from io.StringIO(text,
    newline=""), blank lines included: a line ends after \n, \r\n or a lone \r, and a
    quote opens a quoted field only as a field's first character ("" inside it is a
    quote). None where csv.reader would refuse the data (text after a closing quote, a
    quoted field still open at the end): the whole-file read then reports it. UTF-8 never
    uses these bytes inside a character, so bytes are scanned as they are.
    """
    if compiled.available():
        from issuer import _wrap

        return _wrap.record_bounds(data, start, every)
    ends: list[int] = []
    records, position, length = 0, start, len(data)
    while position < length:
        record = _RECORD.match(data, position)
        if record is None:
            return None
        position = record.end()
        records += 1
        if records % every == 0:
            ends.append(position)
    if not ends or ends[-1] < length:
        ends.append(length)
    return ends, records


def plain_rows(
    data: bytes, start: int, end: int, fields: tuple[str, ...]
) -> list[dict[str, object]] | None:
    """Each record of data[start:end] as {field: cell} when every record is plain, else None.

    Plain: no quote character, no lone \r, as many cells as `fields`, none of them empty,
    UTF-8 text. Anything else is for csv.reader (tests compare the two).
    """
    try:
        text = data[start:end].decode("utf-8")
    except UnicodeDecodeError:
        return None
    text = text.replace("\r\n", "\n")
    if '"' in text or "\r" in text or len(set(fields)) != len(fields):
        return None
    lines = text.split("\n")
    if lines[-1] == "":
        lines.pop()  # the line end of the last record
    width = len(fields)
    rows: list[dict[str, object]] = []
    for line in lines:
        cells = line.split(",")
        if len(cells) != width or "" in cells:
            return None
        rows.append(dict(zip(fields, cells, strict=True)))
    return rows


# A field of csv's default dialect: quoted (any bytes but a lone quote), plain (no comma
# or line end, and no quote first) or empty; a record is fields and its line end.
_FIELD = rb'(?:"(?:[^"]|"")*"|[^,\r\n"][^,\r\n]*|)'
_RECORD = re.compile(rb"%b(?:,%b)*(?:\r\n|\r|\n|\Z)" % (_FIELD, _FIELD))


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
