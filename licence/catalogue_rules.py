"""The rules a licence type definition follows, and what a new version may change.

A definition is a JSON object (licence/licence_types/*.json; docs/format.md, "Licence
types (the catalogue)"). `parse_definition` checks it in two passes and names every
member at fault by its path (`fields[3].pattern: not a valid regular expression`):

1. its shape, by pydantic models that refuse unknown members, wrong JSON types and
   values out of range (ids, names, codes 1..65535, versions, patterns that compile);
2. what spans members: field names and labels unique within the type (a spreadsheet's
   headers may be either), mandatory disclosure naming existing fields that are not
   personal unless `mandatoryPersonal` says so, the fields issuing and verifying rely on
   (licenceNumber, validFrom, validUntil, issuingAuthority), and every example value
   following its own field's rules.

`check_successor(old, new)` enforces the rules for a new version of a type: fields are
only ever added at the end, and no field changes its name, position, kind, or becomes
required or non-personal, so that a field's meaning never changes under its name.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Mapping, Sequence
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic.alias_generators import to_camel
from pydantic_core import PydanticCustomError

from licence.canonical import canonical_json
from licence.catalogue import (
    MAX_TYPE_CODE,
    MAX_TYPE_VERSION,
    FieldKind,
    FieldSpec,
    Label,
    LicenceType,
)
from licence.errors import DefinitionError, SuccessorError

MAX_FIELDS = 32  # a QR payload carries at least 16 bytes a field; 32 is past any target
_TYPE_ID = re.compile(r"[a-z][a-z0-9]*(?:-[a-z0-9]+)*")
_FIELD_NAME = re.compile(r"[a-z][A-Za-z0-9]*")


class _Strict(BaseModel):
    # strict: JSON's types as written (no "1" for 1, no 1 for true); camelCase members.
    model_config = ConfigDict(
        extra="forbid",
        strict=True,
        frozen=True,
        alias_generator=to_camel,
        validate_by_alias=True,
        validate_by_name=False,
    )


Text = Annotated[str, Field(min_length=1, max_length=200)]


class LabelDefinition(_Strict):
    """A name in Chinese and English."""

    zh: Text
    en: Text

    def label(self) -> Label:
        """As the catalogue holds it."""
        return Label(self.zh, self.en)


class FieldDefinition(_Strict):
    """One field, as a definition writes it."""

    name: Annotated[str, Field(max_length=64)]
    label: LabelDefinition
    kind: Literal["text", "date", "credit_code"]
    required: bool
    personal: bool
    max_length: Annotated[int, Field(ge=1, le=10_000)] | None = None
    pattern: Annotated[str, Field(min_length=1, max_length=500)] | None = None
    absent_means: LabelDefinition | None = None
    example: Annotated[str, Field(min_length=1, max_length=10_000)] | None = None

    @field_validator("name")
    @classmethod
    def _field_name(cls, value: str) -> str:
        if not _FIELD_NAME.fullmatch(value):
            raise PydanticCustomError(
                "field_name", "a field name is lowerCamelCase ASCII letters and digits"
            )
        return value

    @field_validator("pattern")
    @classmethod
    def _compiles(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as exc:
                raise PydanticCustomError(
                    "pattern", "not a valid regular expression ({error})", {"error": str(exc)}
                ) from None
        return value


class TypeDefinition(_Strict):
    """A licence type definition (one version of one type)."""

    id: Annotated[str, Field(max_length=64)]
    code: Annotated[int, Field(ge=1, le=MAX_TYPE_CODE)]
    version: Annotated[int, Field(ge=1, le=MAX_TYPE_VERSION)]
    name: LabelDefinition
    owners: Annotated[list[LabelDefinition], Field(min_length=1)]
    mandatory_disclosure: list[str]
    mandatory_personal: list[str] = []
    fields: Annotated[list[FieldDefinition], Field(min_length=1, max_length=MAX_FIELDS)]

    @field_validator("id")
    @classmethod
    def _type_id(cls, value: str) -> str:
        if not _TYPE_ID.fullmatch(value):
            raise PydanticCustomError(
                "type_id", "a type id is lowercase ASCII words joined by hyphens"
            )
        return value


# The fields the rest of elicence relies on by name: issuing names files and finds
# repeats by licenceNumber, validity reads validFrom and validUntil, and the issuer
# check compares issuingAuthority with the anchoring agency's name.
_RELIED_ON: dict[str, tuple[str, bool, str]] = {
    "licenceNumber": ("text", True, "issuing names files and finds repeats by it"),
    "validFrom": ("date", True, "the validity check starts from it"),
    "issuingAuthority": ("text", True, "the issuer check compares it with the agency"),
}
_OPTIONAL_RELIED_ON: dict[str, str] = {"validUntil": "date"}


def _path(location: Sequence[int | str]) -> str:
    text = ""
    for part in location:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _reason(error: Mapping[str, Any]) -> str:
    kind = error["type"]
    if kind == "extra_forbidden":
        return "unknown member"
    if kind == "missing":
        return "missing (a required member)"
    if kind in ("string_type", "int_type", "bool_type", "list_type", "model_type"):
        expected = {
            "string": "text",
            "int": "an integer",
            "bool": "true or false",
            "list": "an array",
            "model": "an object",
        }[kind.removesuffix("_type")]
        return f"must be {expected}"
    message = str(error["msg"])
    return message[:1].lower() + message[1:]


def _shape(raw: object) -> tuple[TypeDefinition | None, list[tuple[str, str]]]:
    if not isinstance(raw, dict):
        return None, [("", "a definition is a JSON object")]
    try:
        return TypeDefinition.model_validate(raw), []
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            location = list(error["loc"])
            # pydantic names a union's branch (`int`, `str`...): the member is what counts.
            location = [p for p in location if not (isinstance(p, str) and p in _BRANCHES)]
            problems.append((_path(location), _reason(error)))
        return None, problems


_BRANCHES = frozenset({"int", "str", "bool", "none", "constrained-int", "constrained-str"})


def _licence_type(model: TypeDefinition) -> LicenceType:
    return LicenceType(
        id=model.id,
        code=model.code,
        name=model.name.label(),
        fields=tuple(
            FieldSpec(
                name=f.name,
                label=f.label.label(),
                kind=FieldKind(f.kind),
                required=f.required,
                personal=f.personal,
                max_length=f.max_length,
                pattern=re.compile(f.pattern) if f.pattern is not None else None,
                absent_means=f.absent_means.label() if f.absent_means else None,
                example=f.example,
            )
            for f in model.fields
        ),
        mandatory_disclosure=frozenset(model.mandatory_disclosure),
        version=model.version,
        owners=tuple(o.label() for o in model.owners),
        mandatory_personal=frozenset(model.mandatory_personal),
    )


def _repeats(values: Sequence[str], path: str) -> list[tuple[str, str]]:
    first: dict[str, int] = {}
    problems = []
    for at, value in enumerate(values):
        if value in first:
            problems.append((path.format(at), f"repeats {path.format(first[value])} ({value!r})"))
        else:
            first[value] = at
    return problems


def _members_problems(model: TypeDefinition) -> list[tuple[str, str]]:
    fields = model.fields
    position = {f.name: at for at, f in enumerate(fields)}
    problems = _repeats([f.name for f in fields], "fields[{}].name")
    # A spreadsheet's header may be a name or either label: each must find one field.
    problems += _repeats([f.label.zh for f in fields], "fields[{}].label.zh")
    problems += _repeats([f.label.en for f in fields], "fields[{}].label.en")
    for at, spec in enumerate(fields):
        if spec.absent_means is not None and spec.required:
            problems.append((f"fields[{at}].absentMeans", "a required field is never absent"))
        if spec.max_length is not None and spec.kind != "text":
            problems.append((f"fields[{at}].maxLength", f"a {spec.kind} field has a fixed form"))
    problems += _repeats(model.mandatory_disclosure, "mandatoryDisclosure[{}]")
    for at, name in enumerate(model.mandatory_disclosure):
        if name not in position:
            problems.append((f"mandatoryDisclosure[{at}]", f"names no field ({name!r})"))
        elif fields[position[name]].personal and name not in model.mandatory_personal:
            problems.append(
                (
                    f"mandatoryDisclosure[{at}]",
                    f"{name} is personal data: list it in mandatoryPersonal too if every "
                    "presentation must disclose it",
                )
            )
    for at, name in enumerate(model.mandatory_personal):
        where = f"mandatoryPersonal[{at}]"
        if name not in position:
            problems.append((where, f"names no field ({name!r})"))
        elif not fields[position[name]].personal:
            problems.append((where, f"{name} is not personal data"))
        elif name not in model.mandatory_disclosure:
            problems.append((where, f"{name} is not in mandatoryDisclosure"))
    for name, (kind, required, why) in _RELIED_ON.items():
        found = position.get(name)
        if found is None:
            problems.append(("fields", f"has no field {name} ({why})"))
        elif fields[found].kind != kind or fields[found].required is not required:
            problems.append((f"fields[{found}]", f"{name} must be a required {kind} field ({why})"))
    for name, kind in _OPTIONAL_RELIED_ON.items():
        found = position.get(name)
        if found is not None and fields[found].kind != kind:
            problems.append((f"fields[{found}].kind", f"{name} must be a {kind} field"))
    return problems


def _example_problems(licence_type: LicenceType) -> list[tuple[str, str]]:
    from licence.fields import field_problems

    position = {name: at for at, name in enumerate(licence_type.field_names)}
    examples = licence_type.example_fields()
    return [
        (f"fields[{position[p.path]}].example", f"{p.reason} ({p.value!r})")
        for p in field_problems(licence_type, examples)
        if p.path in examples
    ]


def parse_definition(raw: object, source: str = "") -> LicenceType:
    """The licence type `raw` (a definition's parsed JSON) defines; DefinitionError
    naming every member at fault otherwise."""
    model, problems = _shape(raw)
    if model is None:
        raise DefinitionError(source, problems)
    problems = _members_problems(model)
    if problems:
        raise DefinitionError(source, problems)
    licence_type = dataclasses.replace(_licence_type(model), definition=canonical_json(raw))
    problems = _example_problems(licence_type)
    if problems:
        raise DefinitionError(source, problems)
    return licence_type


def parse_definition_text(text: str, source: str = "") -> LicenceType:
    """The licence type a definition file's text defines (see parse_definition)."""
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        raise DefinitionError(source, [("", f"not JSON: {exc}")]) from None
    return parse_definition(raw, source)


def conflicts(licence_type: LicenceType, others: Sequence[LicenceType]) -> list[tuple[str, str]]:
    """Where a definition clashes with the types of a catalogue: a code another id has,
    an id that has another code, or an (id, version) that is defined otherwise (a
    published version never changes: a change is a new version)."""
    problems = []
    for other in others:
        if other.id != licence_type.id and other.code == licence_type.code:
            problems.append(("code", f"{other.code} is already the code of {other.id}"))
        if other.id == licence_type.id and other.code != licence_type.code:
            problems.append(("code", f"{other.id} has code {other.code}; a code never changes"))
        if other.key == licence_type.key and other != licence_type:
            problems.append(
                (
                    "version",
                    f"{other.id} version {other.version} is already defined otherwise; "
                    f"a change is a new version ({other.version + 1})",
                )
            )
    return problems


class Rule(StrEnum):
    """What a new version of a licence type may not change (docs/format.md)."""

    SAME_ID = "same-id"
    SAME_CODE = "same-code"
    NEWER_VERSION = "newer-version"
    NO_REMOVED_FIELD = "no-removed-field"
    NO_MOVED_FIELD = "no-moved-field"
    NO_RENAMED_FIELD = "no-renamed-field"
    SAME_KIND = "same-kind"
    NOT_NEWLY_REQUIRED = "not-newly-required"
    STAYS_PERSONAL = "stays-personal"


def successor_problems(old: LicenceType, new: LicenceType) -> list[tuple[Rule, str, str]]:
    """Every rule `new`, as the next version of `old`, breaks: (rule, path, reason)."""
    problems: list[tuple[Rule, str, str]] = []
    if new.id != old.id:
        problems.append((Rule.SAME_ID, "id", f"{new.id!r} is not {old.id!r}"))
    if new.code != old.code:
        problems.append((Rule.SAME_CODE, "code", f"{new.code} is not {old.code}"))
    if new.version <= old.version:
        problems.append(
            (Rule.NEWER_VERSION, "version", f"{new.version} is not after {old.version}")
        )
    new_names, old_names = new.field_names, old.field_names
    for at, before in enumerate(old.fields):
        where = f"fields[{at}]"
        after = new.fields[at] if at < len(new.fields) else None
        if after is None or after.name != before.name:
            if before.name in new_names:
                moved = new_names.index(before.name)
                problems.append(
                    (
                        Rule.NO_MOVED_FIELD,
                        where,
                        f"{before.name} moved to fields[{moved}]; new fields go at the end",
                    )
                )
            elif after is not None and after.name not in old_names:
                problems.append(
                    (
                        Rule.NO_RENAMED_FIELD,
                        f"{where}.name",
                        f"{before.name} renamed {after.name}; a field keeps its name",
                    )
                )
            else:
                problems.append(
                    (Rule.NO_REMOVED_FIELD, where, f"{before.name} is removed; fields stay")
                )
            continue
        if after.kind is not before.kind:
            problems.append(
                (
                    Rule.SAME_KIND,
                    f"{where}.kind",
                    f"{before.name} changes from {before.kind.value} to {after.kind.value}",
                )
            )
        if after.required and not before.required:
            problems.append(
                (
                    Rule.NOT_NEWLY_REQUIRED,
                    f"{where}.required",
                    f"{before.name} was optional; it may not become required",
                )
            )
        if before.personal and not after.personal:
            problems.append(
                (
                    Rule.STAYS_PERSONAL,
                    f"{where}.personal",
                    f"{before.name} is personal data; it stays personal",
                )
            )
    return problems


def check_successor(old: LicenceType, new: LicenceType) -> None:
    """Raise SuccessorError naming every rule `new` breaks as the next version of `old`:
    the same id and code, a later version, the old fields unchanged in name, order and
    kind, none newly required, none no longer personal (new fields only at the end).
    Labels, patterns, length limits, owners and mandatory disclosure may change."""
    problems = successor_problems(old, new)
    if problems:
        raise SuccessorError([(str(rule), path, reason) for rule, path, reason in problems])
