"""The catalogue of licence types, read from the JSON files in licence/licence_types/.

Each type names its fields in a fixed order, with Chinese and English labels, a kind
(text, date, credit_code), whether the field is required, whether it is personal data
(never logged, withheld from callers not entitled to it), and the fields every
presentation must disclose. A new licence type is a new JSON file, not new code: every
file is checked (licence/catalogue_rules.py) before the catalogue holds it.

A type is known by its id and its version. Documents name the id and the version
(`typeVersion`, 1 when absent: documents issued before versions), QR payloads the code
and the version (EL2:; an EL1: payload is version 1); the catalogue keeps every version
it loads, keyed by (id, version).
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
import threading
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

    @cached_property
    def definition_hash(self) -> bytes:
        """SHA-256 of the canonical definition: what the registry records for this version
        (kept once computed: verifiers compare it with the registry's on every licence)."""
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
        self._current: dict[str, LicenceType] = {}
        self._by_code: dict[int, LicenceType] = {}
        # Only `add` takes it: readers look up dictionaries that are replaced whole,
        # never changed in place, so a lookup never meets one half-updated.
        self._adding = threading.Lock()
        self._install(self._checked({}, types))

    @staticmethod
    def _checked(
        known: dict[tuple[str, int], LicenceType], types: Iterable[LicenceType]
    ) -> dict[tuple[str, int], LicenceType]:
        """`known` and `types` as one mapping by key, or CatalogueError at the first clash."""
        by_key = dict(known)
        code_of = {t.id: t.code for t in by_key.values()}
        id_of = {t.code: t.id for t in by_key.values()}
        for licence_type in types:
            if licence_type.key in by_key:
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
            by_key[licence_type.key] = licence_type
        return by_key

    def _install(self, by_key: dict[tuple[str, int], LicenceType]) -> None:
        current: dict[str, LicenceType] = {}
        for licence_type in by_key.values():
            held = current.get(licence_type.id)
            if held is None or licence_type.version > held.version:
                current[licence_type.id] = licence_type
        # Each assignment is atomic; a reader between two of them sees a version as
        # known before it is current, which is true a moment later anyway.
        self._by_key = by_key
        self._current = current
        self._by_code = {t.code: t for t in current.values()}

    def add(self, licence_type: LicenceType) -> None:
        """Hold one more version of a type (one loaded and checked against the registry:
        verifier.type_loading); safe from several threads at once.

        Adding a version held already with the same definition does nothing. Raises
        CatalogueError when it breaks the catalogue's rules (as the constructor): another
        definition of the same id and version, a code another id has, or a code unlike
        the type's other versions.
        """
        with self._adding:
            held = self._by_key.get(licence_type.key)
            if held is not None and held.definition == licence_type.definition:
                return
            self._install(self._checked(self._by_key, [licence_type]))

    def has(self, type_id: str, version: int) -> bool:
        """Whether the catalogue holds this version of this type."""
        return (type_id, version) in self._by_key

    def every_version(self) -> tuple[LicenceType, ...]:
        """Every version of every type the catalogue holds, by code, then version."""
        return tuple(sorted(self._by_key.values(), key=lambda t: (t.code, t.version)))

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

    def by_code(self, code: int, version: int | None = None) -> LicenceType:
        """The type with this on-chain code (its current version unless `version` is
        given); UnknownLicenceType if there is none."""
        current = self._by_code.get(code)
        found = (
            current
            if version is None or current is None
            else self._by_key.get((current.id, version))
        )
        if found is None:
            shown: object = code if version is None else f"code {code} version {version}"
            raise UnknownLicenceType(shown, sorted(self._current))
        return found

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
