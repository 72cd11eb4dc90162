from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from issuer.catalogue import catalogue
from issuer.errors import LicenceValidationError, UnknownLicenceType
from issuer.validation import field_problems, row_check, validate
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
        ({"validFrom": "2020-13-01"}, "validFrom", "YYYY-MM-DD"),
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


# ---- row_check: the fast test issuing runs on every row agrees with field_problems ----

_CHANGES = [
    {},
    {"unifiedSocialCreditCode": "91110108551385082A"},
    {"unifiedSocialCreditCode": "9111010855138508"},
    {"unifiedSocialCreditCode": "91110108551385082q"},
    {"validFrom": "2020-13-01"},
    {"validFrom": "2020/05/18"},
    {"validFrom": "２０２０-05-18"},
    {"validUntil": "2019-01-01"},
    {"holderName": ""},
    {"holderName": " 某公司"},
    {"holderName": "某公司\u3000"},
    {"holderName": "某\x07公司"},
    {"holderName": "某\x85公司"},
    {"holderName": "某\ud800公司"},
    {"holderName": "Cafe\u0301"},
    {"holderName": "名" * 200},
    {"holderName": "名" * 201},
    {"licenceNumber": "no spaces allowed"},
    {"favouriteColour": "red"},
    {"registeredCapital": 100},
]


@pytest.mark.parametrize("change", _CHANGES)
def test_row_check_accepts_exactly_the_rows_field_problems_accepts(change):
    fields = business_licence(1, **change)
    assert row_check(BUSINESS)(fields) == (field_problems(BUSINESS, fields) == [])


def test_row_check_refuses_missing_required_fields():
    fields = business_licence(1)
    del fields["holderName"]
    assert not row_check(BUSINESS)(fields)
    del fields["validUntil"]  # optional: absent is fine
    assert not row_check(BUSINESS)(fields)
    assert row_check(FOOD)(food_business_licence(2))


@given(
    st.sampled_from(BUSINESS.field_names),
    st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=30)
    | st.text(alphabet="0123456789-ABCDEFGHJKLMNPQRTUWXY ", max_size=20),
)
def test_row_check_agrees_with_field_problems_on_any_value(name, value):
    fields = business_licence(3, **{name: value})
    assert row_check(BUSINESS)(fields) == (field_problems(BUSINESS, fields) == [])
