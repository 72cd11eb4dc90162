"""GET /v1/trust-anchor and GET /v1/trust-snapshot over a real `elicence serve`: the page's
offline mode gets the anchor to pin and the governor-signed snapshot, both anonymous,
both kept by the browser (no-cache and an ETag, never no-store), and a snapshot loaded
from the download against the served anchor gives the chain's verdicts."""

from __future__ import annotations

import gzip

import httpx
import orjson
import pytest

from ledger.index import RegistryIndex
from licence import seal
from licence.reasons import Reason
from tests.conftest import key_for
from tests.service.conftest import ServiceProcess, issued_on_node
from verifier.checks import verify
from verifier.trust_snapshot import export_snapshot, load_snapshot
from verifier.verdict import Status

GOVERNOR_SEAL = seal.new_private_key()


def _export(registry, folder, destination):
    index = RegistryIndex(folder / "index.sqlite", registry)
    index.sync()
    index.close()
    export_snapshot(
        folder / "index.sqlite",
        registry,
        key_for("trust-governor"),
        destination,
        seal_key=GOVERNOR_SEAL,
    )


@pytest.fixture
def published(node_process, tmp_path):
    """Two licences (one revoked) on a real node, a snapshot of them, and the service
    publishing it."""
    registry, agency, batch = issued_on_node(node_process.url, tmp_path / "licences", "trust", 2)
    registry.revoke(agency, batch.root, batch.documents[1].licence_id, Reason.FRAUD)
    snapshot = tmp_path / "published" / "trust-2026-12-02.snapshot"
    snapshot.parent.mkdir()
    _export(registry, tmp_path, snapshot)
    env = {
        "ELICENCE_TRUST_SNAPSHOT": str(snapshot),
        "ELICENCE_GOVERNOR": key_for("trust-governor").address.lower(),
        "ELICENCE_GOVERNOR_SEAL_KEY": seal.public_key(GOVERNOR_SEAL).hex(),
    }
    service = ServiceProcess(tmp_path / "home", node_process.url, registry.address, env=env)
    service.start()
    try:
        yield service, registry, batch, snapshot
    finally:
        service.stop()


def test_anchor_names_what_the_service_trusts_and_revalidates_by_etag(published):
    service, registry, _, _ = published
    answer = httpx.get(f"{service.url}/v1/trust-anchor", timeout=30)
    assert answer.status_code == 200
    assert answer.json() == {
        "chainId": registry.chain.chain_id,
        "registry": registry.address,
        "governor": key_for("trust-governor").address,
        "governorSealKey": seal.public_key(GOVERNOR_SEAL).hex(),
    }
    assert answer.headers["cache-control"] == "no-cache"
    again = httpx.get(
        f"{service.url}/v1/trust-anchor",
        headers={"If-None-Match": answer.headers["etag"]},
        timeout=30,
    )
    assert (again.status_code, again.content) == (304, b"")
    assert again.headers["etag"] == answer.headers["etag"]


def test_downloaded_snapshot_checks_against_the_anchor_and_gives_the_chains_verdicts(
    published, tmp_path
):
    service, _, batch, snapshot = published
    anchor = httpx.get(f"{service.url}/v1/trust-anchor", timeout=30).json()
    answer = httpx.get(f"{service.url}/v1/trust-snapshot", timeout=30)
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "application/gzip"
    assert answer.headers["cache-control"] == "no-cache"
    assert "no-store" not in answer.headers["cache-control"]
    assert answer.content == snapshot.read_bytes()
    downloaded = tmp_path / "downloaded.snapshot"
    downloaded.write_bytes(answer.content)
    loaded = load_snapshot(
        downloaded,
        governors=[anchor["governor"]],
        registry=anchor["registry"],
        chain_id=anchor["chainId"],
        governor_seal_key=bytes.fromhex(anchor["governorSealKey"]),
    )
    assert verify(batch.documents[0], loaded).status is Status.VALID
    assert verify(batch.documents[1], loaded).status is Status.REVOKED


def test_snapshot_revalidates_by_etag_and_a_new_export_changes_it(published, tmp_path):
    service, registry, batch, snapshot = published
    first = httpx.get(f"{service.url}/v1/trust-snapshot", timeout=30)
    tag = first.headers["etag"]
    same = httpx.get(f"{service.url}/v1/trust-snapshot", headers={"If-None-Match": tag}, timeout=30)
    assert (same.status_code, same.content) == (304, b"")
    registry.revoke(
        key_for("trust-agency"), batch.root, batch.documents[0].licence_id, Reason.FRAUD
    )
    _export(registry, tmp_path, snapshot)  # replaced in place, as an operator would
    fresh = httpx.get(
        f"{service.url}/v1/trust-snapshot", headers={"If-None-Match": tag}, timeout=30
    )
    assert fresh.status_code == 200 and fresh.headers["etag"] != tag
    statuses = orjson.loads(gzip.decompress(fresh.content))["body"]["statuses"]
    assert len(statuses) == 2


def test_no_snapshot_configured_is_a_404_problem(service):
    answer = service.client.get("/v1/trust-snapshot")
    assert answer.status_code == 404
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.json()["type"].endswith("/not-found")
    assert "publishes no trust snapshot" in answer.json()["detail"]


def test_anchor_without_a_governor_seal_key_names_none(service):
    answer = service.client.get("/v1/trust-anchor")
    assert answer.status_code == 200
    assert answer.json()["governorSealKey"] is None
    assert answer.json()["registry"] == service.registry.address


def test_a_governor_seal_key_that_is_not_one_is_refused_at_start(tmp_path):
    from pydantic import ValidationError

    from verifier.service.settings import Settings

    with pytest.raises(ValidationError, match="128 hex digits"):
        Settings(home=tmp_path, governor_seal_key="0x12")
    upper = "0x" + seal.public_key(GOVERNOR_SEAL).hex().upper()
    assert Settings(home=tmp_path, governor_seal_key=upper).governor_seal_key == upper[2:].lower()
