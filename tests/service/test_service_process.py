"""`elicence serve` as a real process (uvicorn on 127.0.0.1) over a real embedded node:
freshness after a revocation, and "could not check" while the chain is down."""

from __future__ import annotations

import httpx
import pytest

from issuer.status import revoke
from licence.payload import encode_payload
from licence.presentation import present
from licence.reasons import Reason
from tests.service.conftest import ServiceProcess, issued_on_node


@pytest.fixture
def served(node_process, tmp_path):
    """Two licences issued on a real node, and the service over it."""
    registry, agency, batch = issued_on_node(node_process.url, tmp_path / "licences", "svc", 2)
    service = ServiceProcess(tmp_path / "service-home", node_process.url, registry.address)
    service.start()
    try:
        yield service, registry, agency, batch
    finally:
        service.stop()


def verify(url, document):
    body = {"qr": encode_payload(present(document, []))}
    return httpx.post(f"{url}/v1/verifications", json=body, timeout=30)


def test_revoked_licence_is_revoked_at_once_over_http(served):
    service, registry, agency, batch = served
    assert verify(service.url, batch.documents[1]).json()["status"] == "VALID"
    revoke(registry, agency, batch.documents[1], Reason.COURT_ORDER)
    assert verify(service.url, batch.documents[1]).json()["status"] == "REVOKED"
    assert verify(service.url, batch.documents[0]).json()["status"] == "VALID"


def test_chain_down_is_could_not_check_and_chain_back_answers_again(served, node_process):
    service, _, _, batch = served
    node_process.stop()
    down = verify(service.url, batch.documents[0])
    assert down.status_code == 503
    assert down.headers["content-type"] == "application/problem+json"
    assert down.json()["type"].endswith("/could-not-check")
    assert down.json()["status"] == 503 and "verdict" not in down.text.lower()
    assert httpx.get(f"{service.url}/readyz", timeout=30).status_code == 503
    assert httpx.get(f"{service.url}/healthz", timeout=30).status_code == 200
    node_process.start()
    back = verify(service.url, batch.documents[0])
    assert back.status_code == 200
    assert back.json()["status"] == "VALID"


def test_attempts_without_a_verdict_are_audited_as_could_not_check(served, node_process):
    service, _, _, batch = served
    node_process.stop()
    verify(service.url, batch.documents[0])
    node_process.start()
    verify(service.url, batch.documents[0])
    from typer.testing import CliRunner

    from cli.app import app

    # An answer leaves only once its audit record is written (docs/api.md): another
    # process sees it at once.
    result = CliRunner().invoke(
        app, ["audit", "--home", str(service.home), "--format", "jsonl"], env={"COLUMNS": "200"}
    )
    assert result.exit_code == 0, result.output
    assert [line.split('"verdict": ')[1].split(",")[0] for line in result.output.splitlines()] == [
        '"COULD_NOT_CHECK"',
        '"VALID"',
    ]
