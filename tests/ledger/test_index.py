"""The event index: the same state as the registry's views, incremental, rebuildable,
and safe across a reorganisation."""

from __future__ import annotations

import pytest

from ledger import Registry, connect
from ledger.errors import IndexMismatch
from ledger.index import RegistryIndex
from licence.statuses import LeafStatus
from tests.conftest import ANVIL_FAUCET_KEY, key_for, publish_types

ROOTS = [bytes([i]) * 16 for i in range(1, 6)]
LEAVES = [bytes([0x40 + i]) * 16 for i in range(6)]


def exercise(registry, governor, agency_key, other_agency_key):
    """Every kind of event the registry emits."""
    registry.anchor(agency_key, ROOTS[0], 1, 5)
    registry.anchor(other_agency_key, ROOTS[1], 3, 2)
    registry.revoke(agency_key, ROOTS[0], LEAVES[0], 1)
    registry.suspend(agency_key, ROOTS[0], LEAVES[1], 9)
    registry.set_statuses(agency_key, ROOTS[0], LEAVES[2:4], LeafStatus.CANCELLED, 4)
    registry.supersede(agency_key, ROOTS[0], LEAVES[4], LEAVES[5], 5)
    registry.set_agency_types(governor, 2, [1])
    new_key = key_for("rotated-agency-1")
    registry.rotate_signer(governor, 1, new_key.address)
    registry.retire_agency(governor, 2)


def assert_same_as_views(index, registry):
    for agency_id in (1, 2):
        assert index.agency(agency_id) == registry.agency(agency_id)
        for key_number in (1, 2, 3):
            assert index.compromised_from(agency_id, key_number) == registry.compromised_from(
                agency_id, key_number
            )
    for root in ROOTS:
        assert index.anchor_of(root) == registry.anchor_of(root)
        for leaf in LEAVES:
            assert index.status_of(root, leaf) == registry.status_of(root, leaf)


def exercise_withdrawals(registry, governor, agency_key, other_agency_key):
    """Re-anchoring, a foreign root, a batch revocation and a compromised key."""
    registry.anchor(agency_key, ROOTS[0], 1, 5)
    registry.anchor(other_agency_key, ROOTS[1], 1, 2)
    registry.revoke(agency_key, ROOTS[0], LEAVES[0], 1)
    registry.suspend(agency_key, ROOTS[0], LEAVES[1], 9)
    registry.revoke(other_agency_key, ROOTS[1], LEAVES[2], 3)  # agency 2's own record only
    registry.anchor(agency_key, ROOTS[2], 1, 5)  # LEAVES[0] and [1] again, same agency
    registry.supersede(agency_key, ROOTS[2], LEAVES[3], LEAVES[5], 6)
    registry.revoke_batch(governor, ROOTS[2], 7)
    registry.mark_signer_compromised(governor, agency_key.address, registry.chain.block_number())
    new_key = key_for("index-new-key")
    registry.chain.fund(new_key.address, 10**18)
    registry.rotate_signer(governor, 1, new_key.address)
    registry.anchor(new_key, ROOTS[3], 1, 5)


def test_index_follows_agency_keyed_statuses_batch_revocations_and_compromises(
    tmp_path, registry, governor, agency_key, other_agency_key
):
    exercise_withdrawals(registry, governor, agency_key, other_agency_key)
    index = RegistryIndex(tmp_path / "index.sqlite", registry)
    index.sync()
    assert_same_as_views(index, registry)
    assert index.status_of(ROOTS[2], LEAVES[0]).status is LeafStatus.REVOKED
    assert index.status_of(ROOTS[2], LEAVES[0]).batch_revoked is False
    assert index.status_of(ROOTS[2], LEAVES[4]).batch_revoked is True
    assert index.status_of(ROOTS[0], LEAVES[2]).status is LeafStatus.ACTIVE
    assert index.anchor_of(ROOTS[3]).key_number == 2
    assert index.compromised_from(1, 1) is not None


def test_index_of_an_older_schema_is_rebuilt_from_the_chain(
    tmp_path, registry, governor, agency_key, other_agency_key
):
    import sqlite3

    path = tmp_path / "index.sqlite"
    exercise_withdrawals(registry, governor, agency_key, other_agency_key)
    RegistryIndex(path, registry).sync()
    # An index written before schema versions: no version, and a journal row the
    # per-root keying produced, which must not survive.
    db = sqlite3.connect(path)
    db.execute("DELETE FROM meta WHERE key = 'schema'")
    db.execute("DELETE FROM events WHERE name = 'BatchRevoked'")
    db.commit()
    db.close()
    reopened = RegistryIndex(path, registry)
    reopened.sync()
    assert_same_as_views(reopened, registry)


def test_index_of_a_newer_schema_is_refused(tmp_path, registry):
    import sqlite3

    path = tmp_path / "index.sqlite"
    RegistryIndex(path, registry).sync()
    db = sqlite3.connect(path)
    db.execute("UPDATE meta SET value = '999' WHERE key = 'schema'")
    db.commit()
    db.close()
    with pytest.raises(IndexMismatch, match="schema"):
        RegistryIndex(path, registry)


def test_index_state_equals_the_registry_views(
    tmp_path, registry, governor, agency_key, other_agency_key
):
    exercise(registry, governor, agency_key, other_agency_key)
    index = RegistryIndex(tmp_path / "index.sqlite", registry)
    report = index.sync()
    assert report.events >= 11
    assert index.synced_block == registry.chain.block_number()
    assert_same_as_views(index, registry)


def test_deleted_index_is_rebuilt_from_nothing(
    tmp_path, registry, governor, agency_key, other_agency_key
):
    exercise(registry, governor, agency_key, other_agency_key)
    path = tmp_path / "index.sqlite"
    RegistryIndex(path, registry).sync()
    for suffix in ("", "-wal", "-shm"):
        (tmp_path / f"index.sqlite{suffix}").unlink(missing_ok=True)
    rebuilt = RegistryIndex(path, registry)
    rebuilt.sync()
    assert_same_as_views(rebuilt, registry)


def test_reopened_index_keeps_its_state_and_syncs_only_what_is_new(tmp_path, registry, agency_key):
    path = tmp_path / "index.sqlite"
    registry.anchor(agency_key, ROOTS[0], 1, 5)
    RegistryIndex(path, registry).sync()
    registry.revoke(agency_key, ROOTS[0], LEAVES[0], 2)
    reopened = RegistryIndex(path, registry)
    assert reopened.anchor_of(ROOTS[0]) is not None  # from disk, before any sync
    report = reopened.sync()
    assert report.events == 1
    assert reopened.status_of(ROOTS[0], LEAVES[0]).status is LeafStatus.REVOKED


def test_catch_up_makes_a_revocation_visible_at_once(tmp_path, registry, agency_key):
    registry.anchor(agency_key, ROOTS[0], 1, 5)
    index = RegistryIndex(tmp_path / "index.sqlite", registry)
    index.catch_up()
    assert index.status_of(ROOTS[0], LEAVES[0]).status is LeafStatus.ACTIVE
    sent = registry.revoke(agency_key, ROOTS[0], LEAVES[0], 2)
    assert index.catch_up() == sent.block_number
    assert index.status_of(ROOTS[0], LEAVES[0]).status is LeafStatus.REVOKED


def test_confirmation_depth_holds_back_the_newest_blocks(tmp_path, registry, agency_key):
    index = RegistryIndex(tmp_path / "index.sqlite", registry, confirmations=2)
    sent = registry.anchor(agency_key, ROOTS[0], 1, 5)
    index.catch_up()
    assert index.anchor_of(ROOTS[0]) is None
    assert index.synced_block == sent.block_number - 2
    registry.anchor(agency_key, ROOTS[1], 1, 5)
    registry.anchor(agency_key, ROOTS[2], 1, 5)
    index.catch_up()
    assert index.anchor_of(ROOTS[0]).block_number == sent.block_number


def test_small_sync_ranges_give_the_same_state(
    tmp_path, registry, governor, agency_key, other_agency_key
):
    exercise(registry, governor, agency_key, other_agency_key)
    index = RegistryIndex(tmp_path / "index.sqlite", registry, step=2)
    index.sync()
    assert_same_as_views(index, registry)


def test_an_index_of_another_registry_is_refused(tmp_path, chain, governor, registry):
    path = tmp_path / "index.sqlite"
    RegistryIndex(path, registry).sync()
    other = Registry.deploy(chain, governor)
    with pytest.raises(IndexMismatch, match="another chain or registry"):
        RegistryIndex(path, other)


@pytest.mark.anvil
def test_index_follows_a_reorganisation_on_anvil(tmp_path, anvil_url):
    chain = connect(anvil_url, faucet_key=ANVIL_FAUCET_KEY)
    governor, agency = key_for("reorg-governor"), key_for("reorg-agency")
    for account in (governor, agency):
        chain.fund(account.address, 10**20)
    registry = Registry.deploy(chain, governor)
    publish_types(registry, governor, {1, 2, 3})
    registry.register_agency(governor, "91110108551385082Q", "某局", agency.address, [1])
    registry.anchor(agency, ROOTS[0], 1, 1)
    snapshot = chain.w3.provider.make_request("evm_snapshot", [])["result"]
    registry.anchor(agency, ROOTS[1], 1, 1)
    registry.revoke(agency, ROOTS[0], LEAVES[0], 1)
    index = RegistryIndex(tmp_path / "index.sqlite", registry)
    index.sync()
    assert index.anchor_of(ROOTS[1]) is not None
    # The chain loses the last two blocks and grows a different branch past them.
    assert chain.w3.provider.make_request("evm_revert", [snapshot])["result"] is True
    registry.anchor(agency, ROOTS[2], 1, 1)
    registry.anchor(agency, ROOTS[3], 1, 1)
    registry.anchor(agency, ROOTS[4], 1, 1)
    report = index.sync()
    assert report.reorganised_from is not None
    assert index.anchor_of(ROOTS[1]) is None
    assert index.status_of(ROOTS[0], LEAVES[0]).status is LeafStatus.ACTIVE
    assert all(index.anchor_of(r) == registry.anchor_of(r) for r in ROOTS)
