"""The rules a licence's field values follow, as the catalogue defines them.

The same rules decide whether an agency may issue a row and whether a verifier accepts
a disclosed value. Every problem is collected, not just the first, so an agency can fix a
whole row (or a whole spreadsheet) in one pass. Values are strings: what is hashed is
exactly the text the holder sees, so there is no number or date formatting to disagree
about.
"""

from __future__ import annotations

import calendar
import datetime as dt
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass

from licence import credit_code
from licence.catalogue import FieldKind, FieldSpec, LicenceType


@dataclass(frozen=True)
class FieldProblem:
    """One reason one field (or row) is not acceptable."""

    path: str
    reason: str
    value: object = None
    row: int | None = None

    def __str__(self) -> str:
        where = f"row {self.row}: " if self.row is not None else ""
        shown = "" if self.value is None else f" (value {_clip(self.value)!r})"
        return f"{where}{self.path}: {self.reason}{shown}"


def _clip(value: object, limit: int = 40) -> object:
    if isinstance(value, str) and len(value) > limit:
        return value[: limit - 1] + "…"
    return value


def parse_date(text: str) -> dt.date:
    """A calendar date written YYYY-MM-DD (ValueError otherwise)."""
    if len(text) != 10 or text[4] != "-" or text[7] != "-":
        raise ValueError("not a date written YYYY-MM-DD")
    return dt.date.fromisoformat(text)


_DATE_SHAPE = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})")


def _date_problem(value: str) -> str | None:
    """Why `value` is not a date: its shape, or, shaped right, a day no calendar has."""
    shape = _DATE_SHAPE.fullmatch(value)
    if shape is None:
        return "is not a date written YYYY-MM-DD"
    year, month, day = (int(part) for part in shape.groups())
    if not 1 <= month <= 12:
        return f"is a date that does not exist: there is no month {month}"
    try:
        dt.date(year, month, day)
    except ValueError:
        # The shape is right, so only the day (or year 0) can be out of range: a clerk
        # who typed 2024-02-30 needs to hear that the date does not exist, not its format.
        if year == 0:
            return "is a date that does not exist: there is no year 0"
        days = calendar.monthrange(year, month)[1]
        return f"is a date that does not exist: {year:04d}-{month:02d} has {days} days"
    return None


# Unicode's Cc (control) characters, and lone UTF-16 surrogates.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")
_SURROGATE = re.compile("[\ud800-\udfff]")


def _problem_with_value(spec: FieldSpec, value: str) -> str | None:
    if value == "":
        return "is empty"
    if value != value.strip():
        return "has leading or trailing white space"
    if _CONTROL.search(value):
        return "contains control characters"
    if not value.isascii():
        if _SURROGATE.search(value):
            return "contains an unpaired surrogate (not Unicode text)"
        if not unicodedata.is_normalized("NFC", value):
            # Hashes compare code points: two spellings of one character would differ.
            return "is not in Unicode normal form NFC"
    if spec.max_length is not None and len(value) > spec.max_length:
        return f"is longer than {spec.max_length} characters ({len(value)})"
    if spec.pattern is not None and not spec.pattern.fullmatch(value):
        return f"does not match the pattern {spec.pattern.pattern}"
    if spec.kind is FieldKind.DATE:
        return _date_problem(value)
    if spec.kind is FieldKind.CREDIT_CODE:
        reason = credit_code.problem_with(value)
        if reason:
            return f"is not a valid unified social credit code: {reason}"
    return None


def field_problems(
    licence_type: LicenceType, fields: Mapping[str, object], *, row: int | None = None
) -> list[FieldProblem]:
    """Every reason `fields` is not an acceptable licence of `licence_type`."""
    problems: list[FieldProblem] = []
    for name, value in fields.items():
        spec = licence_type.field(name)
        if spec is None:
            problems.append(
                FieldProblem(name, f"is not a field of {licence_type.name.zh}", value, row)
            )
        elif not isinstance(value, str):
            problems.append(
                FieldProblem(name, f"must be text, not {type(value).__name__}", value, row)
            )
        elif (reason := _problem_with_value(spec, value)) is not None:
            problems.append(FieldProblem(name, reason, value, row))
    for spec in licence_type.fields:
        if spec.required and spec.name not in fields:
            problems.append(FieldProblem(spec.name, "is required but missing", None, row))
    if not problems:
        problems.extend(_date_order_problems(fields, row))
    return problems


def _date_order_problems(fields: Mapping[str, object], row: int | None) -> list[FieldProblem]:
    valid_from = fields.get("validFrom")
    valid_until = fields.get("validUntil")
    if (
        isinstance(valid_from, str)
        and isinstance(valid_until, str)
        and parse_date(valid_until) < parse_date(valid_from)
    ):
        reason = f"is before validFrom {valid_from}"
        return [FieldProblem("validUntil", reason, valid_until, row)]
    return []
