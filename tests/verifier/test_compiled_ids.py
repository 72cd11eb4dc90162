"""Verifying a full document with its licence id computed by the compiled encoder
(verifier/compiled_ids.py) judges exactly as the Python definition does: the same id on
any text, every forged field still TAMPERED, and the Python path wherever the encoder
does not apply."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given
from hypothesis import strategies as st

from issuer import compiled
from licence.catalogue import catalogue
from licence.digest import SM3_SUITE, SUITES
from licence.document import AnchorRef, LicenceDocument, parse_document
from licence.presentation import present
from verifier import compiled_ids
from verifier.checks import verify
from verifier.compiled_ids import seed_licence_id
from verifier.verdict import CheckName, Outcome, Status

BUSINESS = catalogue().get("business-licence")
ANCHOR = AnchorRef(1, "0x5FbDB2315678afecb367f032d93F642f64180aa3", b"\x01" * 16, ())

needs_compiled = pytest.mark.skipif(
    not compiled.available(), reason="the compiled part is not built or is turned off"
)


def _fresh(document: LicenceDocument) -> LicenceDocument:
    """The same document parsed again: nothing computed yet."""
    return parse_document(document.to_json())


def _python_id(document: LicenceDocument) -> bytes:
    return _fresh(document).licence_id  # computed by licence.digest


@needs_compiled
@given(
    st.binary(min_size=16, max_size=16),
    st.dictionaries(
        st.sampled_from(BUSINESS.field_names),
        st.text(st.characters(codec="utf-8"), max_size=40),
        min_size=1,
    ),
)
def test_the_compiled_id_of_any_full_document_is_the_python_definitions(secret, fields):
    # Quotes, backslashes, control characters, Chinese and astral characters, any subset
    # of the type's fields.
    document = LicenceDocument(BUSINESS, fields, ANCHOR, secret=secret)
    assert seed_licence_id(document)
    reference = LicenceDocument(BUSINESS, dict(fields), ANCHOR, secret=secret)
    assert "licence_id" not in reference.__dict__
    assert document.licence_id == reference.licence_id


@needs_compiled
def test_an_issued_full_licence_verifies_valid_with_the_compiled_id(world, issued):
    document = _fresh(issued.documents[0])
    assert seed_licence_id(document)
    verdict = verify(document, world.source)
    assert verdict.status is Status.VALID
    assert verdict.licence_id == "0x" + _python_id(document).hex()


@needs_compiled
@pytest.mark.parametrize("field", BUSINESS.field_names)
def test_one_character_changed_in_any_field_is_still_tampered(world, issued, field):
    raw = issued.documents[0].to_json()
    if field not in raw["fields"]:
        pytest.skip("the sample leaves this optional field out")
    value = raw["fields"][field]
    raw["fields"][field] = value[:-1] + ("X" if value[-1:] != "X" else "Y")
    forged = parse_document(raw)
    assert seed_licence_id(forged)
    verdict = verify(forged, world.source)
    assert verdict.status is Status.TAMPERED
    assert verdict.checks[0].name is CheckName.INTEGRITY
    assert verdict.checks[0].outcome is Outcome.FAILED


@needs_compiled
def test_an_optional_field_left_out_of_a_full_licence_is_still_tampered(world, issued):
    raw = issued.documents[0].to_json()
    optional = [f.name for f in BUSINESS.fields if not f.required and f.name in raw["fields"]]
    del raw["fields"][optional[0]]
    forged = parse_document(raw)
    assert seed_licence_id(forged)
    assert verify(forged, world.source).status is Status.TAMPERED


def test_a_presentation_is_hashed_by_the_python_definition(world, issued):
    presentation = present(_fresh(issued.documents[0]), ["holderName"])
    assert not seed_licence_id(presentation)
    assert verify(presentation, world.source).status is Status.VALID


@pytest.mark.skipif(SM3_SUITE not in SUITES, reason="this OpenSSL has no SM3")
def test_an_sm3_document_is_hashed_by_the_python_definition():
    document = LicenceDocument(
        BUSINESS, {"holderName": "某某"}, ANCHOR, suite=SM3_SUITE, secret=b"\x07" * 16
    )
    assert not seed_licence_id(document)
    assert "licence_id" not in document.__dict__


def test_text_the_encoder_refuses_is_left_to_the_python_definition(issued):
    # parse_document refuses such text first; the fallback keeps the encoder from ever
    # deciding what the Python definition would refuse.
    document = dataclasses.replace(
        _fresh(issued.documents[0]),
        fields={**issued.documents[0].fields, "holderName": "lone \ud800 surrogate"},
    )
    assert not seed_licence_id(document)
    assert "licence_id" not in document.__dict__


def test_without_the_compiled_part_full_licences_verify_by_python(world, issued, monkeypatch):
    monkeypatch.setattr(compiled_ids.compiled, "available", lambda: False)
    document = _fresh(issued.documents[0])
    assert not seed_licence_id(document)
    assert verify(document, world.source).status is Status.VALID
