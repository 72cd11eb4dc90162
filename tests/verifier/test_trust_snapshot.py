"""Trust snapshots: the registry's state signed by its governor gives the same verdicts
as the chain, with no chain; an altered or foreign snapshot is refused with a reason."""

from __future__ import annotations

import datetime as dt
import gzip

import orjson
import pytest

from ledger.index import RegistryIndex
from licence.catalogue import catalogue
from licence.document import parse_document
from licence.reasons import Reason
from tests.samples import business_licence
from verifier.checks import verify
from verifier.trust_snapshot import SnapshotRefused, export_snapshot, load_snapshot
from verifier.verdict import Status


def _comparable(verdict):
    body = verdict.to_json()
    body.pop("checkedAt")
    return body


@pytest.fixture
def lives(world):
    """One licence per verdict the snapshot must reproduce, on chain."""
    batch = world.issue(
        [
            business_licence(0),
            business_licence(1),
            business_licence(2),
            business_licence(3, validFrom="2010-01-01", validUntil="2015-12-31"),
        ]
    )
    renewed = world.issue([business_licence(2, registeredCapital="500万元人民币")])
    world.registry.revoke(world.agency, batch.root, batch.documents[1].licence_id, Reason.FRAUD)
    world.registry.supersede(
        world.agency,
        batch.root,
        batch.documents[2].licence_id,
        renewed.documents[0].licence_id,
        Reason.CHANGE_OF_PARTICULARS,
    )
    # Agency 2 anchoring a licence in agency 1's name: ISSUER_NOT_AUTHORISED.
    posing = world.issue([business_licence(4)], by=world.other_agency)
    raw = orjson.loads(batch.documents[0].to_bytes())
    raw["fields"]["holderName"] = "别的公司"
    return {
        Status.VALID: batch.documents[0],
        Status.TAMPERED: parse_document(raw),
        Status.REVOKED: batch.documents[1],
        Status.SUPERSEDED: batch.documents[2],
        Status.EXPIRED: batch.documents[3],
        Status.ISSUER_NOT_AUTHORISED: posing.documents[0],
    }


@pytest.fixture
def snapshot_file(world, lives, tmp_path):
    index = RegistryIndex(tmp_path / "index.sqlite", world.registry)
    index.sync()
    index.close()
    path = tmp_path / "trust.snapshot"
    export_snapshot(tmp_path / "index.sqlite", world.registry, world.governor, path)
    return path


def _load(path, world, **overrides):
    options = {
        "governors": [world.governor.address],
        "registry": world.registry.address,
        "chain_id": world.chain.chain_id,
        **overrides,
    }
    return load_snapshot(path, **options)


@pytest.mark.parametrize(
    "status",
    [
        Status.VALID,
        Status.TAMPERED,
        Status.REVOKED,
        Status.SUPERSEDED,
        Status.EXPIRED,
        Status.ISSUER_NOT_AUTHORISED,
    ],
)
def test_snapshot_gives_the_chains_verdict(world, lives, snapshot_file, status):
    snapshot = _load(snapshot_file, world)
    document = lives[status]
    on_chain = verify(document, world.source)
    offline = verify(document, snapshot)
    assert on_chain.status is status
    assert _comparable(offline) == _comparable(on_chain)


def test_compromised_key_counts_in_the_snapshot(world, lives, tmp_path):
    late = world.issue([business_licence(7)])
    block = world.registry.anchor_of(late.root).block_number
    world.registry.mark_signer_compromised(world.governor, world.agency.address, block)
    index = RegistryIndex(tmp_path / "index.sqlite", world.registry)
    index.sync()
    index.close()
    export_snapshot(tmp_path / "index.sqlite", world.registry, world.governor, tmp_path / "s")
    snapshot = _load(tmp_path / "s", world)
    assert verify(late.documents[0], snapshot).status is Status.ISSUER_NOT_AUTHORISED
    assert verify(lives[Status.VALID], snapshot).status is Status.VALID
    keys = snapshot.body["agencies"][0]["keys"]
    assert keys[0]["compromisedFromBlock"] == block


def test_snapshot_names_its_block_and_every_changed_status(world, lives, snapshot_file):
    snapshot = _load(snapshot_file, world)
    assert snapshot.block_number() == world.chain.block_number()
    codes = {t.code for t in catalogue()}
    published = sum(world.registry.latest_type_version(code) for code in codes)
    assert published > 0
    assert snapshot.counts() == {
        "agencies": 2,
        "anchors": 3,
        "statuses": 2,
        "licenceTypes": published,
    }
    assert snapshot.age() < dt.timedelta(hours=1)


def _rewrite(path, change):
    document = orjson.loads(gzip.decompress(path.read_bytes()))
    change(document)
    path.write_bytes(gzip.compress(orjson.dumps(document)))


def test_snapshot_with_a_status_removed_is_refused(world, snapshot_file):
    _rewrite(snapshot_file, lambda d: d["body"]["statuses"].pop())
    with pytest.raises(SnapshotRefused, match="does not match the snapshot's content"):
        _load(snapshot_file, world)


@pytest.mark.parametrize("position", [4, 10, 40, 70, 100, 130])
def test_snapshot_with_an_altered_signature_is_refused(world, snapshot_file, position):
    def change(document):
        signature = document["signatures"]["governor"]["signature"]
        document["signatures"]["governor"]["signature"] = (
            signature[:position]
            + ("0" if signature[position] != "0" else "1")
            + signature[position + 1 :]
        )

    _rewrite(snapshot_file, change)
    with pytest.raises(SnapshotRefused):
        _load(snapshot_file, world)


def test_snapshot_signed_by_a_key_not_trusted_as_governor_is_refused(
    world, outsider, snapshot_file
):
    with pytest.raises(SnapshotRefused, match="not a governor you trust"):
        _load(snapshot_file, world, governors=[outsider.address])


def test_snapshot_of_another_registry_is_refused(world, outsider, snapshot_file):
    with pytest.raises(SnapshotRefused, match="trusted registry"):
        _load(snapshot_file, world, registry=outsider.address)


def test_damaged_file_is_refused(world, snapshot_file):
    snapshot_file.write_bytes(snapshot_file.read_bytes()[:100])
    with pytest.raises(SnapshotRefused, match="not a trust snapshot"):
        _load(snapshot_file, world)


def test_only_a_governor_can_export(world, lives, outsider, tmp_path):
    index = RegistryIndex(tmp_path / "index.sqlite", world.registry)
    index.sync()
    index.close()
    with pytest.raises(SnapshotRefused, match="not a governor"):
        export_snapshot(tmp_path / "index.sqlite", world.registry, outsider, tmp_path / "s")


def test_snapshot_age_is_measured_from_its_block_time(world, snapshot_file):
    snapshot = _load(snapshot_file, world)
    later = snapshot.block_time + dt.timedelta(days=8)
    assert snapshot.age(later) == dt.timedelta(days=8)
