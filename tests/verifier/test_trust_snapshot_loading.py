"""Loading a trust snapshot a part at a time gives what reading it whole gives: the
same statuses and verdicts whatever the file's JSON layout or the size of the parts,
and an altered file is still refused."""

from __future__ import annotations

import gzip
import json

import orjson
import pytest

from ledger.index import RegistryIndex
from licence.reasons import Reason
from tests.samples import business_licence
from verifier import trust_snapshot as ts
from verifier.checks import verify
from verifier.trust_snapshot import SnapshotRefused, export_snapshot, load_snapshot
from verifier.verdict import Status


@pytest.fixture
def revoked(world, tmp_path):
    """Five licences, three revoked in two blocks, and a snapshot of them."""
    batch = world.issue([business_licence(i) for i in range(5)])
    for i in (1, 2, 4):
        world.registry.revoke(world.agency, batch.root, batch.documents[i].licence_id, Reason.FRAUD)
    index = RegistryIndex(tmp_path / "index.sqlite", world.registry)
    index.sync()
    index.close()
    path = tmp_path / "trust.snapshot"
    export_snapshot(tmp_path / "index.sqlite", world.registry, world.governor, path)
    return batch, path


def _statuses(world, batch, path):
    snapshot = load_snapshot(path, governors=[world.governor.address])
    return [verify(d, snapshot).status for d in batch.documents]


EXPECTED = [Status.VALID, Status.REVOKED, Status.REVOKED, Status.VALID, Status.REVOKED]


def _never_whole(handle):
    raise AssertionError("an exported file is read a part at a time")


@pytest.mark.parametrize(("part_bytes", "read_bytes"), [(1, 7), (40, 100), (1 << 20, 1 << 20)])
def test_any_part_size_gives_the_same_verdicts(world, revoked, monkeypatch, part_bytes, read_bytes):
    batch, path = revoked
    monkeypatch.setattr(ts, "_PART_BYTES", part_bytes)
    monkeypatch.setattr(ts, "_READ_BYTES", read_bytes)
    monkeypatch.setattr(ts, "_parse_whole", _never_whole)
    assert _statuses(world, batch, path) == EXPECTED


def test_a_snapshot_with_no_changed_status_is_read_in_parts(world, tmp_path, monkeypatch):
    batch = world.issue([business_licence(0)])
    index = RegistryIndex(tmp_path / "index.sqlite", world.registry)
    index.sync()
    index.close()
    path = tmp_path / "trust.snapshot"
    export_snapshot(tmp_path / "index.sqlite", world.registry, world.governor, path)
    monkeypatch.setattr(ts, "_READ_BYTES", 5)
    monkeypatch.setattr(ts, "_parse_whole", _never_whole)
    snapshot = load_snapshot(path, governors=[world.governor.address])
    assert snapshot.counts()["statuses"] == 0
    assert verify(batch.documents[0], snapshot).status is Status.VALID


def test_a_file_laid_out_otherwise_is_read_whole(world, revoked):
    batch, path = revoked
    document = orjson.loads(gzip.decompress(path.read_bytes()))
    path.write_bytes(gzip.compress(json.dumps(document, indent=2, ensure_ascii=False).encode()))
    assert _statuses(world, batch, path) == EXPECTED


def test_a_signed_file_that_misleads_the_parts_is_read_whole(world, revoked):
    """A member name ending in the statuses' marker (a member the checks do not read):
    the statuses cannot be told apart in the text; read whole, the file is right."""
    batch, path = revoked
    document = orjson.loads(gzip.decompress(path.read_bytes()))
    body = document["body"]
    body["note"] = {'a"statuses': [[1, "00" * 16, 2, 1, 5, None]]}
    assert orjson.dumps(body).count(b'"statuses":[') == 2
    document["signatures"] = ts.sign_body(body, ts.body_digest(body), world.governor, None)
    path.write_bytes(gzip.compress(orjson.dumps(document)))
    assert _statuses(world, batch, path) == EXPECTED


def test_a_status_changed_in_the_file_is_refused(world, revoked):
    _, path = revoked
    raw = gzip.decompress(path.read_bytes())
    path.write_bytes(gzip.compress(raw.replace(b",2,1,", b",1,1,", 1)))
    with pytest.raises(SnapshotRefused, match="does not match the snapshot's content"):
        load_snapshot(path, governors=[world.governor.address])


def test_loaded_snapshot_keeps_no_table_rows(world, revoked):
    _, path = revoked
    snapshot = load_snapshot(path, governors=[world.governor.address])
    assert not set(ts.TABLES) & set(snapshot.body)
    assert snapshot.counts()["statuses"] == 3


def test_a_file_read_wrongly_in_parts_is_read_again_whole_before_a_refusal(
    world, revoked, monkeypatch
):
    batch, path = revoked
    real = ts._parse_streamed

    def misread(handle):
        document, _, _ = real(handle)
        return document, ts._Statuses.of([]), "00" * 32

    monkeypatch.setattr(ts, "_parse_streamed", misread)
    assert _statuses(world, batch, path) == EXPECTED
