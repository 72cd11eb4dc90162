"""The catalogue of licence types, read from the JSON files in licence/licence_types/.

Each type names its fields in a fixed order, with Chinese and English labels, a kind
(text, date, credit_code), whether the field is required, whether it is personal data
(never logged, withheld from callers not entitled to it), and the fields every
presentation must disclose. A new licence type is a new JSON file, not new code.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from enum import StrEnum
from functools import cache, cached_property
from importlib import resources
from typing import Any

from licence.errors import UnknownLicenceType


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


@dataclass(frozen=True)
class LicenceType:
    """A kind of licence an agency may be authorised to issue."""

    id: str
    code: int
    name: Label
    fields: tuple[FieldSpec, ...]
    mandatory_disclosure: frozenset[str]

    def field(self, name: str) -> FieldSpec | None:
        """The field called `name`, or None."""
        return self._by_name.get(name)

    @property
    def field_names(self) -> tuple[str, ...]:
        """Field names in catalogue order."""
        return tuple(f.name for f in self.fields)

    @cached_property
    def _by_name(self) -> dict[str, FieldSpec]:
        return {f.name: f for f in self.fields}


def _label(raw: dict[str, str]) -> Label:
    return Label(zh=raw["zh"], en=raw["en"])


def _parse_type(raw: dict[str, Any]) -> LicenceType:
    fields = []
    for f in raw["fields"]:
        pattern = f.get("pattern")
        fields.append(
            FieldSpec(
                name=f["name"],
                label=_label(f["label"]),
                kind=FieldKind(f["kind"]),
                required=bool(f["required"]),
                personal=bool(f["personal"]),
                max_length=f.get("maxLength"),
                pattern=re.compile(pattern) if pattern else None,
                absent_means=_label(f["absentMeans"]) if "absentMeans" in f else None,
            )
        )
    licence_type = LicenceType(
        id=str(raw["id"]),
        code=int(raw["code"]),
        name=_label(raw["name"]),
        fields=tuple(fields),
        mandatory_disclosure=frozenset(raw["mandatoryDisclosure"]),
    )
    unknown = licence_type.mandatory_disclosure - set(licence_type.field_names)
    if unknown:
        raise ValueError(f"{licence_type.id}: mandatory disclosure names no field {unknown}")
    return licence_type


class Catalogue:
    """All licence types, by id and by on-chain code."""

    def __init__(self, types: list[LicenceType]) -> None:
        self._by_id = {t.id: t for t in types}
        self._by_code = {t.code: t for t in types}
        if len(self._by_id) != len(types) or len(self._by_code) != len(types):
            raise ValueError("licence type ids and codes must be unique")
        if any(not 1 <= t.code <= 63 for t in types):
            raise ValueError("licence type codes must lie in 1..63 (the registry's bitmask)")

    def __iter__(self) -> Iterator[LicenceType]:
        return iter(sorted(self._by_id.values(), key=lambda t: t.code))

    def get(self, type_id: str) -> LicenceType:
        """The type with this id; UnknownLicenceType if there is none."""
        try:
            return self._by_id[type_id]
        except KeyError:
            raise UnknownLicenceType(type_id, sorted(self._by_id)) from None

    def by_code(self, code: int) -> LicenceType:
        """The type with this on-chain code; UnknownLicenceType if there is none."""
        try:
            return self._by_code[code]
        except KeyError:
            raise UnknownLicenceType(code, sorted(self._by_id)) from None


@cache
def catalogue() -> Catalogue:
    """The catalogue shipped with the package (read once)."""
    folder = resources.files("licence") / "licence_types"
    types = [
        _parse_type(json.loads(entry.read_text(encoding="utf-8")))
        for entry in sorted(folder.iterdir(), key=lambda e: e.name)
        if entry.name.endswith(".json")
    ]
    return Catalogue(types)
