"""Checking licence rows before anything is issued: the field rules of
licence.fields, with the check of whole batches done in C (issuer/_wrap.c) when it is built."""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping, Sequence

from issuer import compiled
from issuer.errors import LicenceValidationError
from licence.catalogue import FieldKind, LicenceType
from licence.fields import field_problems

# The kinds as issuer/_wrap.c numbers them.
_KIND_CODES = {FieldKind.TEXT: 0, FieldKind.DATE: 1, FieldKind.CREDIT_CODE: 2}


class RowsCheck:
    """Which rows of a batch `field_problems` finds fault with, checked in C when built.

    Issuing checks every row of its input, and nearly every row is valid: the rows the
    compiled check passes are exactly those in which `field_problems` finds nothing
    (issuer/_wrap.c applies the same rules; tests compare the two on arbitrary text), so
    only the rows it refuses go through `field_problems`, which names each problem.
    Without the extension every row goes through `field_problems`. Built once per batch.
    """

    def __init__(self, licence_type: LicenceType) -> None:
        self._type = licence_type
        if not compiled.available():
            return
        rules = tuple(
            (
                spec.name,
                spec.required,
                -1 if spec.max_length is None else spec.max_length,
                _KIND_CODES[spec.kind],
                None if spec.pattern is None else spec.pattern.fullmatch,
            )
            for spec in licence_type.fields
        )
        names = licence_type.field_names
        # `_date_order_problems`: the two are compared only where a type has both.
        order = (
            (names.index("validFrom"), names.index("validUntil"))
            if {"validFrom", "validUntil"} <= set(names)
            else (-1, -1)
        )
        self._plan = (rules, order, unicodedata.is_normalized)

    def refused(self, rows: Sequence[Mapping[str, object]]) -> list[int]:
        """The indexes of the rows that are not plainly valid, in order."""
        if compiled.available():
            from issuer import _wrap

            return _wrap.check(rows, self._plan)
        return [at for at, row in enumerate(rows) if field_problems(self._type, row)]


def validate(licence_type: LicenceType, fields: Mapping[str, object]) -> dict[str, str]:
    """The fields, checked; LicenceValidationError listing every problem otherwise."""
    problems = field_problems(licence_type, fields)
    if problems:
        raise LicenceValidationError(problems)
    return {name: str(value) for name, value in fields.items()}
