"""Presentations against the chain: VALID exactly when the full licence is."""

from __future__ import annotations

import dataclasses

import pytest

from licence.payload import decode_payload, encode_payload
from licence.presentation import present
from licence.reasons import Reason
from tests.samples import business_licence
from verifier.checks import verify
from verifier.verdict import Status


def test_presentation_of_a_valid_licence_is_valid_and_lists_what_it_shows(world, issued):
    shown = present(issued.documents[0], ["registeredAddress"])
    verdict = verify(shown, world.source)
    assert verdict.status is Status.VALID
    assert set(verdict.fields) == set(shown.fields)
    assert "registeredAddress" in verdict.fields
    assert set(verdict.hidden) == {
        "legalRepresentative",
        "businessScope",
        "registeredCapital",
        "dateOfEstablishment",
    }
    assert verdict.licence_id == "0x" + issued.documents[0].licence_id.hex()


def test_presentation_read_back_from_its_qr_payload_is_valid(world, issued):
    shown = present(issued.documents[1], [])
    # An EL2: payload is read with the verifier's own chain and registry.
    read = decode_payload(
        encode_payload(shown), chain_id=shown.anchor.chain_id, registry=shown.anchor.registry
    )
    assert verify(read, world.source).status is Status.VALID


def test_full_licence_read_back_from_its_qr_payload_is_valid(world, issued):
    issued_document = issued.documents[2]
    document = decode_payload(
        encode_payload(issued_document),
        chain_id=issued_document.anchor.chain_id,
        registry=issued_document.anchor.registry,
    )
    assert verify(document, world.source).status is Status.VALID


def test_presentation_of_a_revoked_licence_is_revoked(world, issued):
    document = issued.documents[1]
    world.registry.revoke(world.agency, issued.root, document.licence_id, Reason.FRAUD)
    assert verify(document, world.source).status is Status.REVOKED
    assert verify(present(document, []), world.source).status is Status.REVOKED


def test_presentation_of_an_expired_licence_is_expired(world):
    batch = world.issue([business_licence(5, validFrom="2010-01-01", validUntil="2015-12-31")])
    assert verify(present(batch.documents[0], []), world.source).status is Status.EXPIRED


@pytest.mark.parametrize("field", ["holderName", "validUntil"])
def test_changed_disclosed_field_of_a_presentation_is_tampered(world, issued, field):
    shown = present(issued.documents[0], [])
    forged = dataclasses.replace(shown, fields={**shown.fields, field: shown.fields[field] + "1"})
    assert verify(forged, world.source).status is Status.TAMPERED


def test_changed_hidden_commitment_is_tampered(world, issued):
    shown = present(issued.documents[0], [])
    hidden = dict(shown.hidden)
    hidden["businessScope"] = bytes(16)
    forged = dataclasses.replace(shown, hidden=hidden)
    assert verify(forged, world.source).status is Status.TAMPERED


def test_licence_tampered_before_presenting_stays_tampered_when_the_field_is_hidden(world, issued):
    document = issued.documents[0]
    forged = dataclasses.replace(
        document, fields={**document.fields, "registeredCapital": "9999万元人民币"}
    )
    assert verify(forged, world.source).status is Status.TAMPERED
    assert verify(present(forged, []), world.source).status is Status.TAMPERED


def test_presentation_of_a_presentation_is_valid(world, issued):
    first = present(issued.documents[2], ["businessScope", "registeredAddress"])
    second = present(first, ["registeredAddress"])
    verdict = verify(second, world.source)
    assert verdict.status is Status.VALID
    assert "businessScope" in verdict.hidden
