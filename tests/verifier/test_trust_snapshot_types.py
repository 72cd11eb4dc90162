"""Trust snapshots carry the registry's licence types: every published version with its
definition, so that a verifier with no chain reads a licence by the definition the
governor published. A definition that does not hash to the hash beside it refuses the
snapshot; one that does but is not the canonical definition of that version is never
used."""

from __future__ import annotations

import gzip
import hashlib
import json
from pathlib import Path
from typing import Any

import orjson
import pytest
from eth_account import Account

from ledger.index import RegistryIndex
from licence.catalogue import catalogue
from licence.catalogue_rules import parse_definition
from licence.document import parse_document
from tests.samples import business_licence, with_remarks
from verifier import trust_snapshot as ts
from verifier.checks import verify
from verifier.errors import TypeUnavailable
from verifier.trust_snapshot import SnapshotRefused, export_snapshot, load_snapshot
from verifier.type_loading import TypeLoader, parse_loading
from verifier.verdict import Status

GOVERNOR = Account.create()
REGISTRY = "0x" + "11" * 20


def _entry(code: int, version: int, text: str, block: int = 3) -> dict[str, Any]:
    return {
        "code": code,
        "version": version,
        "definitionHash": hashlib.sha256(text.encode("utf-8")).hexdigest(),
        "definition": text,
        "blockNumber": block,
    }


def _published(*type_ids: str) -> list[dict[str, Any]]:
    types = [catalogue().get(t) for t in type_ids]
    return [_entry(t.code, t.version, t.definition.decode("utf-8")) for t in types]


def _body(licence_types: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "chainId": 31337,
        "registry": REGISTRY,
        "governor": GOVERNOR.address,
        "blockNumber": 40,
        "blockHash": "0x" + "ab" * 32,
        "blockTime": 1_760_000_000,
        "licenceTypes": licence_types,
        "agencies": [],
        "anchorColumns": ts.ANCHOR_COLUMNS,
        "anchors": [],
        "statusColumns": ts.STATUS_COLUMNS,
        "statuses": [],
        "batchRevocationColumns": ts.BATCH_COLUMNS,
        "batchRevocations": [],
    }


def _signed(path: Path, body: dict[str, Any], fmt: str = ts.FORMAT) -> Path:
    """The body signed by the governor, as an exporter that read it so would sign it."""
    document = {
        "format": fmt,
        "body": body,
        "signatures": ts.sign_body(body, ts.body_digest(body), GOVERNOR, None),
    }
    ts._write_atomically(path, document)
    return path


def _load(path: Path) -> ts.TrustSnapshot:
    return load_snapshot(path, governors=[GOVERNOR.address], registry=REGISTRY, chain_id=31337)


def test_a_snapshot_gives_each_published_definition_by_the_registrys_names(tmp_path):
    path = _signed(tmp_path / "s", _body(_published("business-licence", "marriage-certificate")))
    snapshot = _load(path)
    business = catalogue().get("business-licence")
    published = snapshot.licence_type(business.code, business.version)
    assert published is not None
    assert published.definition_hash == business.definition_hash
    assert snapshot.licence_type_definition(business.code, 1) == business.definition
    assert snapshot.latest_type_version(business.code) == 1
    assert snapshot.licence_type(business.code, 2) is None
    assert snapshot.licence_type_definition(business.code, 2) is None
    assert snapshot.latest_type_version(9999) == 0
    read = {t.id: t for t in snapshot.licence_types()}
    assert set(read) == {"business-licence", "marriage-certificate"}
    assert read["business-licence"] == business
    assert snapshot.unreadable_types() == {}
    # Held as look-ups, not a second time in the header.
    assert "licenceTypes" not in snapshot.body


def test_a_definition_altered_after_signing_refuses_the_snapshot(tmp_path):
    path = _signed(tmp_path / "s", _body(_published("business-licence")))
    document = orjson.loads(gzip.decompress(path.read_bytes()))
    entry = document["body"]["licenceTypes"][0]
    entry["definition"] = entry["definition"].replace("营业执照", "营业许可", 1)
    entry["definitionHash"] = hashlib.sha256(entry["definition"].encode()).hexdigest()
    path.write_bytes(gzip.compress(orjson.dumps(document)))
    with pytest.raises(SnapshotRefused, match="does not match the snapshot's content") as caught:
        _load(path)
    assert caught.value.code == "signature"


def test_a_signed_definition_that_does_not_hash_to_its_hash_refuses_the_snapshot(tmp_path):
    # What a governor signs when the exporter read a damaged index: the signature holds,
    # the definition is not the one the registry recorded.
    entries = _published("business-licence")
    recorded = entries[0]["definitionHash"]
    entries[0]["definition"] = entries[0]["definition"].replace("营业执照", "营业许可", 1)
    path = _signed(tmp_path / "s", _body(entries))
    with pytest.raises(SnapshotRefused) as caught:
        _load(path)
    assert caught.value.code == "definition"
    actual = hashlib.sha256(entries[0]["definition"].encode()).hexdigest()
    message = str(caught.value)
    code = catalogue().get("business-licence").code
    assert f"licence type {code} version 1" in message
    assert recorded in message
    assert actual in message


def test_a_definition_that_is_not_the_canonical_text_is_never_used(tmp_path):
    # It hashes to the hash beside it, but its canonical form (what the registry's hash
    # is of, for any issuer's definition) does not: no licence is read by it.
    business = catalogue().get("business-licence")
    spaced = json.dumps(json.loads(business.definition), ensure_ascii=False, indent=1)
    path = _signed(tmp_path / "s", _body([_entry(business.code, 1, spaced)]))
    snapshot = _load(path)
    assert snapshot.licence_types() == []
    assert "canonical form hashes to" in snapshot.unreadable_types()[(business.code, 1)]


def test_a_definition_listed_under_another_version_is_never_used(tmp_path):
    business = catalogue().get("business-licence")
    text = business.definition.decode("utf-8")
    path = _signed(tmp_path / "s", _body([_entry(business.code, 2, text)]))
    snapshot = _load(path)
    assert snapshot.licence_types() == []
    assert "defines type" in snapshot.unreadable_types()[(business.code, 2)]


def test_a_definition_that_is_no_licence_type_is_never_used(tmp_path):
    path = _signed(tmp_path / "s", _body([_entry(77, 1, '{"id":"x"}')]))
    snapshot = _load(path)
    assert snapshot.licence_types() == []
    assert snapshot.licence_type(77, 1) is not None  # published, yet unreadable here
    assert (77, 1) in snapshot.unreadable_types()


def test_a_snapshot_from_before_types_were_on_chain_is_refused_saying_what_to_do(tmp_path):
    body = _body([])
    body.pop("licenceTypes")
    path = _signed(tmp_path / "s", body, fmt="elicence-trust-snapshot/1")
    with pytest.raises(SnapshotRefused, match="export a new one") as caught:
        _load(path)
    assert caught.value.code == "format"


def test_each_anchor_carries_the_type_version_it_was_anchored_under(tmp_path):
    body = _body(_published("business-licence"))
    root = "ab" * 16
    body["anchors"] = [[root, 1, 1, 10, 12, 1_760_000_000, 1, 2]]
    snapshot = _load(_signed(tmp_path / "s", body))
    anchor = snapshot.anchor_of(bytes.fromhex(root))
    assert anchor is not None
    assert (anchor.licence_type, anchor.type_version) == (1, 2)


def test_an_anchor_without_its_type_version_refuses_the_snapshot(tmp_path):
    body = _body(_published("business-licence"))
    body["anchors"] = [["ab" * 16, 1, 1, 10, 12, 1_760_000_000, 1]]
    with pytest.raises(SnapshotRefused, match="columns") as caught:
        _load(_signed(tmp_path / "s", body))
    assert caught.value.code == "format"


# -- exported from a registry that publishes a second version ---------------------------

BUSINESS_V2 = parse_definition(with_remarks("business-licence"))


@pytest.fixture(autouse=True)
def shipped_catalogue_only():
    """What a test loads into the process's catalogue is gone after it."""
    held = catalogue()
    saved = held._by_key
    yield
    held._install(saved)


@pytest.fixture
def versioned(world, tmp_path):
    """A v1 and a v2 batch of business licences on chain, and a snapshot of them."""
    world.registry.publish_licence_type(world.governor, BUSINESS_V2)
    held = catalogue()
    saved = held._by_key
    held.add(BUSINESS_V2)  # wrapping reads the type from the catalogue
    try:
        v2 = world.wrap([business_licence(i, remarks="二〇二六年换发") for i in range(2)])
    finally:
        held._install(saved)
    world.registry.anchor(
        world.agency, v2.root, BUSINESS_V2.code, len(v2.documents), type_version=2
    )
    v1 = world.issue([business_licence(5)])
    index = RegistryIndex(tmp_path / "index.sqlite", world.registry)
    index.sync()
    index.close()
    path = tmp_path / "trust.snapshot"
    export_snapshot(tmp_path / "index.sqlite", world.registry, world.governor, path)
    snapshot = load_snapshot(path, governors=[world.governor.address])
    return v1, v2, snapshot


def _read(raw: dict[str, Any], snapshot: ts.TrustSnapshot):
    # As `elicence verify --snapshot` reads a licence: a version it lacks from the snapshot.
    return parse_loading(lambda: parse_document(raw), lambda: TypeLoader([snapshot]))


def test_an_exported_snapshot_holds_each_version_each_agencys_types_and_anchor_version(
    world, versioned
):
    v1, v2, snapshot = versioned
    code = BUSINESS_V2.code
    assert snapshot.latest_type_version(code) == 2
    assert snapshot.licence_type_definition(code, 2) == BUSINESS_V2.definition
    shipped = catalogue().by_code(code, 1)
    published = snapshot.licence_type(code, 1)
    assert published is not None and published.definition_hash == shipped.definition_hash
    assert (code, 2) in {(t.code, t.version) for t in snapshot.published_types()}
    for agency_id in (1, 2):
        assert (
            snapshot.agency(agency_id).licence_types
            == world.registry.agency(agency_id).licence_types
        )
    assert snapshot.anchor_of(v2.root).type_version == 2
    assert snapshot.anchor_of(v1.root).type_version == 1


def test_a_licence_of_a_version_only_the_snapshot_holds_verifies_as_on_chain(world, versioned):
    _, v2, snapshot = versioned
    raw = v2.documents[0].to_json()
    assert raw["typeVersion"] == 2
    document = _read(raw, snapshot)
    assert document.licence_type == BUSINESS_V2
    offline = verify(document, snapshot).to_json()
    on_chain = verify(document, world.source).to_json()
    assert offline["status"] == "VALID", offline
    for body in (offline, on_chain):
        body.pop("checkedAt")
    assert offline == on_chain


def test_a_licence_naming_another_version_than_its_batch_is_tampered_offline(world, versioned):
    v1, _, snapshot = versioned
    raw = v1.documents[0].to_json()
    raw["typeVersion"] = 2  # v2 only adds an optional field: the hashes still agree
    document = _read(raw, snapshot)
    verdict = verify(document, snapshot)
    assert verdict.status is Status.TAMPERED
    issuer = next(c for c in verdict.to_json()["checks"] if c["name"] == "issuer")
    assert issuer["code"] == "issuer.other-type-version"
    assert verify(document, world.source).status is Status.TAMPERED


def test_a_licence_of_a_version_the_snapshot_lacks_could_not_be_checked(world, versioned):
    v1, _, snapshot = versioned
    raw = v1.documents[0].to_json()
    raw["typeVersion"] = 3  # never published
    with pytest.raises(TypeUnavailable) as caught:
        _read(raw, snapshot)
    assert caught.value.code == "type.unavailable"
