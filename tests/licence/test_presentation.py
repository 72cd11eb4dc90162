"""Presentations: what they disclose, what they hide, and that they lead to the same root."""

from __future__ import annotations

import pytest

from issuer.batch import wrap_batch
from licence.catalogue import catalogue
from licence.document import loads_document
from licence.errors import PresentationError
from licence.presentation import present
from tests.samples import business_licence

REGISTRY = "0x5FbDB2315678afecb367f032d93F642f64180aa3"
BUSINESS = catalogue().get("business-licence")
MANDATORY = BUSINESS.mandatory_disclosure


@pytest.fixture(scope="module")
def licence():
    rows = [business_licence(i) for i in range(3)]
    return wrap_batch(BUSINESS, rows, chain_id=1337, registry=REGISTRY).documents[1]


def test_presentation_keeps_licence_id_and_root(licence):
    shown = present(licence, ["registeredAddress"])
    assert shown.licence_id == licence.licence_id
    assert shown.anchor == licence.anchor
    assert shown.computed_root() == licence.anchor.root


def test_mandatory_fields_are_disclosed_without_being_named(licence):
    shown = present(licence, [])
    assert set(shown.fields) == MANDATORY
    assert set(shown.hidden) == set(BUSINESS.field_names) - MANDATORY
    assert shown.secret is None
    assert set(shown.salts) == MANDATORY


def test_named_fields_are_disclosed_and_the_rest_hidden(licence):
    shown = present(licence, ["businessScope", "registeredCapital"])
    assert set(shown.fields) == MANDATORY | {"businessScope", "registeredCapital"}
    assert shown.fields["businessScope"] == licence.fields["businessScope"]
    assert "legalRepresentative" in shown.hidden
    assert licence.fields["legalRepresentative"] not in shown.to_bytes().decode()


def test_hidden_value_does_not_appear_anywhere_in_the_presentation(licence):
    shown = present(licence, [])
    text = shown.to_bytes().decode()
    for name in shown.hidden:
        if licence.fields[name] not in shown.fields.values():
            assert licence.fields[name] not in text


def test_presentation_survives_its_json_form(licence):
    shown = present(licence, ["registeredAddress"])
    assert loads_document(shown.to_bytes()) == shown


def test_presentation_of_a_presentation_can_hide_more(licence):
    first = present(licence, ["registeredAddress", "businessScope"])
    second = present(first, ["registeredAddress"])
    assert "businessScope" in second.hidden
    assert second.hidden["businessScope"] == licence.commitments["businessScope"]
    assert second.licence_id == licence.licence_id


def test_presentation_of_a_presentation_cannot_reveal_a_hidden_field(licence):
    first = present(licence, [])
    with pytest.raises(PresentationError) as caught:
        present(first, ["legalRepresentative"])
    assert caught.value.field == "legalRepresentative"
    assert "can only hide more" in caught.value.reason


def test_unknown_field_name_is_an_error_naming_it(licence):
    with pytest.raises(PresentationError) as caught:
        present(licence, ["shareholderNames"])
    assert caught.value.field == "shareholderNames"
    assert "is not a field of 营业执照" in caught.value.reason


def test_field_the_licence_does_not_have_is_an_error(licence):
    fields = business_licence(7)
    del fields["validUntil"]  # 长期: no end date
    (long_term,) = wrap_batch(BUSINESS, [fields], chain_id=1337, registry=REGISTRY).documents
    with pytest.raises(PresentationError) as caught:
        present(long_term, ["validUntil"])
    assert caught.value.field == "validUntil"
    assert "does not have" in caught.value.reason


def test_absent_mandatory_field_stays_absent(licence):
    fields = business_licence(7)
    del fields["validUntil"]
    (long_term,) = wrap_batch(BUSINESS, [fields], chain_id=1337, registry=REGISTRY).documents
    shown = present(long_term, [])
    assert "validUntil" not in shown.fields and "validUntil" not in shown.hidden
    assert shown.computed_root() == long_term.anchor.root


def test_disclosing_everything_hides_nothing(licence):
    shown = present(licence, BUSINESS.field_names)
    assert shown.hidden == {}
    assert shown.fields == licence.fields
    assert shown.is_presentation
