"""The shipped catalogue, and definitions refused with the member at fault named."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path

import pytest

from licence.catalogue import Catalogue, catalogue
from licence.catalogue_rules import parse_definition, parse_definition_text
from licence.errors import CatalogueError, DefinitionError, UnknownLicenceType
from licence.fields import field_problems

TYPES = Path(__file__).parents[2] / "licence" / "licence_types"
# The list of types Guangdong's departments issue every day.
EXPECTED = {
    "营业执照", "食品经营许可证", "药品经营许可证", "医疗器械经营许可证", "建筑业企业资质证书",
    "建筑工程施工许可证", "道路运输经营许可证", "排污许可证", "公共场所卫生许可证",
    "危险化学品经营许可证", "特种设备使用登记证", "人力资源服务许可证", "出版物经营许可证",
    "烟草专卖零售许可证", "公众聚集场所投入使用、营业前消防安全检查合格证", "不动产权证书",
    "医师执业证书", "教师资格证书", "出生医学证明", "结婚证",
}  # fmt: skip


def _raw(type_id: str = "business-licence") -> dict:
    return json.loads((TYPES / f"{type_id}.json").read_text("utf-8"))


def _problems(raw: object) -> dict[str, str]:
    with pytest.raises(DefinitionError) as caught:
        parse_definition(raw, "test.json")
    return dict(caught.value.problems)


def test_the_catalogue_ships_at_least_twenty_guangdong_types():
    names = {t.name.zh for t in catalogue()}
    assert names >= EXPECTED and len(names) >= 20


def test_codes_fit_the_registrys_type_mask_and_every_type_is_version_1_with_owners():
    for licence_type in catalogue():
        assert 1 <= licence_type.code <= 63
        assert licence_type.version == 1
        assert licence_type.owners, licence_type.id


@pytest.mark.parametrize("licence_type", list(catalogue()), ids=lambda t: t.id)
def test_every_types_example_licence_is_valid(licence_type):
    examples = licence_type.example_fields()
    assert field_problems(licence_type, examples) == []
    missing = [f.name for f in licence_type.fields if f.required and f.name not in examples]
    assert missing == []


@pytest.mark.parametrize("licence_type", list(catalogue()), ids=lambda t: t.id)
def test_mandatory_disclosure_is_personal_only_where_stated(licence_type):
    for name in licence_type.mandatory_disclosure:
        spec = licence_type.field(name)
        assert spec is not None
        assert not spec.personal or name in licence_type.mandatory_personal


def test_personal_data_of_people_is_marked_personal():
    physician = catalogue().get("physician-certificate")
    for name in ("holderName", "sex", "dateOfBirth", "idNumber"):
        assert physician.field(name).personal, name
    marriage = catalogue().get("marriage-certificate")
    assert {f.name for f in marriage.fields if not f.personal} == {
        "licenceNumber", "validFrom", "issuingAuthority",
    }  # fmt: skip
    # A company's name is not personal data.
    assert not catalogue().get("drug-business-licence").field("holderName").personal


@pytest.mark.parametrize(
    ("type_id", "field", "value"),
    [
        ("physician-certificate", "idNumber", "44010619860412002"),  # 17 digits
        ("physician-certificate", "idNumber", "440106198613120021"),  # month 13
        ("drug-business-licence", "unifiedSocialCreditCode", "91440101MA5A1B2C30"),
        ("construction-qualification", "licenceNumber", "D24412345"),
        ("marriage-certificate", "licenceNumber", "J440106-24-004321"),
    ],
)
def test_numbers_of_a_known_form_are_checked(type_id, field, value):
    licence_type = catalogue().get(type_id)
    fields = {**licence_type.example_fields(), field: value}
    assert [p.path for p in field_problems(licence_type, fields)] == [field]


def test_the_two_original_types_keep_their_fields_and_codes():
    # Their field lists decide every hash and payload issued so far (tests/vectors).
    business, food = catalogue().get("business-licence"), catalogue().get("food-business-licence")
    assert (business.code, food.code) == (1, 2)
    assert business.field_names == (
        "licenceNumber", "holderName", "unifiedSocialCreditCode", "legalRepresentative",
        "registeredAddress", "businessScope", "registeredCapital", "dateOfEstablishment",
        "validFrom", "validUntil", "issuingAuthority",
    )  # fmt: skip
    assert food.field("licenceNumber").pattern.pattern == "^JY[1-3][0-9]{13}$"


# (what is spoiled, the path named, words of the reason)
def _set(path, value):
    def spoil(raw):
        target = raw
        for step in path[:-1]:
            target = target[step]
        target[path[-1]] = value
        return raw

    return spoil


def _drop(path):
    def spoil(raw):
        target = raw
        for step in path[:-1]:
            target = target[step]
        del target[path[-1]]
        return raw

    return spoil


BAD = [
    ("pattern that does not compile", _set(["fields", 3, "pattern"], "([a-z"),
     "fields[3].pattern", "not a valid regular expression"),
    ("unknown member", _set(["fields", 2, "hint"], "x"), "fields[2].hint", "unknown member"),
    ("unknown top member", _set(["colour"], "red"), "colour", "unknown member"),
    ("missing label", _drop(["fields", 1, "label"]), "fields[1].label", "missing"),
    ("required as text", _set(["fields", 4, "required"], "yes"), "fields[4].required",
     "true or false"),
    ("code as text", _set(["code"], "1"), "code", "integer"),
    ("code 0", _set(["code"], 0), "code", "greater than or equal to 1"),
    ("code 65536", _set(["code"], 65536), "code", "less than or equal to 65535"),
    ("version 65536", _set(["version"], 65536), "version", "less than or equal to 65535"),
    ("version 0", _set(["version"], 0), "version", "greater than or equal to 1"),
    ("missing version", _drop(["version"]), "version", "missing"),
    ("no owners", _set(["owners"], []), "owners", "at least 1"),
    ("unknown kind", _set(["fields", 2, "kind"], "number"), "fields[2].kind", "text"),
    ("bad type id", _set(["id"], "Business Licence"), "id", "lowercase"),
    ("bad field name", _set(["fields", 5, "name"], "business scope"), "fields[5].name",
     "lowerCamelCase"),
    ("repeated field name", _set(["fields", 5, "name"], "holderName"), "fields[5].name",
     "repeats fields[1].name"),
    ("repeated label", _set(["fields", 6, "label", "zh"], "住所"), "fields[6].label.zh",
     "repeats fields[4].label.zh"),
    ("mandatory names no field", _set(["mandatoryDisclosure", 2], "colour"),
     "mandatoryDisclosure[2]", "names no field"),
    ("mandatory personal field", _set(["mandatoryDisclosure", 2], "legalRepresentative"),
     "mandatoryDisclosure[2]", "personal data"),
    ("mandatoryPersonal not personal", _set(["mandatoryPersonal"], ["holderName"]),
     "mandatoryPersonal[0]", "not personal"),
    ("no licence number", _set(["fields", 0, "name"], "certificateNumber"), "fields",
     "has no field licenceNumber"),
    ("validFrom as text", _set(["fields", 8, "kind"], "text"), "fields[8]",
     "validFrom must be a required date field"),
    ("example off its pattern", _set(["fields", 0, "example"], "44-01"), "fields[0].example",
     "does not match the pattern"),
    ("example not a date", _set(["fields", 7, "example"], "2019-02-30"), "fields[7].example",
     "does not exist"),
    ("example too long", _set(["fields", 6, "example"], "1" * 101), "fields[6].example",
     "longer than 100"),
    ("absentMeans on a required field",
     _set(["fields", 4, "absentMeans"], {"zh": "无", "en": "none"}),
     "fields[4].absentMeans", "required field is never absent"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("spoil", "path", "words"),
    [pytest.param(spoil, path, words, id=name) for name, spoil, path, words in BAD],
)
def test_a_bad_definition_is_refused_naming_the_member(spoil, path, words):
    problems = _problems(spoil(copy.deepcopy(_raw())))
    assert path in problems, problems
    assert words in problems[path]


def test_every_problem_of_a_definition_is_named_at_once():
    raw = _raw()
    raw["fields"][3]["pattern"] = "(("
    raw["fields"][2]["hint"] = "x"
    raw["code"] = 70000
    assert {"fields[3].pattern", "fields[2].hint", "code"} <= set(_problems(raw))


def test_a_definition_that_is_not_json_or_not_an_object_is_refused():
    with pytest.raises(DefinitionError, match=r"broken\.json: not JSON"):
        parse_definition_text("{", "broken.json")
    with pytest.raises(DefinitionError, match="a definition is a JSON object"):
        parse_definition([1, 2], "list.json")


def test_the_error_message_names_the_file_and_each_member():
    raw = _raw()
    raw["fields"][3]["pattern"] = "(("
    with pytest.raises(DefinitionError) as caught:
        parse_definition(raw, "licence_types/business-licence.json")
    assert re.match(
        r"licence_types/business-licence\.json: fields\[3\]\.pattern: not a valid regular",
        str(caught.value),
    )


def test_every_shipped_definition_parses_to_the_catalogues_type():
    for path in sorted(TYPES.glob("*.json")):
        parsed = parse_definition_text(path.read_text("utf-8"), path.name)
        assert parsed == catalogue().get(parsed.id)


def test_two_ids_with_one_code_are_refused():
    business = catalogue().get("business-licence")
    clash = parse_definition({**_raw("food-business-licence"), "code": 1})
    with pytest.raises(CatalogueError, match="code 1 is both business-licence and food"):
        Catalogue([business, clash])


def test_one_id_and_version_defined_twice_is_refused():
    business = catalogue().get("business-licence")
    with pytest.raises(CatalogueError, match="defined twice"):
        Catalogue([business, parse_definition(_raw())])


def test_versions_of_a_type_sit_side_by_side_and_the_newest_is_current():
    v1 = catalogue().get("business-licence")
    raw = _raw()
    raw["version"] = 2
    raw["fields"].append(
        {"name": "industry", "label": {"zh": "行业", "en": "Industry"}, "kind": "text",
         "required": False, "personal": False, "maxLength": 100}
    )  # fmt: skip
    v2 = parse_definition(raw)
    both = Catalogue([v2, v1])
    assert both.get("business-licence") is v2
    assert both.get("business-licence", 1) is v1
    assert both.by_code(1) is v2
    assert both.versions("business-licence") == (v1, v2)
    assert len(both) == 1
    with pytest.raises(UnknownLicenceType, match="version 3"):
        both.get("business-licence", 3)
