"""verify() through a licence's life on chain: suspended, reinstated, superseded,
cancelled, revoked in bulk or by the governor, and across governance changes (a retired
agency, a rotated key, narrowed licence types).

Each test changes the registry with the binding, as an agency or the governor would,
and reads the verdict through verifier.checks.verify, as a verifying client would.
"""

from __future__ import annotations

import pytest

from ledger import RegistryUnauthorised
from licence.reasons import Reason
from licence.statuses import LeafStatus
from tests.conftest import AGENCY_ID, key_for
from tests.samples import business_licence
from verifier.checks import verify
from verifier.verdict import CheckName, Outcome, Status

STATUS = list(CheckName).index(CheckName.STATUS)
ISSUER = list(CheckName).index(CheckName.ISSUER)


def _hex(value: bytes) -> str:
    return "0x" + value.hex()


def test_suspended_licence_is_suspended_with_the_reason_in_words(world, issued):
    document = issued.documents[0]
    world.registry.suspend(
        world.agency, issued.root, document.licence_id, Reason.UNDER_INVESTIGATION
    )
    verdict = verify(document, world.source)
    assert verdict.status is Status.SUSPENDED
    assert verdict.status_reason == "监督检查中"
    assert "suspended (暂扣)" in verdict.checks[STATUS].reason
    assert "under investigation" in verdict.checks[STATUS].reason
    assert verdict.successor is None


def test_reinstated_licence_is_valid_again(world, issued):
    document = issued.documents[0]
    world.registry.suspend(
        world.agency, issued.root, document.licence_id, Reason.UNDER_INVESTIGATION
    )
    world.registry.reinstate(world.agency, issued.root, document.licence_id, Reason.RECTIFIED)
    verdict = verify(document, world.source)
    assert verdict.status is Status.VALID
    assert verdict.checks[STATUS].outcome is Outcome.PASSED
    assert verdict.status_reason is None


def test_superseded_licence_names_its_successor_which_is_valid(world, issued):
    old = issued.documents[0]
    renewed = world.issue([business_licence(0, registeredCapital="500万元人民币")])
    new = renewed.documents[0]
    world.registry.supersede(
        world.agency, issued.root, old.licence_id, new.licence_id, Reason.CHANGE_OF_PARTICULARS
    )
    verdict = verify(old, world.source)
    assert verdict.status is Status.SUPERSEDED
    assert verdict.successor == _hex(new.licence_id)
    assert verdict.status_reason == "登记事项变更"
    assert f"the new licence is {_hex(new.licence_id)}" in verdict.checks[STATUS].reason
    assert verify(new, world.source).status is Status.VALID


def test_cancelled_licence_is_cancelled_not_revoked(world, issued):
    document = issued.documents[2]
    world.registry.cancel(world.agency, issued.root, document.licence_id, Reason.HOLDER_REQUEST)
    verdict = verify(document, world.source)
    assert verdict.status is Status.CANCELLED
    assert verdict.status_reason == "持证主体申请"
    assert "注销" in verdict.checks[STATUS].reason


def test_bulk_revoke_revokes_every_named_licence_and_no_other(world):
    batch = world.issue([business_licence(i) for i in range(5)])
    revoked, kept = batch.documents[:4], batch.documents[4]
    world.registry.set_statuses(
        world.agency,
        batch.root,
        [d.licence_id for d in revoked],
        LeafStatus.REVOKED,
        Reason.ADMINISTRATIVE_PENALTY,
    )
    verdicts = [verify(d, world.source) for d in revoked]
    assert {v.status for v in verdicts} == {Status.REVOKED}
    assert {v.status_reason for v in verdicts} == {"行政处罚"}
    assert verify(kept, world.source).status is Status.VALID


def test_licence_revoked_by_the_governor_is_revoked(world, issued):
    document = issued.documents[1]
    world.registry.revoke(world.governor, issued.root, document.licence_id, Reason.COURT_ORDER)
    verdict = verify(document, world.source)
    assert verdict.status is Status.REVOKED
    assert verdict.status_reason == "人民法院裁判"


def test_retired_agency_earlier_licence_stays_valid(world, issued):
    world.registry.retire_agency(world.governor, AGENCY_ID)
    verdict = verify(issued.documents[0], world.source)
    assert verdict.status is Status.VALID
    assert verdict.issuer is not None and verdict.issuer.agency_id == AGENCY_ID


def test_after_key_rotation_earlier_licences_stay_valid_and_the_new_key_revokes_them(world, issued):
    new_key = key_for("agency-rotated")
    world.chain.fund(new_key.address, 10**18)
    world.registry.rotate_signer(world.agency, AGENCY_ID, new_key.address)

    assert {verify(d, world.source).status for d in issued.documents} == {Status.VALID}

    document = issued.documents[0]
    with pytest.raises(RegistryUnauthorised) as caught:
        world.registry.revoke(world.agency, issued.root, document.licence_id, Reason.FRAUD)
    assert caught.value.error_name == "LicenceRegistryNotBatchIssuer"
    world.registry.revoke(new_key, issued.root, document.licence_id, Reason.FRAUD)
    assert verify(document, world.source).status is Status.REVOKED
    assert verify(issued.documents[1], world.source).status is Status.VALID


def test_anchor_made_before_the_types_were_narrowed_still_verifies(world, issued):
    # Authorisation is judged at the anchoring block: the business-licence type (code 1)
    # is taken away afterwards, and the licence anchored before stays valid.
    world.registry.set_agency_types(world.governor, AGENCY_ID, {2})
    verdict = verify(issued.documents[0], world.source)
    assert verdict.status is Status.VALID
    anchor = world.registry.anchor_of(issued.root)
    assert anchor is not None
    assert f"at block {anchor.block_number}" in verdict.checks[ISSUER].reason
