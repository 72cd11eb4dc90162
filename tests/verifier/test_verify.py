"""verify() against a real (in-process) chain: every verdict a user can meet."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest

from licence.catalogue import catalogue
from licence.document import AnchorRef, parse_document
from licence.reasons import Reason
from tests.samples import business_licence
from verifier.checks import verify
from verifier.verdict import CheckName, Outcome, Status

BUSINESS = catalogue().get("business-licence")


def _reparsed(document, mutate):
    raw = document.to_json()
    mutate(raw)
    return parse_document(raw)


def test_issued_licence_is_valid_with_every_check_passed(world, issued):
    verdict = verify(issued.documents[0], world.source)
    assert verdict.status is Status.VALID
    assert [c.outcome for c in verdict.checks] == [Outcome.PASSED] * len(CheckName)
    assert [c.name for c in verdict.checks] == list(CheckName)
    assert verdict.issuer.name == "深圳市福田区市场监督管理局"
    assert verdict.issuer.signer == world.agency.address
    assert verdict.anchor.root == "0x" + issued.root.hex()
    assert verdict.block_height >= verdict.anchor.block_number
    assert verdict.fields["holderName"] == "深圳福田第0号科技有限公司"


@pytest.mark.slow
def test_a_thousand_licences_in_one_anchoring_transaction_all_verify_valid(world):
    start = world.chain.block_number()
    batch = world.issue([business_licence(i) for i in range(1000)])
    # eth-tester mines one block per transaction: one block means one transaction.
    assert world.chain.block_number() == start + 1
    block = world.chain.w3.eth.get_block(start + 1)
    assert len(block["transactions"]) == 1
    statuses = {verify(d, world.source).status for d in batch.documents}
    assert statuses == {Status.VALID}


@pytest.mark.parametrize("field", BUSINESS.field_names)
def test_one_character_changed_in_any_field_is_tampered(world, issued, field):
    def change(raw):
        value = raw["fields"][field]
        raw["fields"][field] = value[:-1] + ("1" if value[-1] != "1" else "2")

    verdict = verify(_reparsed(issued.documents[1], change), world.source)
    assert verdict.status is Status.TAMPERED
    assert verdict.checks[0].outcome is Outcome.FAILED
    assert all(c.outcome is Outcome.SKIPPED for c in verdict.checks[1:])


def test_changed_credit_code_is_tampered_and_names_the_broken_check_character(world, issued):
    def change(raw):
        raw["fields"]["unifiedSocialCreditCode"] = "91110108551385082A"

    verdict = verify(_reparsed(issued.documents[0], change), world.source)
    assert verdict.status is Status.TAMPERED
    assert "unifiedSocialCreditCode" in verdict.checks[0].reason
    assert "check character" in verdict.checks[0].reason


def test_changed_secret_is_tampered(world, issued):
    def change(raw):
        raw["secret"] = "0x" + "ab" * 16

    assert verify(_reparsed(issued.documents[0], change), world.source).status is Status.TAMPERED


def test_proof_of_another_licence_in_the_batch_is_tampered(world, issued):
    a, b = issued.documents[0], issued.documents[2]
    swapped = dataclasses.replace(a, anchor=dataclasses.replace(a.anchor, proof=b.anchor.proof))
    assert verify(swapped, world.source).status is Status.TAMPERED


def test_proof_and_root_of_another_batch_is_tampered(world, issued):
    other = world.issue([business_licence(10 + i) for i in range(4)])
    document = issued.documents[0]
    moved = dataclasses.replace(document, anchor=other.documents[0].anchor)
    assert verify(moved, world.source).status is Status.TAMPERED


def test_root_nobody_anchored_is_not_anchored(world):
    batch = world.wrap([business_licence(i) for i in range(3)])  # wrapped, never anchored
    verdict = verify(batch.documents[0], world.source)
    assert verdict.status is Status.NOT_ANCHORED
    assert "is not anchored" in verdict.checks[1].reason
    assert verdict.checks[2].outcome is Outcome.SKIPPED


def test_document_naming_another_registry_is_not_anchored_here(world, issued):
    document = issued.documents[0]
    elsewhere = AnchorRef(
        document.anchor.chain_id,
        "0x0000000000000000000000000000000000000001",
        document.anchor.root,
        document.anchor.proof,
    )
    verdict = verify(dataclasses.replace(document, anchor=elsewhere), world.source)
    assert verdict.status is Status.NOT_ANCHORED
    assert "trusts registry" in verdict.checks[1].reason


def test_revoked_leaf_is_revoked_with_the_reason_in_words(world, issued):
    document = issued.documents[1]
    world.registry.revoke(world.agency, issued.root, document.licence_id, Reason.FRAUD)
    verdict = verify(document, world.source)
    assert verdict.status is Status.REVOKED
    assert verdict.status_reason == "以欺骗、贿赂等不正当手段取得"
    assert "obtained by fraud" in verdict.checks[4].reason
    # The other licences of the batch are untouched.
    assert verify(issued.documents[0], world.source).status is Status.VALID


@pytest.mark.parametrize(
    ("today", "status"),
    [
        (dt.date(2040, 5, 18), Status.EXPIRED),  # the day after validUntil
        (dt.date(2040, 5, 17), Status.VALID),  # validUntil itself is inclusive
        (dt.date(2020, 5, 18), Status.VALID),  # validFrom itself is inclusive
        (dt.date(2020, 5, 17), Status.NOT_YET_VALID),
    ],
)
def test_validity_window_is_inclusive_and_judged_by_date(world, issued, today, status):
    assert verify(issued.documents[0], world.source, today=today).status is status


def test_past_valid_until_is_expired(world):
    batch = world.issue([business_licence(1, validFrom="2019-01-01", validUntil="2023-12-31")])
    verdict = verify(batch.documents[0], world.source)
    assert verdict.status is Status.EXPIRED
    assert "expired on 2023-12-31" in verdict.checks[5].reason


def test_future_valid_from_is_not_yet_valid(world):
    batch = world.issue([business_licence(1, validFrom="2099-01-01", validUntil="2109-01-01")])
    assert verify(batch.documents[0], world.source).status is Status.NOT_YET_VALID


def test_licence_without_end_date_is_valid_long_term(world):
    row = business_licence(1)
    del row["validUntil"]
    batch = world.issue([row])
    verdict = verify(batch.documents[0], world.source, today=dt.date(2099, 1, 1))
    assert verdict.status is Status.VALID
    assert "长期" in verdict.checks[5].reason


def test_licence_in_a_batch_anchored_for_another_type_is_issuer_not_authorised(world):
    # The agency is authorised for food licences and anchors business licences under
    # the food code: the registry accepts the anchor, the type check catches it.
    batch = world.wrap([business_licence(1)])
    world.registry.anchor(world.agency, batch.root, 2, 1)
    verdict = verify(batch.documents[0], world.source)
    assert verdict.status is Status.ISSUER_NOT_AUTHORISED
    assert "anchored for licence type code 2" in verdict.checks[2].reason


def test_licence_naming_another_authority_is_issuer_not_authorised(world):
    # Agency 2 may issue business licences, but this one names agency 1 as its issuer.
    batch = world.issue([business_licence(1)], by=world.other_agency)
    verdict = verify(batch.documents[0], world.source)
    assert verdict.status is Status.ISSUER_NOT_AUTHORISED
    assert "上海市浦东新区市场监督管理局" in verdict.checks[2].reason


def test_verdict_json_names_status_checks_issuer_and_anchor(world, issued):
    body = verify(issued.documents[0], world.source).to_json()
    assert body["status"] == "VALID"
    assert [c["name"] for c in body["checks"]] == [n.value for n in CheckName]
    assert body["issuer"]["code"] == "11440304007556212D"
    assert body["anchor"]["blockNumber"] >= 1
    assert body["licenceId"] == "0x" + issued.documents[0].licence_id.hex()
