"""The index keeps the agencies' SM2 seal keys as the registry's `sealKeyAt` answers:
registered, rotated and reported compromised, across restarts, reorganisations and
schema upgrades."""

from __future__ import annotations

import sqlite3

from ledger.index import SCHEMA_VERSION, RegistryIndex
from licence import seal
from tests.conftest import AGENCY_ID, OTHER_AGENCY_ID


def seal_history(registry, governor):
    """Agency 1: a key, a rotation, the first key reported compromised; agency 2: a key."""
    first, second, other = (seal.public_key(seal.new_private_key()) for _ in range(3))
    start = registry.chain.block_number() + 1
    registry.register_seal_key(governor, AGENCY_ID, first, start)
    registry.register_seal_key(governor, OTHER_AGENCY_ID, other, start + 1)
    registry.register_seal_key(governor, AGENCY_ID, second, start + 4)
    while registry.chain.block_number() < start + 4:
        registry.chain.fund(governor.address, 1)  # a block goes by
    registry.mark_seal_key_compromised(governor, AGENCY_ID, 1, start + 2)
    return start


def assert_same_as_sealkeyat(index, registry, up_to):
    for agency_id in (AGENCY_ID, OTHER_AGENCY_ID, 3):
        for block in range(up_to + 2):
            assert index.seal_key_at(agency_id, block) == registry.seal_key_at(agency_id, block)


def test_the_index_answers_seal_key_at_as_the_registry_does(tmp_path, registry, governor):
    seal_history(registry, governor)
    index = RegistryIndex(tmp_path / "index.sqlite", registry)
    index.sync()
    head = registry.chain.block_number()
    assert_same_as_sealkeyat(index, registry, head)
    compromised = index.seal_key_at(AGENCY_ID, head - 5)
    assert compromised is not None and compromised.compromised_from is not None
    # Reopened: read from the seal_keys table, not the journal.
    index.close()
    reopened = RegistryIndex(tmp_path / "index.sqlite", registry)
    assert_same_as_sealkeyat(reopened, registry, head)
    assert reopened.seal_keys() == [
        k for a in (AGENCY_ID, OTHER_AGENCY_ID) for k in _all_keys(registry, a, head)
    ]


def _all_keys(registry, agency_id, head):
    found = {}
    for block in range(head + 1):
        key = registry.seal_key_at(agency_id, block)
        if key is not None:
            found[key.number] = key
    return [found[n] for n in sorted(found)]


def test_an_index_of_schema_3_is_synced_again_and_learns_the_seal_keys(
    tmp_path, registry, governor
):
    path = tmp_path / "index.sqlite"
    seal_history(registry, governor)
    RegistryIndex(path, registry).sync()
    # As an index written before seal keys: schema 3, no seal_keys table.
    db = sqlite3.connect(path)
    db.execute("UPDATE meta SET value = '3' WHERE key = 'schema'")
    db.execute("DROP TABLE seal_keys")
    db.commit()
    db.close()
    reopened = RegistryIndex(path, registry)
    assert reopened.seal_key_at(AGENCY_ID, 2**40) is None  # emptied, not yet synced
    reopened.sync()
    assert_same_as_sealkeyat(reopened, registry, registry.chain.block_number())
    db = sqlite3.connect(path)
    assert db.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone() == (
        str(SCHEMA_VERSION),
    )
    db.close()
