"""What a new version of a licence type may change, and what it may not (each rule)."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from licence.catalogue_rules import Rule, check_successor, parse_definition
from licence.errors import SuccessorError
from tests.samples import REMARKS_FIELD

TYPES = Path(__file__).parents[2] / "licence" / "licence_types"
OLD = json.loads((TYPES / "food-business-licence.json").read_text("utf-8"))
NEW_FIELD = REMARKS_FIELD


def _next(change) -> dict:
    raw = copy.deepcopy(OLD)
    raw["version"] = 2
    change(raw)
    return raw


def _broken(change) -> SuccessorError:
    with pytest.raises(SuccessorError) as caught:
        check_successor(parse_definition(OLD), parse_definition(_next(change)))
    return caught.value


def _field(at, **changes):
    def change(raw):
        raw["fields"][at].update(changes)

    return change


def _swap(raw):
    raw["fields"][4], raw["fields"][5] = raw["fields"][5], raw["fields"][4]


def _insert(raw):
    raw["fields"].insert(8, NEW_FIELD)


def _remove(raw):
    del raw["fields"][8]
    raw["fields"].append(NEW_FIELD)


def _rename(raw):
    raw["fields"][8]["name"] = "supervisingAuthority"


def _code(raw):
    raw["code"] = 21


def _id(raw):
    raw["id"] = "food-licence"


def _same_version(raw):
    raw["version"] = 1


def _kind(raw):
    field = raw["fields"][6]
    del field["maxLength"], field["example"]
    field["kind"] = "date"


def _set_personal_false(raw):
    raw["fields"][3]["personal"] = False


ALLOWED = {
    "a field added at the end": lambda raw: raw["fields"].append(NEW_FIELD),
    "a required field added at the end": lambda raw: raw["fields"].append(
        {**NEW_FIELD, "required": True}
    ),
    "labels changed": _field(4, label={"zh": "住所（注册地址）", "en": "Domicile"}),
    "a pattern changed": _field(0, pattern="^JY[1-4][0-9]{13}$"),
    "a length limit changed": _field(1, maxLength=300),
    "owners changed": lambda raw: raw["owners"].append({"zh": "广东省市场监督管理局", "en": "GD"}),
    "required to optional": _field(6, required=False),
    "optional field made personal": _field(8, personal=True),
    "version skipped ahead": lambda raw: raw.update(version=5),
}

BROKEN = {
    "a field removed": (_remove, Rule.NO_REMOVED_FIELD, "fields[8]"),
    "two fields swapped": (_swap, Rule.NO_MOVED_FIELD, "fields[4]"),
    "a field inserted in the middle": (_insert, Rule.NO_MOVED_FIELD, "fields[8]"),
    "a field renamed": (_rename, Rule.NO_RENAMED_FIELD, "fields[8].name"),
    "a kind changed": (_kind, Rule.SAME_KIND, "fields[6].kind"),
    "optional to required": (_field(8, required=True), Rule.NOT_NEWLY_REQUIRED,
                             "fields[8].required"),
    "personal to not personal": (_set_personal_false, Rule.STAYS_PERSONAL, "fields[3].personal"),
    "the code changed": (_code, Rule.SAME_CODE, "code"),
    "the id changed": (_id, Rule.SAME_ID, "id"),
    "the same version number": (_same_version, Rule.NEWER_VERSION, "version"),
}  # fmt: skip


@pytest.mark.parametrize("change", list(ALLOWED.values()), ids=list(ALLOWED))
def test_a_new_version_may(change):
    check_successor(parse_definition(OLD), parse_definition(_next(change)))


@pytest.mark.parametrize(("change", "rule", "path"), list(BROKEN.values()), ids=list(BROKEN))
def test_a_new_version_may_not(change, rule, path):
    error = _broken(change)
    assert rule in error.rules
    assert path in {p for _, p, _ in error.problems}
    assert str(rule) in str(error)


def test_every_rule_broken_is_named():
    def many(raw):
        _code(raw)
        _kind(raw)
        _rename(raw)

    assert _broken(many).rules == {Rule.SAME_CODE, Rule.SAME_KIND, Rule.NO_RENAMED_FIELD}
