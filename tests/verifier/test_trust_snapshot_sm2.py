"""The governor's SM2 co-signature of a trust snapshot, the agencies' seal keys in it, and
its compact loading: a verifier that pins the governor's SM2 key refuses a snapshot
whose co-signature is missing, altered or by another key, even one re-signed with the
governor's chain key; loading gives the look-ups the full dict gave."""

from __future__ import annotations

import gzip
import json
import sqlite3

import orjson
import pytest

from ledger.index import RegistryIndex
from licence import seal
from licence.reasons import Reason
from tests.samples import business_licence
from verifier import trust_snapshot as ts
from verifier.trust_snapshot import SnapshotRefused, export_snapshot, load_snapshot

GOVERNOR_SEAL = seal.new_private_key()
GOVERNOR_SEAL_PUBLIC = seal.public_key(GOVERNOR_SEAL)
OTHER_SEAL = seal.new_private_key()


def _sync(world, path):
    index = RegistryIndex(path, world.registry)
    index.sync()
    index.close()


@pytest.fixture
def signed(world, tmp_path):
    """A snapshot of one revoked licence, co-signed with the governor's SM2 key."""
    batch = world.issue([business_licence(0), business_licence(1)])
    world.registry.revoke(world.agency, batch.root, batch.documents[1].licence_id, Reason.FRAUD)
    _sync(world, tmp_path / "index.sqlite")
    path = tmp_path / "trust.snapshot"
    export_snapshot(
        tmp_path / "index.sqlite", world.registry, world.governor, path, seal_key=GOVERNOR_SEAL
    )
    return path


def _load(path, world, **overrides):
    options = {
        "governors": [world.governor.address],
        "registry": world.registry.address,
        "chain_id": world.chain.chain_id,
        "governor_seal_key": GOVERNOR_SEAL_PUBLIC,
        **overrides,
    }
    return load_snapshot(path, **options)


def _document(path):
    return orjson.loads(gzip.decompress(path.read_bytes()))


def _save(path, document):
    path.write_bytes(gzip.compress(orjson.dumps(document)))


def _resign_chain_key(document, governor):
    """What a thief of the governor's chain key (not of its SM2 key) can do."""
    body = document["body"]
    signed = ts.sign_body(body, ts.body_digest(body), governor, None)
    document["signatures"]["governor"] = signed["governor"]


def test_snapshot_co_signed_by_the_pinned_sm2_key_loads(world, signed):
    snapshot = _load(signed, world)
    assert snapshot.counts()["statuses"] == 1
    sm2 = _document(signed)["signatures"]["sm2"]
    assert sm2["publicKey"] == GOVERNOR_SEAL_PUBLIC.hex()
    assert len(sm2["signature"]) == 128


def test_body_altered_and_re_signed_with_the_chain_key_is_refused(world, signed):
    document = _document(signed)
    document["body"]["statuses"] = []  # hide the revocation
    _resign_chain_key(document, world.governor)
    _save(signed, document)
    load_snapshot(signed, governors=[world.governor.address])  # the chain key alone passes
    with pytest.raises(SnapshotRefused, match="SM2 co-signature does not match") as refused:
        _load(signed, world)
    assert refused.value.code == "signature"


@pytest.mark.parametrize("position", [0, 31, 64, 100, 127])
def test_altered_sm2_signature_is_refused(world, signed, position):
    document = _document(signed)
    text = document["signatures"]["sm2"]["signature"]
    flipped = "1" if text[position] == "0" else "0"
    document["signatures"]["sm2"]["signature"] = text[:position] + flipped + text[position + 1 :]
    _save(signed, document)
    with pytest.raises(SnapshotRefused) as refused:
        _load(signed, world)
    assert refused.value.code == "signature"


def test_sm2_co_signature_by_another_key_is_refused(world, signed):
    document = _document(signed)
    body = document["body"]
    document["signatures"] = ts.sign_body(body, ts.body_digest(body), world.governor, OTHER_SEAL)
    _save(signed, document)
    with pytest.raises(SnapshotRefused, match="not by the governor's SM2 key you pin"):
        _load(signed, world)


def test_sm2_co_signature_by_another_key_naming_the_pinned_key_is_refused(world, signed):
    document = _document(signed)
    body = document["body"]
    document["signatures"] = ts.sign_body(body, ts.body_digest(body), world.governor, OTHER_SEAL)
    document["signatures"]["sm2"]["publicKey"] = GOVERNOR_SEAL_PUBLIC.hex()
    _save(signed, document)
    with pytest.raises(SnapshotRefused, match="SM2 co-signature does not match"):
        _load(signed, world)


def test_snapshot_without_sm2_is_refused_when_a_key_is_pinned(world, signed):
    document = _document(signed)
    document["signatures"]["sm2"] = None
    _save(signed, document)
    with pytest.raises(SnapshotRefused, match="no SM2 co-signature") as refused:
        _load(signed, world)
    assert refused.value.code == "unsigned"
    # A verifier that pins no SM2 key does not read it.
    assert _load(signed, world, governor_seal_key=None).counts()["statuses"] == 1


def test_refusals_name_their_kind(world, signed, outsider):
    with pytest.raises(SnapshotRefused) as other:
        _load(signed, world, registry=outsider.address)
    assert other.value.code == "other-registry"
    signed.write_bytes(b"not gzip")
    with pytest.raises(SnapshotRefused) as damaged:
        _load(signed, world)
    assert damaged.value.code == "format"


def test_pinned_seal_key_comes_from_flag_then_environment_then_home(tmp_path, monkeypatch):
    monkeypatch.delenv(ts.SEAL_KEY_VARIABLE, raising=False)
    other = seal.public_key(OTHER_SEAL)
    assert ts.pinned_seal_key(tmp_path) is None
    (tmp_path / "config.json").write_text(json.dumps({"governorSealKey": other.hex()}))
    assert ts.pinned_seal_key(tmp_path) == other
    monkeypatch.setenv(ts.SEAL_KEY_VARIABLE, "0x" + GOVERNOR_SEAL_PUBLIC.hex())
    assert ts.pinned_seal_key(tmp_path) == GOVERNOR_SEAL_PUBLIC
    assert ts.pinned_seal_key(tmp_path, other.hex()) == other
    with pytest.raises(SnapshotRefused, match="--governor-seal-key"):
        ts.pinned_seal_key(tmp_path, "04" * 64)


def _add_seal_keys(index_path, rows):
    """The seal_keys table as ledger.index keeps it (docs pinned in seal-contract.md),
    created here if this index predates it."""
    db = sqlite3.connect(index_path)
    db.execute(
        "CREATE TABLE IF NOT EXISTS seal_keys (agency_id INTEGER, number INTEGER, "
        "public_key BLOB, valid_from INTEGER, compromised_from INTEGER NULL, "
        "PRIMARY KEY (agency_id, number))"
    )
    db.executemany("INSERT OR REPLACE INTO seal_keys VALUES (?, ?, ?, ?, ?)", rows)
    db.commit()
    db.close()


def test_seal_keys_are_in_the_snapshot_with_their_validity(world, tmp_path):
    world.issue([business_licence(0)])
    index_path = tmp_path / "index.sqlite"
    _sync(world, index_path)
    first, second = seal.public_key(GOVERNOR_SEAL), seal.public_key(OTHER_SEAL)
    _add_seal_keys(index_path, [(1, 1, first, 10, None), (1, 2, second, 50, 70)])
    path = tmp_path / "trust.snapshot"
    export_snapshot(index_path, world.registry, world.governor, path, seal_key=GOVERNOR_SEAL)
    snapshot = _load(path, world)
    listed = {a["id"]: a["sealKeys"] for a in _document(path)["body"]["agencies"]}
    assert listed[1] == [
        {"number": 1, "publicKey": first.hex(), "validFrom": 10, "compromisedFromBlock": None},
        {"number": 2, "publicKey": second.hex(), "validFrom": 50, "compromisedFromBlock": 70},
    ]
    assert listed[2] == []
    assert snapshot.seal_key_at(1, 9) is None
    assert snapshot.seal_key_at(1, 10).public_key == first
    assert snapshot.seal_key_at(1, 49).number == 1
    later = snapshot.seal_key_at(1, 50)
    assert (later.number, later.public_key, later.compromised_from) == (2, second, 70)
    assert snapshot.seal_key_at(2, 100) is None
    assert snapshot.seal_key_at(99, 100) is None


def test_snapshot_seal_keys_answer_as_the_registry(world, tmp_path):
    block = world.chain.block_number()
    world.registry.register_seal_key(world.governor, 1, seal.public_key(OTHER_SEAL), block + 2)
    index_path = tmp_path / "index.sqlite"
    _sync(world, index_path)
    db = sqlite3.connect(index_path)
    indexed = db.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'seal_keys'"
    ).fetchone()
    db.close()
    if indexed is None:
        pytest.skip("this ledger.index does not index seal keys yet")
    path = tmp_path / "trust.snapshot"
    export_snapshot(index_path, world.registry, world.governor, path, seal_key=GOVERNOR_SEAL)
    snapshot = _load(path, world)
    for at in (block, block + 1, block + 2, block + 5):
        assert snapshot.seal_key_at(1, at) == world.registry.seal_key_at(1, at), at


def test_streamed_digest_is_the_canonical_jsons(monkeypatch):
    monkeypatch.setattr(ts, "_DIGEST_ROWS", 3)
    body = {
        "z": 1,
        "statuses": [[1, "ab" * 16, 2, 1, 812, None] for _ in range(10)],
        "agencies": [{"name": "机关", "b": [1, 2, 3, 4, 5]}],
        "a": {"y": [], "x": "é"},
    }
    expected = __import__("hashlib").sha256(ts._canonical(body)).hexdigest()
    assert ts.body_digest(body) == expected
    assert b"".join(ts._json_parts(body)) == orjson.dumps(body)


def test_statuses_look_up_as_a_dict_whatever_the_order_of_rows():
    rows = [
        [2, "00" * 16, 2, 1, 30, None],
        [1, "ff" * 16, 3, 2, 31, "11" * 16],
        [1, "00" * 16, 2, 1, 30, None],
        [1, "ff" * 16, 2, 4, 32, None],  # a later row for the same licence wins
    ]
    statuses = ts._Statuses.of(rows)
    assert len(statuses) == 3
    assert statuses.get(1, bytes(16)).changed_at_block == 30
    assert statuses.get(2, bytes(16)).changed_at_block == 30
    assert statuses.get(1, b"\xff" * 16).reason == 4
    assert statuses.get(3, bytes(16)) is None
    assert statuses.get(1, b"\x01" * 16) is None
    assert statuses.get(1, b"short") is None
    # Leaves changed together share one state.
    assert statuses.get(1, bytes(16)) is statuses.get(2, bytes(16))
    ordered = ts._Statuses.of(sorted(rows[:3], key=lambda r: (r[0], r[1])))
    assert ordered.get(1, b"\xff" * 16).successor == b"\x11" * 16


def _sealed_batch(world, rows, private_key):
    """A batch of agency 1 sealed with `private_key` (None: unsealed), anchored."""
    from issuer.batch import wrap_batch
    from licence.catalogue import catalogue

    registry = bytes.fromhex(world.registry.address[2:])
    sealer = None
    if private_key is not None:

        def sealer(root):
            return seal.seal_root(private_key, world.chain.chain_id, registry, root)

    licence_type = catalogue().get("business-licence")
    batch = wrap_batch(
        licence_type,
        rows,
        chain_id=world.chain.chain_id,
        registry=world.registry.address,
        sealer=sealer,
    )
    world.registry.anchor(world.agency, batch.root, licence_type.code, len(rows))
    return batch


def test_seal_checks_from_the_snapshot_equal_the_chains(world, tmp_path):
    from verifier.checks import verify

    agency_seal = seal.new_private_key()
    before = _sealed_batch(world, [business_licence(0)], None)  # before any seal key
    start = world.chain.block_number() + 1
    world.registry.register_seal_key(world.governor, 1, seal.public_key(agency_seal), start)
    sealed = _sealed_batch(world, [business_licence(1)], agency_seal)
    unsealed = _sealed_batch(world, [business_licence(2)], None)
    forged = _sealed_batch(world, [business_licence(3)], OTHER_SEAL)
    late = _sealed_batch(world, [business_licence(4)], agency_seal)
    block = world.registry.anchor_of(late.root).block_number
    world.registry.mark_seal_key_compromised(world.governor, 1, 1, block)
    _sync(world, tmp_path / "index.sqlite")
    path = tmp_path / "trust.snapshot"
    export_snapshot(
        tmp_path / "index.sqlite", world.registry, world.governor, path, seal_key=GOVERNOR_SEAL
    )
    snapshot = _load(path, world)
    expected = {
        "seal.not-required": before,
        "seal.ok": sealed,
        "seal.missing": unsealed,
        "seal.mismatch": forged,
        "seal.key-compromised": late,
    }
    for code, batch in expected.items():
        on_chain = verify(batch.documents[0], world.source).to_json()
        offline = verify(batch.documents[0], snapshot).to_json()
        on_chain.pop("checkedAt")
        offline.pop("checkedAt")
        assert offline == on_chain, code
        reasons = [c["code"] for c in offline["checks"] if c["name"] == "seal"]
        assert reasons == [code], (code, offline["checks"])
