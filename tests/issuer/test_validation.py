from __future__ import annotations

from types import MappingProxyType

import pytest
from hypothesis import given
from hypothesis import strategies as st

from issuer import compiled
from issuer.errors import LicenceValidationError
from issuer.validation import RowsCheck, validate
from licence.catalogue import catalogue
from licence.errors import UnknownLicenceType
from licence.fields import field_problems, parse_date
from tests.samples import business_licence, food_business_licence

BUSINESS = catalogue().get("business-licence")
FOOD = catalogue().get("food-business-licence")


def test_catalogue_has_business_and_food_licences_with_personal_fields_marked():
    assert BUSINESS.name.zh == "营业执照" and BUSINESS.code == 1
    assert FOOD.name.zh == "食品经营许可证" and FOOD.code == 2
    assert BUSINESS.field("legalRepresentative").personal
    assert not BUSINESS.field("holderName").personal
    assert "licenceNumber" in BUSINESS.mandatory_disclosure


def test_unknown_type_lists_the_known_ones():
    with pytest.raises(UnknownLicenceType, match="business-licence"):
        catalogue().get("driving-licence")


@pytest.mark.parametrize(
    ("licence_type", "sample"), [(BUSINESS, business_licence), (FOOD, food_business_licence)]
)
def test_sample_licences_are_valid(licence_type, sample):
    assert validate(licence_type, sample(7)) == sample(7)


@pytest.mark.parametrize(
    ("change", "field", "words"),
    [
        (
            {"unifiedSocialCreditCode": "91110108551385082A"},
            "unifiedSocialCreditCode",
            "check character",
        ),
        (
            {"unifiedSocialCreditCode": "9111010855138508"},
            "unifiedSocialCreditCode",
            "18 characters",
        ),
        ({"validFrom": "2020-13-01"}, "validFrom", "does not exist"),
        ({"validFrom": "2020/05/18"}, "validFrom", "YYYY-MM-DD"),
        ({"validUntil": "2019-01-01"}, "validUntil", "before validFrom"),
        ({"holderName": ""}, "holderName", "empty"),
        ({"holderName": " 某公司"}, "holderName", "white space"),
        ({"holderName": "某\x07公司"}, "holderName", "control characters"),
        ({"holderName": "Cafe\u0301"}, "holderName", "NFC"),
        ({"holderName": "名" * 201}, "holderName", "longer than 200"),
        ({"licenceNumber": "no spaces allowed"}, "licenceNumber", "pattern"),
        ({"favouriteColour": "red"}, "favouriteColour", "not a field of 营业执照"),
        ({"registeredCapital": 100}, "registeredCapital", "must be text"),
    ],
)
def test_invalid_field_is_named_with_its_reason(change, field, words):
    with pytest.raises(LicenceValidationError) as caught:
        validate(BUSINESS, business_licence(1, **change))
    assert [p.path for p in caught.value.problems] == [field]
    assert words in caught.value.problems[0].reason


def test_missing_required_fields_are_all_reported():
    fields = business_licence(1)
    del fields["holderName"], fields["validFrom"]
    with pytest.raises(LicenceValidationError) as caught:
        validate(BUSINESS, fields)
    assert {p.path for p in caught.value.problems} == {"holderName", "validFrom"}
    assert all("required" in p.reason for p in caught.value.problems)


def test_business_licence_without_end_date_is_valid_long_term():
    fields = business_licence(1)
    del fields["validUntil"]
    assert "validUntil" not in validate(BUSINESS, fields)
    assert BUSINESS.field("validUntil").absent_means.zh == "长期"


def test_food_licence_number_must_have_the_jy_form():
    with pytest.raises(LicenceValidationError) as caught:
        validate(FOOD, food_business_licence(1, licenceNumber="SP3301060000001"))
    assert caught.value.problems[0].path == "licenceNumber"


# ---- RowsCheck: the check issuing runs on every row (in C) agrees with field_problems ----

_CHANGES = [
    {},
    {"unifiedSocialCreditCode": "91110108551385082A"},
    {"unifiedSocialCreditCode": "9111010855138508"},
    {"unifiedSocialCreditCode": "91110108551385082q"},
    {"unifiedSocialCreditCode": "91110108551385082Q\x00"},
    {"validFrom": "2020-13-01"},
    {"validFrom": "2020/05/18"},
    {"validFrom": "２０２０-05-18"},
    {"validFrom": "0000-01-01"},
    {"validFrom": "2023-02-29"},
    {"validFrom": "2024-02-29"},
    {"validFrom": "1900-02-29"},
    {"validFrom": "2000-02-29"},
    {"validFrom": "2020-04-31"},
    {"validFrom": "2020-00-10"},
    {"validFrom": "2020-01-00"},
    {"validFrom": "2020-1-015"},
    {"validUntil": "2019-01-01"},
    {"validUntil": "2020-05-18"},
    {"holderName": ""},
    {"holderName": " 某公司"},
    {"holderName": "某公司\u3000"},
    {"holderName": "某公司\x1c"},
    {"holderName": "某\x07公司"},
    {"holderName": "某\x7f公司"},
    {"holderName": "abc\x7f"},
    {"holderName": "某\x85公司"},
    {"holderName": "某\ud800公司"},
    {"holderName": "Cafe\u0301"},
    {"holderName": "Caf\u00e9"},
    {"holderName": "\U0002a6a5"},
    {"holderName": "名" * 200},
    {"holderName": "名" * 201},
    {"licenceNumber": "no spaces allowed"},
    {"favouriteColour": "red"},
    {"registeredCapital": 100},
]


def _accepts(licence_type, fields) -> bool:
    return RowsCheck(licence_type).refused([fields]) == []


@pytest.mark.parametrize("change", _CHANGES)
def test_row_check_accepts_exactly_the_rows_field_problems_accepts(change):
    fields = business_licence(1, **change)
    assert _accepts(BUSINESS, fields) == (field_problems(BUSINESS, fields) == [])


def test_row_check_refuses_missing_required_fields():
    fields = business_licence(1)
    del fields["holderName"]
    assert not _accepts(BUSINESS, fields)
    del fields["validUntil"]  # optional: absent is fine
    assert not _accepts(BUSINESS, fields)
    assert _accepts(FOOD, food_business_licence(2))


def test_row_check_names_the_refused_rows_of_a_batch():
    rows = [business_licence(i) for i in range(5)]
    rows[1] = business_licence(1, holderName=" 某公司")
    rows[3] = business_licence(3, validUntil="2000-01-01")
    assert RowsCheck(BUSINESS).refused(rows) == [1, 3]
    assert RowsCheck(BUSINESS).refused([]) == []


def test_the_compiled_row_check_leaves_odd_rows_to_field_problems():
    if not compiled.available():
        pytest.skip("issuer/_wrap.c is not built or is turned off")
    # A mapping that is not a dict is not judged in C: field_problems decides.
    assert RowsCheck(BUSINESS).refused([MappingProxyType(business_licence(1))]) == [0]


@given(
    st.sampled_from(BUSINESS.field_names),
    st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=30)
    | st.text(alphabet="0123456789-ABCDEFGHJKLMNPQRTUWXY ", max_size=20)
    | st.text(st.characters(min_codepoint=0, max_codepoint=0x2FF), max_size=12),
)
def test_row_check_agrees_with_field_problems_on_any_value(name, value):
    fields = business_licence(3, **{name: value})
    assert _accepts(BUSINESS, fields) == (field_problems(BUSINESS, fields) == [])


@given(
    st.from_regex(r"\A[0-9]{4}-[0-9]{2}-[0-9]{2}\Z")
    | st.dates().map(str)
    | st.text(alphabet="0123456789-", min_size=8, max_size=12),
    st.sampled_from(["validFrom", "validUntil", "dateOfEstablishment"]),
)
def test_row_check_takes_the_dates_parse_date_takes(text, name):
    try:
        parse_date(text)
        a_date = True
    except ValueError:
        a_date = False
    fields = business_licence(4, **{name: text})
    # validUntil must also not precede validFrom (2020-05-18 in the samples).
    assert _accepts(BUSINESS, fields) == (field_problems(BUSINESS, fields) == [])
    if name == "dateOfEstablishment":
        assert _accepts(BUSINESS, fields) == a_date
