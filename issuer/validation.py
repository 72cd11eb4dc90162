"""Checking licence fields against the catalogue before anything is issued.

Every problem is collected, not just the first, so an agency can fix a whole row (or a
whole spreadsheet) in one pass. Values are strings: what is hashed is exactly the text
the holder sees, so there is no number or date formatting to disagree about.
"""

from __future__ import annotations

import datetime as dt
import re
import sys
import unicodedata
from collections.abc import Callable, Mapping

from issuer import credit_code
from issuer.catalogue import FieldKind, FieldSpec, LicenceType
from issuer.errors import FieldProblem, LicenceValidationError


def parse_date(text: str) -> dt.date:
    """A calendar date written YYYY-MM-DD (ValueError otherwise)."""
    if len(text) != 10 or text[4] != "-" or text[7] != "-":
        raise ValueError("not a date written YYYY-MM-DD")
    return dt.date.fromisoformat(text)


# Unicode's Cc (control) characters, and lone UTF-16 surrogates.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")
_SURROGATE = re.compile("[\ud800-\udfff]")
_CONTROL_OR_SURROGATE = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")


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
        try:
            parse_date(value)
        except ValueError:
            return "is not a date written YYYY-MM-DD"
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


RowCheck = Callable[[Mapping[str, object]], bool]


def row_check(licence_type: LicenceType) -> RowCheck:
    """A fast test that is True only when `field_problems` would find nothing in a row.

    Issuing checks every row of every batch, so a valid row (nearly all of them) takes
    one call per field here; a row it refuses goes through `field_problems`, which names
    each problem. Built once per batch.
    """
    known = frozenset(licence_type.field_names)
    required = frozenset(s.name for s in licence_type.fields if s.required)
    checks = {spec.name: _value_check(spec) for spec in licence_type.fields}

    def check(fields: Mapping[str, object]) -> bool:
        if not (known.issuperset(fields) and required.issubset(fields)):
            return False
        for name, value in fields.items():
            if type(value) is not str or not checks[name](value):
                return False
        valid_from, valid_until = fields.get("validFrom"), fields.get("validUntil")
        if valid_from is not None and valid_until is not None:
            try:
                return not parse_date(str(valid_until)) < parse_date(str(valid_from))
            except ValueError:
                return False
        return True

    return check


def _value_check(spec: FieldSpec) -> Callable[[str], bool]:
    # The same rules as _problem_with_value, as one expression per kind of field.
    longest = spec.max_length if spec.max_length is not None else sys.maxsize
    pattern = spec.pattern.fullmatch if spec.pattern is not None else None
    bad_character = _CONTROL_OR_SURROGATE.search

    def text(value: str) -> bool:
        return bool(
            value
            and len(value) <= longest
            and value.strip() == value
            and not bad_character(value)
            and (value.isascii() or unicodedata.is_normalized("NFC", value))
            and (pattern is None or pattern(value))
        )

    if spec.kind is FieldKind.DATE:

        def date(value: str) -> bool:
            if not text(value):
                return False
            try:
                parse_date(value)
            except ValueError:
                return False
            return True

        return date
    if spec.kind is FieldKind.CREDIT_CODE:
        return lambda value: text(value) and credit_code.is_valid(value)
    return text


def validate(licence_type: LicenceType, fields: Mapping[str, object]) -> dict[str, str]:
    """The fields, checked; LicenceValidationError listing every problem otherwise."""
    problems = field_problems(licence_type, fields)
    if problems:
        raise LicenceValidationError(problems)
    return {name: str(value) for name, value in fields.items()}
