"""The index keeps the published licence types (with their definitions, checked against
their hashes), each agency's authorised types and each anchor's type version, as the
registry's views answer them."""

from __future__ import annotations

import dataclasses
import sqlite3
from typing import Any

import pytest

from ledger.errors import TypeDefinitionMismatch
from ledger.index import SCHEMA_VERSION, RegistryIndex
from licence.catalogue import LicenceType, catalogue
from tests.conftest import AGENCY_ID, OTHER_AGENCY_ID, publish_types

ROOTS = [bytes([0x70, i]) * 8 for i in range(4)]
LATER = 7  # a shipped type the registry fixture does not publish


def second_version(code: int) -> LicenceType:
    first = catalogue().by_code(code)
    definition = first.definition.replace(b'"version":1', b'"version":2')
    return dataclasses.replace(first, version=2, definition=definition)


def type_history(registry, governor, agency_key) -> None:
    """A second version of type 1, type 7 published later, authorisations changed, and
    anchors under both versions."""
    registry.anchor(agency_key, ROOTS[0], 1, 5)
    registry.publish_licence_type(governor, second_version(1))
    publish_types(registry, governor, {LATER})
    registry.set_agency_types(governor, AGENCY_ID, {1, LATER})  # withdraws 2
    registry.anchor(agency_key, ROOTS[1], 1, 5, type_version=2)
    registry.anchor(agency_key, ROOTS[2], LATER, 5)


def assert_same_types_as_the_chain(index: RegistryIndex, registry) -> None:
    published = index.published_types()
    assert [(t.code, t.version) for t in published] == [(1, 1), (1, 2), (2, 1), (3, 1), (7, 1)]
    for record in published:
        assert record == registry.licence_type(record.code, record.version)
        assert index.licence_type_definition(record.code, record.version) == (
            registry.licence_type_definition(record.code, record.version)
        )
    for code in (1, 2, 3, LATER, 9):
        assert index.latest_type_version(code) == registry.latest_type_version(code)
    assert index.licence_type(9, 1) is None and index.licence_type_definition(9, 1) is None
    for agency_id in (AGENCY_ID, OTHER_AGENCY_ID):
        assert index.agency(agency_id).licence_types == registry.agency(agency_id).licence_types
    for root in ROOTS:
        assert index.anchor_of(root) == registry.anchor_of(root)


def test_index_after_sync_has_the_chains_type_records(
    tmp_path, registry, governor, agency_key
) -> None:
    type_history(registry, governor, agency_key)
    index = RegistryIndex(tmp_path / "index.sqlite", registry)
    index.sync()
    assert_same_types_as_the_chain(index, registry)
    assert index.agency(AGENCY_ID).licence_types == {1, LATER}
    anchor = index.anchor_of(ROOTS[1])
    assert anchor is not None and anchor.type_version == 2
    # Reopened, it reads the same from its state tables.
    assert_same_types_as_the_chain(RegistryIndex(tmp_path / "index.sqlite", registry), registry)


def test_index_synced_in_steps_has_the_same_type_records(
    tmp_path, registry, governor, agency_key
) -> None:
    index = RegistryIndex(tmp_path / "index.sqlite", registry, step=1)
    index.sync()
    type_history(registry, governor, agency_key)
    index.sync()
    assert_same_types_as_the_chain(index, registry)


def test_index_refuses_a_tampered_definition_log_and_keeps_what_it_had(
    tmp_path, registry, governor, agency_key, monkeypatch: pytest.MonkeyPatch
) -> None:
    index = RegistryIndex(tmp_path / "index.sqlite", registry)
    index.sync()
    synced = index.synced_block
    registry.publish_licence_type(governor, second_version(1))
    eth = registry.chain.w3.eth
    real = eth.get_logs

    def tampered(params: Any) -> Any:
        # A node that swaps a byte of every definition it sends.
        logs = []
        for sent in real(params):
            log = dict(sent)
            if len(log["data"]) > 200:
                data = bytearray(log["data"])
                data[150] ^= 0x01
                log["data"] = bytes(data)
            logs.append(log)
        return logs

    monkeypatch.setattr(eth, "get_logs", tampered)
    with pytest.raises(TypeDefinitionMismatch) as caught:
        index.sync()
    assert (caught.value.code, caught.value.version) == (1, 2)
    assert index.synced_block == synced
    assert index.latest_type_version(1) == 1
    monkeypatch.undo()
    index.sync()
    assert index.latest_type_version(1) == 2


def test_an_index_of_schema_4_is_synced_again_and_learns_the_types(
    tmp_path, registry, governor, agency_key
) -> None:
    path = tmp_path / "index.sqlite"
    type_history(registry, governor, agency_key)
    RegistryIndex(path, registry).sync()
    # As an index written with the bitmask: schema 4, no licence_types table.
    db = sqlite3.connect(path)
    db.execute("UPDATE meta SET value = '4' WHERE key = 'schema'")
    db.execute("DROP TABLE licence_types")
    db.commit()
    db.close()
    reopened = RegistryIndex(path, registry)
    assert reopened.published_types() == []  # emptied, not yet synced
    reopened.sync()
    assert_same_types_as_the_chain(reopened, registry)
    db = sqlite3.connect(path)
    assert db.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone() == (
        str(SCHEMA_VERSION),
    )
    db.close()
