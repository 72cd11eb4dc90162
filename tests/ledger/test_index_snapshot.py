"""Index snapshots: a new replica imports another's index and syncs only what came after;
a damaged file, another registry or chain, or another branch is refused."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from cli.app import app
from ledger import Registry, connect
from ledger.errors import IndexMismatch, SnapshotRefused
from ledger.index import SCHEMA_VERSION, RegistryIndex
from ledger.snapshot import MAGIC, export_snapshot, import_snapshot
from licence.catalogue import catalogue
from licence.statuses import LeafStatus
from tests.conftest import ANVIL_FAUCET_KEY, key_for, publish_types
from tests.ledger.test_index_sync import ROOTS, leaf


@pytest.fixture
def synced(tmp_path, registry, agency_key):
    """An index of a registry with an anchor and a revocation, and its snapshot."""
    registry.anchor(agency_key, ROOTS[0], 1, 10)
    registry.revoke(agency_key, ROOTS[0], leaf(1), 1)
    index = RegistryIndex(tmp_path / "index.sqlite", registry)
    index.sync()
    snapshot = tmp_path / "index.elidx"
    header = export_snapshot(index.path, snapshot)
    return index, snapshot, header


def test_imported_snapshot_has_the_state_and_syncs_only_what_came_after(
    tmp_path, registry, agency_key, synced
):
    index, snapshot, header = synced
    assert header.height == index.synced_block
    registry.revoke(agency_key, ROOTS[0], leaf(2), 1)
    replica = tmp_path / "replica" / "index.sqlite"
    imported = import_snapshot(snapshot, replica, registry, expected_sha256=header.sha256)
    assert imported.height == header.height
    fresh = RegistryIndex(replica, registry)
    assert fresh.synced_block == header.height
    assert fresh.status_of(ROOTS[0], leaf(1)).status is LeafStatus.REVOKED  # from the file
    report = fresh.sync()
    assert (report.from_block, report.events) == (header.height + 1, 1)
    assert fresh.status_of(ROOTS[0], leaf(2)) == registry.status_of(ROOTS[0], leaf(2))
    assert fresh.anchor_transaction(ROOTS[0]) == index.anchor_transaction(ROOTS[0])


def test_imported_snapshot_carries_the_published_types_and_their_definitions(
    tmp_path, registry, synced
):
    index, snapshot, _ = synced
    replica = tmp_path / "replica" / "index.sqlite"
    import_snapshot(snapshot, replica, registry)
    fresh = RegistryIndex(replica, registry)
    assert fresh.published_types() == index.published_types()
    assert [(t.code, t.version) for t in fresh.published_types()] == [(1, 1), (2, 1), (3, 1)]
    for published in fresh.published_types():
        assert published == registry.licence_type(published.code, published.version)
        assert fresh.licence_type_definition(published.code, published.version) == (
            catalogue().by_code(published.code).definition
        )
    assert fresh.agency(1).licence_types == registry.agency(1).licence_types
    anchor = fresh.anchor_of(ROOTS[0])
    assert anchor is not None and anchor.type_version == 1


@pytest.mark.parametrize(
    ("damage", "reason"),
    [
        (lambda data: data[: len(data) // 2], "truncated"),
        (lambda data: data[:-1] + bytes([data[-1] ^ 1]), "damaged"),
        (lambda data: data + b"x", "past its payload"),
        (lambda data: b"PK\x03\x04" + data[4:], "not an elicence index snapshot"),
        (lambda data: data[: len(MAGIC) + 20], "header is damaged"),
        (
            lambda data: data.replace(b'"schema":%d' % SCHEMA_VERSION, b'"schema":9', 1),
            "schema 9",
        ),
    ],
)
def test_damaged_snapshot_is_refused_and_nothing_is_written(
    tmp_path, registry, synced, damage, reason
):
    _, snapshot, _ = synced
    snapshot.write_bytes(damage(snapshot.read_bytes()))
    target = tmp_path / "replica" / "index.sqlite"
    with pytest.raises(SnapshotRefused, match=reason):
        import_snapshot(snapshot, target, registry)
    assert not target.parent.exists() or list(target.parent.iterdir()) == []


def test_snapshot_of_another_registry_is_refused(tmp_path, chain, governor, synced):
    _, snapshot, _ = synced
    other = Registry.deploy(chain, governor)
    with pytest.raises(SnapshotRefused, match=r"not of .* on chain"):
        import_snapshot(snapshot, tmp_path / "other.sqlite", other)


def test_snapshot_of_another_chain_with_the_same_id_and_address_is_refused(tmp_path, synced):
    index, snapshot, _ = synced
    # A second in-process chain: same chain id, same deployer and nonce, so the same
    # registry address; only its blocks differ.
    chain = connect("embedded")
    governor = key_for("governor")
    chain.fund(governor.address, 10**20)
    twin = Registry.deploy(chain, governor)
    while chain.block_number() < index.synced_block:
        chain.fund(key_for("padding").address, 1)
    with pytest.raises(SnapshotRefused, match="another chain or on a branch"):
        import_snapshot(snapshot, tmp_path / "twin.sqlite", twin)


def test_existing_index_is_not_replaced_unless_asked(tmp_path, registry, synced):
    index, snapshot, _ = synced
    with pytest.raises(SnapshotRefused, match="an index exists"):
        import_snapshot(snapshot, index.path, registry)
    assert isinstance(SnapshotRefused("x"), IndexMismatch)


def test_wrong_expected_digest_is_refused(tmp_path, registry, synced):
    _, snapshot, _ = synced
    with pytest.raises(SnapshotRefused, match="SHA-256"):
        import_snapshot(snapshot, tmp_path / "r.sqlite", registry, expected_sha256="00" * 32)


def test_empty_index_cannot_be_exported(tmp_path, registry):
    index = RegistryIndex(tmp_path / "index.sqlite", registry)
    with pytest.raises(SnapshotRefused, match="nothing to export"):
        export_snapshot(index.path, tmp_path / "empty.elidx")


def anvil_home(tmp_path, anvil_url, name):
    chain = connect(anvil_url, faucet_key=ANVIL_FAUCET_KEY)
    governor, agency = key_for(f"{name}-governor"), key_for(f"{name}-agency")
    for account in (governor, agency):
        chain.fund(account.address, 10**20)
    registry = Registry.deploy(chain, governor)
    publish_types(registry, governor, {1, 2, 3})
    registry.register_agency(governor, "91110108551385082Q", "某局", agency.address, [1])
    registry.anchor(agency, ROOTS[0], 1, 10)
    registry.revoke(agency, ROOTS[0], leaf(1), 1)
    return registry, agency


@pytest.mark.anvil
def test_cli_export_then_import_makes_a_ready_replica(tmp_path, anvil_url):
    registry, agency = anvil_home(tmp_path, anvil_url, "cli-snapshot")
    source, replica = tmp_path / "source", tmp_path / "replica"
    flags = ["--chain", anvil_url, "--registry", registry.address]
    RegistryIndex(source / "index.sqlite", registry).sync()
    runner = CliRunner()
    exported = runner.invoke(
        app, ["index", "export", str(tmp_path / "s.elidx"), "--home", str(source), *flags]
    )
    assert exported.exit_code == 0, exported.output
    digest = exported.output.split("sha256 ")[1].split()[0]
    registry.revoke(agency, ROOTS[0], leaf(2), 1)
    imported = runner.invoke(
        app,
        ["index", "import", str(tmp_path / "s.elidx"), "--home", str(replica),
         "--sha256", digest, "--workers", "2", *flags],
    )  # fmt: skip
    assert imported.exit_code == 0, imported.output
    for name in ("index.sqlite", "index-1.sqlite"):
        index = RegistryIndex(replica / name, registry)
        assert index.synced_block == registry.chain.block_number()
        assert index.status_of(ROOTS[0], leaf(2)).status is LeafStatus.REVOKED


@pytest.mark.anvil
def test_cli_import_of_another_registrys_snapshot_exits_2_with_one_line(tmp_path, anvil_url):
    first, _ = anvil_home(tmp_path, anvil_url, "cli-first")
    second, _ = anvil_home(tmp_path, anvil_url, "cli-second")
    RegistryIndex(tmp_path / "a" / "index.sqlite", first).sync()
    export_snapshot(tmp_path / "a" / "index.sqlite", tmp_path / "a.elidx")
    result = CliRunner().invoke(
        app,
        ["index", "import", str(tmp_path / "a.elidx"), "--home", str(tmp_path / "b"),
         "--chain", anvil_url, "--registry", second.address],
    )  # fmt: skip
    assert result.exit_code == 2
    assert "the snapshot is of registry" in result.output
    assert "Traceback" not in result.output
    assert not (tmp_path / "b" / "index.sqlite").exists()
