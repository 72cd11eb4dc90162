"""Over HTTP, through the service's index: a revoked licence anchored again by its own
agency is still REVOKED; a revoked batch and a compromised key's anchors are not VALID
(issue 15.4)."""

from __future__ import annotations

from dataclasses import replace

from licence.document import AnchorRef
from licence.reasons import Reason
from tests.samples import business_licence


def test_revoked_licence_re_anchored_by_its_agency_is_still_revoked(service):
    batch = service.issue([business_licence(i) for i in range(2)])
    document = batch.documents[0]
    service.registry.revoke(service.agency, batch.root, document.licence_id, int(Reason.FRAUD))
    assert service.verify(document).json()["status"] == "REVOKED"
    # The same agency anchors the same licence id again, alone: a one-leaf batch.
    leaf = document.licence_id
    service.registry.anchor(service.agency, leaf, document.licence_type.code, 1)
    ref = document.anchor
    again = replace(document, anchor=AnchorRef(ref.chain_id, ref.registry, leaf, ()))
    body = service.verify(again).json()
    assert body["status"] == "REVOKED"
    assert [c["outcome"] for c in body["checks"]][:2] == ["passed", "passed"]


def test_revoked_batch_and_compromised_key_anchors_are_not_valid(service, governor):
    withdrawn = service.issue([business_licence(i) for i in range(2)])
    service.registry.revoke_batch(governor, withdrawn.root, int(Reason.ISSUED_IN_ERROR))
    body = service.verify(withdrawn.documents[1]).json()
    assert body["status"] == "REVOKED"
    assert body["statusReason"] == "发证错误"
    later = service.issue([business_licence(5), business_licence(6)])
    since = service.registry.anchor_of(later.root).block_number
    service.registry.mark_signer_compromised(governor, service.agency.address, since)
    body = service.verify(later.documents[0]).json()
    assert body["status"] == "ISSUER_NOT_AUTHORISED"
    assert f"compromised from block {since}" in body["checks"][1]["reason"]
