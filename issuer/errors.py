"""Errors raised by the issuer package (a licence that breaks the format itself raises
licence.errors.LicenceFormatError instead).

IssuerError
├── LicenceValidationError  (also ValueError)  licence fields that break the catalogue's rules
└── IssuingError            (also RuntimeError) a batch that could not be issued
"""

from __future__ import annotations

from collections.abc import Sequence

from licence.fields import FieldProblem


class IssuerError(Exception):
    """Root of every error the issuer package raises."""


class LicenceValidationError(IssuerError, ValueError):
    """Licence fields break the catalogue's rules; `problems` lists every one of them."""

    def __init__(self, problems: Sequence[FieldProblem]) -> None:
        self.problems = tuple(problems)
        lines = "; ".join(str(p) for p in self.problems)
        super().__init__(f"{len(self.problems)} invalid field(s): {lines}")


class IssuingError(IssuerError, RuntimeError):
    """A batch could not be issued (the chain refused it, or its output could not be written)."""
