"""`elicence serve` as a real process (uvicorn on 127.0.0.1) over a real embedded node:
freshness after a revocation, and "could not check" while the chain is down. Each runs
with the service in the node's home (the head read from the node's head page) and in a
home of its own (the head asked for over HTTP)."""

from __future__ import annotations

import re
import signal
import time

import httpx
import pytest

from issuer.status import revoke
from licence.payload import encode_payload
from licence.presentation import present
from licence.reasons import Reason
from tests.service.conftest import ServiceProcess, issued_on_node


@pytest.fixture(params=["node-home", "own-home"])
def home_kind(request):
    """Whether the service runs in the node's home (and reads its head page) or its own."""
    return request.param


@pytest.fixture
def served(home_kind, node_process, tmp_path):
    """Two licences issued on a real node, and the service over it, in the node's home or
    in its own."""
    registry, agency, batch = issued_on_node(node_process.url, tmp_path / "licences", "svc", 2)
    home = node_process.home if home_kind == "node-home" else tmp_path / "service-home"
    service = ServiceProcess(home, node_process.url, registry.address)
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


def head_checks(url):
    text = httpx.get(f"{url}/metrics", timeout=30).text
    return float(re.search(r"^elicence_head_checks_total (\S+)$", text, re.MULTILINE).group(1))


def test_in_the_node_s_home_answers_need_no_question_to_the_node(served, home_kind):
    service, _, _, batch = served
    assert verify(service.url, batch.documents[0]).json()["status"] == "VALID"
    before = head_checks(service.url)
    for _ in range(5):
        assert verify(service.url, batch.documents[0]).json()["status"] == "VALID"
    asked = head_checks(service.url) - before
    assert asked == (0 if home_kind == "node-home" else 5)


def test_a_node_restarted_with_a_new_page_file_is_read_again(served, home_kind, node_process):
    if home_kind != "node-home":
        pytest.skip("only a service in the node's home reads its page")
    service, _, _, batch = served
    node_process.stop()
    (node_process.home / "chain" / "head.page").unlink()  # a new file, as after a restore
    node_process.start()
    # Answered over HTTP meanwhile, then from the new page (looked for every 5 s).
    deadline = time.monotonic() + 30
    while True:
        before = head_checks(service.url)
        assert verify(service.url, batch.documents[0]).json()["status"] == "VALID"
        if head_checks(service.url) == before:
            break
        assert time.monotonic() < deadline, "the new head page was not read in 30 s"
        time.sleep(0.6)  # under the anonymous rate (2/s)


def test_a_killed_node_turns_answers_into_could_not_check_and_back(served, node_process):
    service, _, _, batch = served
    node_process.stop(signal.SIGKILL)  # no code of the node runs: its page goes stale
    deadline = time.monotonic() + 30
    while (answer := verify(service.url, batch.documents[0])).status_code == 200:
        assert answer.json()["status"] == "VALID"  # nothing can change on a dead chain
        assert time.monotonic() < deadline, "answers still given 30 s after the node died"
        time.sleep(0.6)  # under the anonymous rate (2/s)
    assert answer.status_code == 503
    assert answer.json()["type"].endswith("/could-not-check")
    node_process.start()
    assert verify(service.url, batch.documents[0]).json()["status"] == "VALID"


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
