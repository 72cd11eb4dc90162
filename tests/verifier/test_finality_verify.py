"""verify() when a revoked licence is anchored again, when a whole batch is revoked, and
when the key that anchored a batch is reported compromised (issue 15.4).

A licence re-anchored alone makes a one-leaf batch, whose root is the licence id itself
and whose proof is empty: the cheapest way to bring a revoked licence back, had the
registry kept statuses per root.
"""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from licence.catalogue import catalogue
from licence.document import AnchorRef, LicenceDocument, parse_document
from licence.errors import DocumentError
from licence.presentation import present
from licence.reasons import Reason
from licence.statuses import LeafStatus
from tests.conftest import AGENCY_ID, key_for
from tests.samples import business_licence
from verifier.checks import verify
from verifier.verdict import CheckName, Outcome, Status

ANCHOR = list(CheckName).index(CheckName.ANCHOR)
STATUS = list(CheckName).index(CheckName.STATUS)


def re_anchored(world, document: LicenceDocument, by) -> LicenceDocument:
    """The same licence, anchored again alone by `by` in a new one-leaf batch."""
    leaf = document.licence_id
    world.registry.anchor(by, leaf, document.licence_type.code, 1)
    ref = document.anchor
    return replace(document, anchor=AnchorRef(ref.chain_id, ref.registry, leaf, ()))


@pytest.mark.parametrize(
    ("change", "status"),
    [
        ("revoke", Status.REVOKED),
        ("cancel", Status.CANCELLED),
        ("suspend", Status.SUSPENDED),
    ],
)
def test_status_follows_the_licence_into_a_new_batch_of_its_agency(world, issued, change, status):
    document = issued.documents[0]
    getattr(world.registry, change)(world.agency, issued.root, document.licence_id, Reason.FRAUD)
    again = re_anchored(world, document, world.agency)
    verdict = verify(again, world.source)
    assert verdict.checks[ANCHOR].outcome is Outcome.PASSED  # the new batch is anchored
    assert verdict.status is status


def test_superseded_licence_re_anchored_is_still_superseded(world, issued):
    document, successor = issued.documents[0], issued.documents[1]
    world.registry.supersede(
        world.agency, issued.root, document.licence_id, successor.licence_id, Reason.RENEWAL
    )
    verdict = verify(re_anchored(world, document, world.agency), world.source)
    assert verdict.status is Status.SUPERSEDED
    assert verdict.successor == "0x" + successor.licence_id.hex()


def test_another_agency_re_anchoring_a_licence_does_not_make_it_valid(world, issued):
    document = issued.documents[0]
    world.registry.revoke(world.agency, issued.root, document.licence_id, Reason.FRAUD)
    verdict = verify(re_anchored(world, document, world.other_agency), world.source)
    # Agency 2's batch names agency 1 as the issuing authority (a disclosed field).
    assert verdict.status is Status.ISSUER_NOT_AUTHORISED


def test_every_licence_of_a_revoked_batch_is_revoked_with_the_batch_reason(world, issued):
    sent = world.registry.revoke_batch(world.governor, issued.root, Reason.ISSUED_IN_ERROR)
    for document in issued.documents:
        verdict = verify(document, world.source)
        assert verdict.status is Status.REVOKED
        reason = verdict.checks[STATUS].reason
        assert "whole batch" in reason and f"block {sent.block_number}" in reason
        assert "issued in error" in reason
        assert verdict.status_reason == "发证错误"


def test_compromised_key_anchors_from_its_block_are_not_valid_and_earlier_ones_are(world, issued):
    later = world.issue([business_licence(7)])
    since = world.registry.anchor_of(later.root).block_number
    world.registry.mark_signer_compromised(world.governor, world.agency.address, since)
    earlier_verdict = verify(issued.documents[0], world.source)
    assert earlier_verdict.status is Status.VALID
    verdict = verify(later.documents[0], world.source)
    assert verdict.status is Status.ISSUER_NOT_AUTHORISED
    assert verdict.checks[ANCHOR].outcome is Outcome.FAILED
    assert f"reported compromised from block {since}" in verdict.checks[ANCHOR].reason
    assert verdict.anchor is not None  # where it was anchored is still told


def test_licences_re_anchored_with_the_new_key_after_a_compromise_are_valid(world):
    batch = world.issue([business_licence(8), business_licence(9)])  # root is not a leaf
    since = world.registry.anchor_of(batch.root).block_number
    world.registry.mark_signer_compromised(world.governor, world.agency.address, since)
    new_key = key_for("finality-new-key")
    world.chain.fund(new_key.address, 10**18)
    world.registry.rotate_signer(world.governor, AGENCY_ID, new_key.address)
    document = batch.documents[0]
    assert verify(document, world.source).status is Status.ISSUER_NOT_AUTHORISED
    assert verify(re_anchored(world, document, new_key), world.source).status is Status.VALID
    assert world.registry.status_of(document.licence_id, document.licence_id).status is (
        LeafStatus.ACTIVE
    )


# Another agency re-anchoring a licence is caught by the issuer check only because the
# licence names its issuing authority. That holds as long as no presentation can leave
# the field out: the catalogue must make it required and always disclosed.


@pytest.mark.parametrize("licence_type", list(catalogue()), ids=lambda t: t.id)
def test_every_licence_type_always_discloses_its_issuing_authority(licence_type):
    spec = licence_type.field("issuingAuthority")
    assert spec is not None and spec.required
    assert "issuingAuthority" in licence_type.mandatory_disclosure


def test_presentation_withholding_the_issuing_authority_is_refused(world, issued):
    presented = present(issued.documents[0], []).to_json()
    withheld = json.loads(json.dumps(presented))
    withheld["hidden"]["issuingAuthority"] = (
        "0x" + issued.documents[0].commitments["issuingAuthority"].hex()
    )
    del withheld["fields"]["issuingAuthority"], withheld["salts"]["issuingAuthority"]
    with pytest.raises(DocumentError, match="must always be disclosed"):
        parse_document(withheld)
    del withheld["hidden"]["issuingAuthority"]
    with pytest.raises(DocumentError, match="neither disclosed nor hidden"):
        parse_document(withheld)
