"""Anchoring batches and the life of each licence (leaf) under an anchored root."""

from __future__ import annotations

import os
from collections.abc import Callable

import pytest
from eth_account.signers.local import LocalAccount

from ledger import Registry, RegistryRejected, RegistryUnauthorised
from ledger.registry import DIGEST_BYTES
from licence.statuses import LeafStatus
from tests.conftest import AGENCY_ID

S = LeafStatus
FINAL = {S.REVOKED, S.SUPERSEDED, S.CANCELLED}
ALLOWED = {(S.ACTIVE, to) for to in (S.SUSPENDED, S.REVOKED, S.SUPERSEDED, S.CANCELLED)} | {
    (S.SUSPENDED, to) for to in (S.ACTIVE, S.REVOKED, S.SUPERSEDED, S.CANCELLED)
}


def _digest() -> bytes:
    return os.urandom(DIGEST_BYTES)


@pytest.fixture
def root(registry: Registry, agency_key: LocalAccount) -> bytes:
    """A root anchored by agency 1: 10 licences of type 1."""
    anchored = _digest()
    registry.anchor(agency_key, anchored, 1, 10)
    return anchored


def move(registry: Registry, sender: LocalAccount, root: bytes, leaf: bytes, to: LeafStatus):
    """Send the one-leaf call that moves ``leaf`` to ``to``."""
    calls: dict[LeafStatus, Callable[[], object]] = {
        S.ACTIVE: lambda: registry.reinstate(sender, root, leaf, 7),
        S.SUSPENDED: lambda: registry.suspend(sender, root, leaf, 7),
        S.REVOKED: lambda: registry.revoke(sender, root, leaf, 7),
        S.SUPERSEDED: lambda: registry.supersede(sender, root, leaf, b"\x5a" * DIGEST_BYTES, 7),
        S.CANCELLED: lambda: registry.cancel(sender, root, leaf, 7),
    }
    return calls[to]()


def test_anchor_is_stored_and_announced(registry: Registry, agency_key: LocalAccount) -> None:
    root = _digest()
    sent = registry.anchor(agency_key, root, 2, 1_000)
    anchor = registry.anchor_of(root)
    assert anchor is not None
    assert (anchor.root, anchor.agency_id, anchor.licence_type, anchor.count) == (
        root,
        AGENCY_ID,
        2,
        1_000,
    )
    assert anchor.block_number == sent.block_number
    block = registry.chain.w3.eth.get_block(sent.block_number)
    assert anchor.timestamp == block["timestamp"]
    assert [e.name for e in sent.events] == ["BatchAnchored"]
    assert anchor.type_version == 1
    assert sent.events[0].args == {
        "root": root,
        "agencyId": AGENCY_ID,
        "licenceType": 2,
        "typeVersion": 1,
        "count": 1_000,
    }


def test_unanchored_root_reads_as_none(registry: Registry) -> None:
    assert registry.anchor_of(_digest()) is None


def test_anchor_cannot_be_overwritten(
    registry: Registry, agency_key: LocalAccount, other_agency_key: LocalAccount, root: bytes
) -> None:
    for sender in (agency_key, other_agency_key):
        with pytest.raises(RegistryRejected) as caught:
            registry.anchor(sender, root, 1, 5)
        assert caught.value.error_name == "LicenceRegistryAlreadyAnchored"
        assert caught.value.error_args == {"root": root}
    anchor = registry.anchor_of(root)
    assert anchor is not None and anchor.count == 10


@pytest.mark.parametrize(("root", "count"), [(bytes(DIGEST_BYTES), 1), (b"\x01" * DIGEST_BYTES, 0)])
def test_anchor_needs_a_root_and_a_count(
    registry: Registry, agency_key: LocalAccount, root: bytes, count: int
) -> None:
    with pytest.raises(RegistryRejected) as caught:
        registry.anchor(agency_key, root, 1, count)
    assert caught.value.error_name == "LicenceRegistryInvalidAnchor"
    assert caught.value.error_args == {"root": root, "count": count}


def test_status_change_under_unanchored_root_is_refused(
    registry: Registry, agency_key: LocalAccount
) -> None:
    root = _digest()
    with pytest.raises(RegistryRejected) as caught:
        registry.revoke(agency_key, root, _digest(), 1)
    assert caught.value.error_name == "LicenceRegistryNotAnchored"
    assert caught.value.error_args == {"root": root}


def test_untouched_leaf_is_active(registry: Registry, root: bytes) -> None:
    state = registry.status_of(root, _digest())
    assert (state.status, state.reason, state.changed_at_block, state.successor) == (
        S.ACTIVE,
        0,
        0,
        None,
    )


REACH: dict[LeafStatus, list[LeafStatus]] = {
    S.ACTIVE: [],
    S.SUSPENDED: [S.SUSPENDED],
    S.REVOKED: [S.REVOKED],
    S.SUPERSEDED: [S.SUPERSEDED],
    S.CANCELLED: [S.CANCELLED],
}


@pytest.mark.parametrize("to", list(S), ids=[s.name for s in S])
@pytest.mark.parametrize("start", list(S), ids=[s.name for s in S])
def test_transition_table(
    registry: Registry, agency_key: LocalAccount, root: bytes, start: LeafStatus, to: LeafStatus
) -> None:
    leaf = _digest()
    for step in REACH[start]:
        move(registry, agency_key, root, leaf, step)
    assert registry.status_of(root, leaf).status == start
    if (start, to) in ALLOWED:
        sent = move(registry, agency_key, root, leaf, to)
        state = registry.status_of(root, leaf)
        assert (state.status, state.reason, state.changed_at_block) == (to, 7, sent.block_number)
    else:
        with pytest.raises(RegistryRejected) as caught:
            move(registry, agency_key, root, leaf, to)
        assert caught.value.error_name == "LicenceRegistryInvalidTransition"
        assert caught.value.error_args == {"leaf": leaf, "from": start, "to": to}


def test_status_change_is_announced_with_everything_an_indexer_needs(
    registry: Registry, agency_key: LocalAccount, root: bytes
) -> None:
    leaf = _digest()
    sent = registry.suspend(agency_key, root, leaf, 12)
    assert [(e.name, e.args) for e in sent.events] == [
        ("LeafStatusChanged", {"root": root, "leaf": leaf, "status": S.SUSPENDED, "reason": 12})
    ]


def test_supersede_records_and_announces_the_successor(
    registry: Registry, agency_key: LocalAccount, root: bytes
) -> None:
    leaf, successor = _digest(), _digest()
    sent = registry.supersede(agency_key, root, leaf, successor, 4)
    assert [(e.name, e.args) for e in sent.events] == [
        ("LeafSuperseded", {"root": root, "leaf": leaf, "successor": successor, "reason": 4})
    ]
    state = registry.status_of(root, leaf)
    assert (state.status, state.successor, state.reason) == (S.SUPERSEDED, successor, 4)


def test_status_is_kept_per_agency_not_per_root(
    registry: Registry, agency_key: LocalAccount, other_agency_key: LocalAccount, root: bytes
) -> None:
    same_agency, other_agency, leaf = _digest(), _digest(), _digest()
    registry.anchor(agency_key, same_agency, 1, 3)
    registry.anchor(other_agency_key, other_agency, 1, 3)
    registry.revoke(agency_key, root, leaf, 1)
    assert registry.status_of(same_agency, leaf).status == S.REVOKED
    assert registry.status_of(other_agency, leaf).status == S.ACTIVE


def test_governor_can_change_a_leaf_status(
    registry: Registry, governor: LocalAccount, root: bytes
) -> None:
    leaf = _digest()
    registry.revoke(governor, root, leaf, 9)
    assert registry.status_of(root, leaf).status == S.REVOKED


def test_governor_can_change_statuses_under_a_retired_agency_root(
    registry: Registry, governor: LocalAccount, root: bytes
) -> None:
    registry.retire_agency(governor, AGENCY_ID)
    leaf = _digest()
    registry.set_statuses(governor, root, [leaf], S.CANCELLED, 2)
    assert registry.status_of(root, leaf).status == S.CANCELLED


def test_bulk_status_change_sets_and_announces_every_leaf(
    registry: Registry, agency_key: LocalAccount, root: bytes
) -> None:
    leaves = [_digest() for _ in range(12)]
    sent = registry.set_statuses(agency_key, root, leaves, S.REVOKED, 3)
    # One event for the whole call, naming every leaf in the order given.
    assert [e.name for e in sent.events] == ["LeafStatusesChanged"]
    args = sent.events[0].args
    assert (args["root"], args["status"], args["reason"]) == (root, S.REVOKED, 3)
    assert list(args["leaves"]) == leaves
    for leaf in leaves:
        assert registry.status_of(root, leaf).status == S.REVOKED


def test_bulk_status_change_is_all_or_nothing(
    registry: Registry, agency_key: LocalAccount, root: bytes
) -> None:
    revoked, fresh = _digest(), _digest()
    registry.revoke(agency_key, root, revoked, 1)
    with pytest.raises(RegistryRejected) as caught:
        registry.set_statuses(agency_key, root, [fresh, revoked], S.SUSPENDED, 1)
    assert caught.value.error_name == "LicenceRegistryInvalidTransition"
    assert registry.status_of(root, fresh).status == S.ACTIVE


def test_bulk_cannot_supersede(registry: Registry, agency_key: LocalAccount, root: bytes) -> None:
    with pytest.raises(RegistryRejected) as caught:
        registry.set_statuses(agency_key, root, [_digest()], S.SUPERSEDED, 1)
    assert caught.value.error_name == "LicenceRegistryStatusNotBulk"
    assert caught.value.error_args == {"status": S.SUPERSEDED}


def test_bulk_needs_leaves(registry: Registry, agency_key: LocalAccount, root: bytes) -> None:
    with pytest.raises(RegistryRejected) as caught:
        registry.set_statuses(agency_key, root, [], S.REVOKED, 1)
    assert caught.value.error_name == "LicenceRegistryNoLeaves"


def test_bulk_by_other_agency_is_refused(
    registry: Registry, other_agency_key: LocalAccount, root: bytes
) -> None:
    with pytest.raises(RegistryUnauthorised) as caught:
        registry.set_statuses(other_agency_key, root, [_digest()], S.REVOKED, 1)
    assert caught.value.error_name == "LicenceRegistryNotBatchIssuer"
