"""The catalogue of licence types, read from the JSON files in licence/licence_types/.

Each type names its fields in a fixed order, with Chinese and English labels, a kind
(text, date, credit_code), whether the field is required, whether it is personal data
(never logged, withheld from callers not entitled to it), and the fields every
presentation must disclose. A new licence type is a new JSON file, not new code: every
file is checked (licence/catalogue_rules.py) before the catalogue holds it.

A type is known by its id and its version. Documents and QR payloads name the id (and
the code) only, and are read with the current (highest) version of their type; the
catalogue keeps every version it loads, keyed by (id, version), so that versions can be
told apart once documents name them.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from enum import StrEnum
from functools import cache, cached_property
from importlib import resources

from licence.errors import CatalogueError, UnknownLicenceType

# The registry keeps a type's code and version as uint16.
MAX_TYPE_CODE = 65535
MAX_TYPE_VERSION = 65535


class FieldKind(StrEnum):
    """How a field's text is checked."""

    TEXT = "text"
    DATE = "date"
    CREDIT_CODE = "credit_code"


@dataclass(frozen=True)
class Label:
    """A name in Chinese (the default) and English."""

    zh: str
    en: str


@dataclass(frozen=True)
class FieldSpec:
    """One field of a licence type."""

    name: str
    label: Label
    kind: FieldKind
    required: bool
    personal: bool
    max_length: int | None = None
    pattern: re.Pattern[str] | None = None
    absent_means: Label | None = None
    example: str | None = None


@dataclass(frozen=True)
class LicenceType:
    """A kind of licence an agency may be authorised to issue, in one version."""

    id: str
    code: int
    name: Label
    fields: tuple[FieldSpec, ...]
    mandatory_disclosure: frozenset[str]
    version: int = 1
    owners: tuple[Label, ...] = ()
    # Personal fields every presentation must nonetheless disclose, stated as such in
    # the definition (a certificate of a person says nothing without the name).
    mandatory_personal: frozenset[str] = dataclasses.field(default_factory=frozenset)
    # The definition as published: its RFC 8785 canonical JSON. The registry records
    # SHA-256 of these bytes, so any copy (folder, URL, chain event) can be checked.
    definition: bytes = b""

    @property
    def definition_hash(self) -> bytes:
        """SHA-256 of the canonical definition: what the registry records for this version."""
        return hashlib.sha256(self.definition).digest()

    def field(self, name: str) -> FieldSpec | None:
        """The field called `name`, or None."""
        return self._by_name.get(name)

    @property
    def field_names(self) -> tuple[str, ...]:
        """Field names in catalogue order."""
        return tuple(f.name for f in self.fields)

    @property
    def key(self) -> tuple[str, int]:
        """(id, version): what tells one version of a type from another."""
        return (self.id, self.version)

    def example_fields(self) -> dict[str, str]:
        """The definition's example value of every field that has one."""
        return {f.name: f.example for f in self.fields if f.example is not None}

    @cached_property
    def _by_name(self) -> dict[str, FieldSpec]:
        return {f.name: f for f in self.fields}


class Catalogue:
    """Licence types by (id, version); by id and by on-chain code, the current version.

    Raises CatalogueError when two types share an id and version, two ids share a code,
    or the versions of one id disagree on its code.
    """

    def __init__(self, types: Iterable[LicenceType]) -> None:
        self._by_key: dict[tuple[str, int], LicenceType] = {}
        code_of: dict[str, int] = {}
        id_of: dict[int, str] = {}
        for licence_type in types:
            if licence_type.key in self._by_key:
                raise CatalogueError(
                    f"{licence_type.id} version {licence_type.version} is defined twice"
                )
            if not 1 <= licence_type.code <= MAX_TYPE_CODE:
                raise CatalogueError(
                    f"{licence_type.id}: code {licence_type.code} is not in 1..{MAX_TYPE_CODE}"
                )
            known_code = code_of.setdefault(licence_type.id, licence_type.code)
            if known_code != licence_type.code:
                raise CatalogueError(
                    f"{licence_type.id}: version {licence_type.version} has code "
                    f"{licence_type.code}, another version {known_code}"
                )
            known_id = id_of.setdefault(licence_type.code, licence_type.id)
            if known_id != licence_type.id:
                raise CatalogueError(
                    f"code {licence_type.code} is both {known_id} and {licence_type.id}"
                )
            self._by_key[licence_type.key] = licence_type
        self._current: dict[str, LicenceType] = {}
        for licence_type in self._by_key.values():
            current = self._current.get(licence_type.id)
            if current is None or licence_type.version > current.version:
                self._current[licence_type.id] = licence_type
        self._by_code = {t.code: t for t in self._current.values()}

    def __iter__(self) -> Iterator[LicenceType]:
        """The current version of every type, by code."""
        return iter(sorted(self._current.values(), key=lambda t: t.code))

    def __len__(self) -> int:
        return len(self._current)

    def get(self, type_id: str, version: int | None = None) -> LicenceType:
        """The type with this id (its current version unless `version` is given);
        UnknownLicenceType if there is none."""
        found = (
            self._current.get(type_id) if version is None else self._by_key.get((type_id, version))
        )
        if found is None:
            shown: object = type_id if version is None else f"{type_id} version {version}"
            raise UnknownLicenceType(shown, sorted(self._current))
        return found

    def by_code(self, code: int) -> LicenceType:
        """The current version of the type with this on-chain code; UnknownLicenceType if
        there is none."""
        try:
            return self._by_code[code]
        except KeyError:
            raise UnknownLicenceType(code, sorted(self._current)) from None

    def versions(self, type_id: str) -> tuple[LicenceType, ...]:
        """Every version of a type the catalogue holds, oldest first."""
        found = sorted(
            (t for t in self._by_key.values() if t.id == type_id), key=lambda t: t.version
        )
        if not found:
            raise UnknownLicenceType(type_id, sorted(self._current))
        return tuple(found)


@cache
def catalogue() -> Catalogue:
    """The catalogue shipped with the package (read and checked once)."""
    from licence.catalogue_rules import parse_definition_text

    folder = resources.files("licence") / "licence_types"
    return Catalogue(
        parse_definition_text(entry.read_text(encoding="utf-8"), f"licence_types/{entry.name}")
        for entry in sorted(folder.iterdir(), key=lambda e: e.name)
        if entry.name.endswith(".json")
    )
