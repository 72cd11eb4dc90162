"""Errors raised by the licence package: a licence that does not follow the format.

LicenceFormatError
├── UnknownLicenceType  (also KeyError)    a licence type the catalogue does not have
├── DocumentError       (also ValueError)  a document that is not well-formed elicence/1
│   ├── UnsupportedHashSuite                a hash suite this installation cannot compute
│   └── UnknownTypeVersion                  a (type, version) this catalogue does not hold
├── PresentationError   (also ValueError)  a disclosure a licence or presentation cannot make
├── PayloadError        (also ValueError)  a QR payload or image that does not decode
└── CatalogueError      (also ValueError)  type definitions that break the catalogue's rules
    ├── DefinitionError                     a definition that is not valid (members named)
    └── SuccessorError                      a new version changing what it may not
"""

from __future__ import annotations

from collections.abc import Sequence


class LicenceFormatError(Exception):
    """Root of every error the licence package raises."""


class UnknownLicenceType(LicenceFormatError, KeyError):
    """The catalogue has no licence type of that id or code."""

    def __init__(self, licence_type: object, known: Sequence[str]) -> None:
        self.licence_type = licence_type
        self.known = tuple(known)
        super().__init__(f"unknown licence type {licence_type!r} (known: {', '.join(known)})")

    def __str__(self) -> str:  # KeyError would quote the whole message
        return str(self.args[0])


class DocumentError(LicenceFormatError, ValueError):
    """A document is not well-formed elicence/1; `path` names the offending member."""

    def __init__(self, path: str, reason: str) -> None:
        self.path = path
        self.reason = reason
        super().__init__(f"{path}: {reason}" if path else reason)


class UnsupportedHashSuite(DocumentError):
    """A document names a hash suite this installation cannot compute: nothing can be
    said of the licence (it may be genuine), so verifiers report this, never TAMPERED.
    A QR payload naming such a suite raises PayloadError with `code` as its reason."""

    code = "unsupported-hash-suite"

    def __init__(self, suite: str, supported: Sequence[str]) -> None:
        self.suite = suite
        self.supported = tuple(supported)
        super().__init__(
            "hashSuite", f"unsupported hash suite {suite!r} (supported: {', '.join(supported)})"
        )


class UnknownTypeVersion(DocumentError):
    """A document or payload names a licence type version the catalogue does not hold
    (yet): `type_ref` is the type's id (a document) or code (a payload), `version` its
    version. A verifier can load that version (checked against the registry's hash),
    add it to the catalogue and parse again; until then the licence may be genuine.
    `anchor_root` is the batch root a document names, when it names one that is well
    formed: its anchor says the type's code, which a registry cannot find from an id."""

    def __init__(
        self, type_id_or_code: str | int, version: int, anchor_root: bytes | None = None
    ) -> None:
        self.type_ref = type_id_or_code
        self.version = version
        self.anchor_root = anchor_root
        named = (
            f"code {type_id_or_code}" if isinstance(type_id_or_code, int) else repr(type_id_or_code)
        )
        super().__init__(
            "type", f"unknown licence type {named} version {version}: not in this catalogue"
        )


class PresentationError(LicenceFormatError, ValueError):
    """A presentation cannot disclose what was asked; `field` names the field at fault."""

    def __init__(self, field: str, reason: str) -> None:
        self.field = field
        self.reason = reason
        super().__init__(f"{field}: {reason}")


class PayloadError(LicenceFormatError, ValueError):
    """A QR payload (or image) does not decode; `reason` is a short code naming the step."""

    def __init__(self, reason: str, detail: str) -> None:
        self.reason = reason
        self.detail = detail
        super().__init__(f"{reason}: {detail}")


class CatalogueError(LicenceFormatError, ValueError):
    """Licence type definitions, or a catalogue of them, break the catalogue's rules."""


class DefinitionError(CatalogueError):
    """A licence type definition is not valid; `problems` holds (path, reason) for every
    member at fault, e.g. ("fields[3].pattern", "not a valid regular expression")."""

    def __init__(self, source: str, problems: Sequence[tuple[str, str]]) -> None:
        self.source = source
        self.problems = tuple(problems)
        listed = "; ".join(f"{path}: {reason}" if path else reason for path, reason in problems)
        super().__init__(f"{source}: {listed}" if source else listed)


class SuccessorError(CatalogueError):
    """A new version of a licence type changes what a new version may not; `problems`
    holds (rule, path, reason) for every rule broken (docs/format.md lists the rules)."""

    def __init__(self, problems: Sequence[tuple[str, str, str]]) -> None:
        self.problems = tuple(problems)
        super().__init__(
            "; ".join(f"{path}: {reason} (rule {rule})" for rule, path, reason in problems)
        )

    @property
    def rules(self) -> frozenset[str]:
        """The names of the rules broken."""
        return frozenset(rule for rule, _, _ in self.problems)
