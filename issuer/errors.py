"""Errors raised by the issuer package.

IssuerError
├── UnknownLicenceType      (also KeyError)    a licence type the catalogue does not have
├── LicenceValidationError  (also ValueError)  licence fields that break the catalogue's rules
├── DocumentError           (also ValueError)  a document that is not well-formed elicence/1
├── PresentationError       (also ValueError)  a disclosure a licence or presentation cannot make
├── PayloadError            (also ValueError)  a QR payload or image that does not decode
└── IssuingError            (also RuntimeError) a batch that could not be issued
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


class IssuerError(Exception):
    """Root of every error the issuer package raises."""


class UnknownLicenceType(IssuerError, KeyError):
    """The catalogue has no licence type of that id or code."""

    def __init__(self, licence_type: object, known: Sequence[str]) -> None:
        self.licence_type = licence_type
        self.known = tuple(known)
        super().__init__(f"unknown licence type {licence_type!r} (known: {', '.join(known)})")

    def __str__(self) -> str:  # KeyError would quote the whole message
        return str(self.args[0])


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


class LicenceValidationError(IssuerError, ValueError):
    """Licence fields break the catalogue's rules; `problems` lists every one of them."""

    def __init__(self, problems: Sequence[FieldProblem]) -> None:
        self.problems = tuple(problems)
        lines = "; ".join(str(p) for p in self.problems)
        super().__init__(f"{len(self.problems)} invalid field(s): {lines}")


class DocumentError(IssuerError, ValueError):
    """A document is not well-formed elicence/1; `path` names the offending member."""

    def __init__(self, path: str, reason: str) -> None:
        self.path = path
        self.reason = reason
        super().__init__(f"{path}: {reason}" if path else reason)


class IssuingError(IssuerError, RuntimeError):
    """A batch could not be issued (the chain refused it, or its output could not be written)."""


class PresentationError(IssuerError, ValueError):
    """A presentation cannot disclose what was asked; `field` names the field at fault."""

    def __init__(self, field: str, reason: str) -> None:
        self.field = field
        self.reason = reason
        super().__init__(f"{field}: {reason}")


class PayloadError(IssuerError, ValueError):
    """A QR payload (or image) does not decode; `reason` is a short code naming the step."""

    def __init__(self, reason: str, detail: str) -> None:
        self.reason = reason
        self.detail = detail
        super().__init__(f"{reason}: {detail}")
