"""Final stays final whatever root a licence appears under; the governor withdraws a whole
batch, or everything a compromised agency key anchored from a block on (issue 15.4)."""

from __future__ import annotations

import os

import pytest
from eth_account.signers.local import LocalAccount

from ledger import Registry, RegistryRejected, RegistryUnauthorised
from ledger.registry import DIGEST_BYTES
from licence.statuses import LeafStatus
from tests.conftest import AGENCY_ID, key_for
from tests.contracts.test_statuses import move

S = LeafStatus


def _digest() -> bytes:
    return os.urandom(DIGEST_BYTES)


def _anchored(registry: Registry, sender: LocalAccount, count: int = 10) -> bytes:
    root = _digest()
    registry.anchor(sender, root, 1, count)
    return root


@pytest.mark.parametrize(
    "status", [S.REVOKED, S.SUPERSEDED, S.CANCELLED, S.SUSPENDED], ids=lambda s: s.name
)
def test_re_anchored_leaf_keeps_its_status_under_the_new_root(
    registry: Registry, agency_key: LocalAccount, status: LeafStatus
) -> None:
    first, leaf = _anchored(registry, agency_key), _digest()
    sent = move(registry, agency_key, first, leaf, status)
    # The same agency anchors the same licence id again, alone in a one-leaf batch.
    registry.anchor(agency_key, leaf, 1, 1)
    state = registry.status_of(leaf, leaf)
    assert (state.status, state.reason, state.changed_at_block) == (status, 7, sent.block_number)
    assert state.batch_revoked is False


def test_final_leaf_re_anchored_cannot_be_revived(
    registry: Registry, agency_key: LocalAccount
) -> None:
    first, leaf = _anchored(registry, agency_key), _digest()
    registry.revoke(agency_key, first, leaf, 1)
    second = _anchored(registry, agency_key)
    with pytest.raises(RegistryRejected) as caught:
        registry.reinstate(agency_key, second, leaf, 10)
    assert caught.value.error_name == "LicenceRegistryInvalidTransition"


def test_other_agency_cannot_change_this_agency_leaf_statuses(
    registry: Registry, agency_key: LocalAccount, other_agency_key: LocalAccount
) -> None:
    mine, leaf = _anchored(registry, agency_key), _digest()
    theirs = _anchored(registry, other_agency_key)
    # Naming its own root, agency 2 changes only its own record of that licence id.
    registry.revoke(other_agency_key, theirs, leaf, 1)
    assert registry.status_of(mine, leaf).status == S.ACTIVE
    assert registry.status_of(theirs, leaf).status == S.REVOKED
    registry.suspend(agency_key, mine, leaf, 9)
    assert registry.status_of(mine, leaf).status == S.SUSPENDED


# ---- revokeBatch -------------------------------------------------------------------------


def test_revoked_batch_reads_every_leaf_as_revoked_with_the_batch_reason(
    registry: Registry, governor: LocalAccount, agency_key: LocalAccount
) -> None:
    root = _anchored(registry, agency_key)
    suspended = _digest()
    registry.suspend(agency_key, root, suspended, 9)
    sent = registry.revoke_batch(governor, root, 7)
    assert [(e.name, e.args) for e in sent.events] == [
        ("BatchRevoked", {"root": root, "agencyId": AGENCY_ID, "reason": 7})
    ]
    for leaf in (_digest(), suspended):
        state = registry.status_of(root, leaf)
        assert (state.status, state.reason, state.changed_at_block, state.batch_revoked) == (
            S.REVOKED,
            7,
            sent.block_number,
            True,
        )
    assert registry.batch_revocation_of(root) == (7, sent.block_number)


def test_revoked_batch_keeps_a_leaf_own_final_status(
    registry: Registry, governor: LocalAccount, agency_key: LocalAccount
) -> None:
    root, leaf, successor = _anchored(registry, agency_key), _digest(), _digest()
    registry.supersede(agency_key, root, leaf, successor, 6)
    registry.revoke_batch(governor, root, 7)
    state = registry.status_of(root, leaf)
    assert (state.status, state.successor, state.batch_revoked) == (S.SUPERSEDED, successor, False)


@pytest.mark.parametrize("who", ["agency_key", "other_agency_key", "outsider"])
def test_only_the_governor_revokes_a_batch(
    registry: Registry, agency_key: LocalAccount, who: str, request
) -> None:
    root = _anchored(registry, agency_key)
    sender = request.getfixturevalue(who)
    with pytest.raises(RegistryUnauthorised) as caught:
        registry.revoke_batch(sender, root, 1)
    assert caught.value.error_name == "AccessControlUnauthorizedAccount"
    assert registry.status_of(root, _digest()).status == S.ACTIVE


def test_batch_is_revoked_once_and_only_if_anchored(
    registry: Registry, governor: LocalAccount, agency_key: LocalAccount
) -> None:
    root = _anchored(registry, agency_key)
    registry.revoke_batch(governor, root, 7)
    with pytest.raises(RegistryRejected) as caught:
        registry.revoke_batch(governor, root, 1)
    assert caught.value.error_name == "LicenceRegistryBatchAlreadyRevoked"
    assert caught.value.error_args == {"root": root}
    unknown = _digest()
    with pytest.raises(RegistryRejected) as caught:
        registry.revoke_batch(governor, unknown, 1)
    assert caught.value.error_name == "LicenceRegistryNotAnchored"


# ---- markSignerCompromised ---------------------------------------------------------------


def test_compromised_key_cannot_anchor_or_change_statuses(
    registry: Registry, governor: LocalAccount, agency_key: LocalAccount
) -> None:
    root = _anchored(registry, agency_key)
    registry.mark_signer_compromised(governor, agency_key.address, registry.chain.block_number())
    with pytest.raises(RegistryUnauthorised) as caught:
        registry.anchor(agency_key, _digest(), 1, 1)
    assert caught.value.error_name == "LicenceRegistrySignerCompromised"
    assert caught.value.error_args == {"signer": agency_key.address}
    with pytest.raises(RegistryUnauthorised) as caught:
        registry.revoke(agency_key, root, _digest(), 1)
    assert caught.value.error_name == "LicenceRegistrySignerCompromised"
    assert registry.agency_id_of(agency_key.address) is None


def test_compromise_counts_from_its_block_and_only_for_that_key(
    registry: Registry, governor: LocalAccount, agency_key: LocalAccount
) -> None:
    before = _anchored(registry, agency_key)
    after = _anchored(registry, agency_key)
    after_block = registry.anchor_of(after).block_number
    sent = registry.mark_signer_compromised(governor, agency_key.address, after_block)
    assert [(e.name, e.args) for e in sent.events] == [
        (
            "SignerCompromised",
            {
                "agencyId": AGENCY_ID,
                "signer": agency_key.address,
                "keyNumber": 1,
                "fromBlock": after_block,
            },
        )
    ]
    assert registry.anchor_of(before).key_number == 1
    assert registry.compromised_from(AGENCY_ID, 1) == after_block
    assert registry.anchor_compromised_from(before) is None  # anchored before the block
    assert registry.anchor_compromised_from(after) == after_block
    # The governor gives the agency a new key; what it anchors counts again.
    new_key = key_for("after-compromise")
    registry.chain.fund(new_key.address, 10**18)
    registry.rotate_signer(governor, AGENCY_ID, new_key.address)
    fresh = _anchored(registry, new_key)
    assert registry.anchor_of(fresh).key_number == 2
    assert registry.anchor_compromised_from(fresh) is None
    assert registry.compromised_from(AGENCY_ID, 2) is None


def test_compromised_key_cannot_rotate_itself_away(
    registry: Registry, governor: LocalAccount, agency_key: LocalAccount
) -> None:
    registry.mark_signer_compromised(governor, agency_key.address, 0)
    with pytest.raises(RegistryUnauthorised) as caught:
        registry.rotate_signer(agency_key, AGENCY_ID, key_for("thief").address)
    assert caught.value.error_name == "LicenceRegistrySignerCompromised"


def test_changing_types_does_not_revive_a_compromised_key(
    registry: Registry, governor: LocalAccount, agency_key: LocalAccount
) -> None:
    registry.mark_signer_compromised(governor, agency_key.address, 0)
    registry.set_agency_types(governor, AGENCY_ID, [1, 2])
    with pytest.raises(RegistryUnauthorised) as caught:
        registry.anchor(agency_key, _digest(), 1, 1)
    assert caught.value.error_name == "LicenceRegistrySignerCompromised"


def test_an_old_key_is_reported_compromised_for_its_own_anchors_only(
    registry: Registry, governor: LocalAccount, agency_key: LocalAccount
) -> None:
    old = _anchored(registry, agency_key)
    new_key = key_for("rotated-before-report")
    registry.chain.fund(new_key.address, 10**18)
    registry.rotate_signer(agency_key, AGENCY_ID, new_key.address)
    new = _anchored(registry, new_key)
    registry.mark_signer_compromised(governor, agency_key.address, 0)
    assert registry.anchor_compromised_from(old) == 0
    assert registry.anchor_compromised_from(new) is None
    assert registry.agency_id_of(new_key.address) == AGENCY_ID  # the new key still works
    _anchored(registry, new_key)


@pytest.mark.parametrize("who", ["agency_key", "other_agency_key", "outsider"])
def test_only_the_governor_reports_a_compromised_key(
    registry: Registry, agency_key: LocalAccount, who: str, request
) -> None:
    with pytest.raises(RegistryUnauthorised) as caught:
        registry.mark_signer_compromised(request.getfixturevalue(who), agency_key.address, 0)
    assert caught.value.error_name == "AccessControlUnauthorizedAccount"


def test_compromise_report_needs_a_known_key_a_past_block_and_an_earlier_block_to_repeat(
    registry: Registry, governor: LocalAccount, agency_key: LocalAccount, outsider: LocalAccount
) -> None:
    with pytest.raises(RegistryRejected) as caught:
        registry.mark_signer_compromised(governor, outsider.address, 0)
    assert caught.value.error_name == "LicenceRegistryUnknownSigner"
    future = registry.chain.block_number() + 100
    with pytest.raises(RegistryRejected) as caught:
        registry.mark_signer_compromised(governor, agency_key.address, future)
    assert caught.value.error_name == "LicenceRegistryInvalidCompromiseBlock"
    now = registry.chain.block_number()
    registry.mark_signer_compromised(governor, agency_key.address, now)
    with pytest.raises(RegistryRejected) as caught:
        registry.mark_signer_compromised(governor, agency_key.address, now)
    assert caught.value.error_name == "LicenceRegistrySignerAlreadyCompromised"
    registry.mark_signer_compromised(governor, agency_key.address, now - 1)  # earlier: widened
    assert registry.compromised_from(AGENCY_ID, 1) == now - 1
