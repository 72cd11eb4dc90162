"""`elicence serve --workers 2` as real processes over a real embedded node: both workers
answer, each from its own index; a revocation is seen by whichever worker answers next;
the metrics add up over the workers; a worker that dies is replaced; killing the
supervisor stops every worker."""

from __future__ import annotations

import os
import re
import signal
import socket
import time
from pathlib import Path

import httpx
import pytest

from issuer.status import revoke
from licence.payload import encode_payload
from licence.presentation import present
from licence.reasons import Reason
from tests.service.conftest import ServiceProcess, issued_on_node

WORKERS = 2


@pytest.fixture
def served(node_process, tmp_path):
    """Three licences issued on a real node, and a two-worker service over it."""
    registry, agency, batch = issued_on_node(node_process.url, tmp_path / "licences", "wk", 3)
    service = ServiceProcess(
        tmp_path / "service-home",
        node_process.url,
        registry.address,
        "--workers",
        str(WORKERS),
        # The tests call anonymously, more often than the default per-address rate.
        env={"ELICENCE_ANONYMOUS_RATE": "1000", "ELICENCE_ANONYMOUS_BURST": "1000"},
    )
    service.start()
    try:
        yield service, registry, agency, batch
    finally:
        service.stop()


def verify_on_new_connection(url: str, document) -> httpx.Response:
    # A new connection each time, so that the kernel spreads them over the workers.
    body = {"qr": encode_payload(present(document, []))}
    return httpx.post(f"{url}/v1/verifications", json=body, timeout=30)


def worker_pids(supervisor: int) -> set[int]:
    """The supervisor's workers, once all of them have started."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        workers = set()
        for pid in Path(f"/proc/{supervisor}/task/{supervisor}/children").read_text().split():
            try:
                # A child between fork and exec still shows the supervisor's command.
                if b"serve-worker" in Path(f"/proc/{pid}/cmdline").read_bytes():
                    workers.add(int(pid))
            except FileNotFoundError:
                continue
        if len(workers) == WORKERS:
            return workers
        time.sleep(0.1)
    raise AssertionError(f"the supervisor does not have {WORKERS} workers")


def running(pid: int) -> bool:
    """The process exists and has not exited (an orphan's zombie may linger here)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError):
        return False
    return state != "Z"


def counted_verifications(url: str) -> float:
    text = httpx.get(f"{url}/metrics", timeout=30).text
    found = re.search(
        r'^elicence_http_requests_total\{method="POST",route="/v1/verifications",'
        r'status="200"\} (\S+)$',
        text,
        re.MULTILINE,
    )
    return float(found.group(1)) if found else 0.0


def test_both_workers_answer_each_from_its_own_index(served):
    service, _, _, batch = served
    answers = [verify_on_new_connection(service.url, batch.documents[i % 3]) for i in range(40)]
    assert [a.json()["status"] for a in answers] == ["VALID"] * 40
    assert (service.home / "index.sqlite").exists()
    assert (service.home / "index-1.sqlite").exists()
    assert service.process is not None
    assert len(worker_pids(service.process.pid)) == WORKERS
    # Each worker process that counted a request left its own metrics file.
    files = list((service.home / "service" / "metrics").glob("counter_*.db"))
    assert len(files) == WORKERS


def test_a_revocation_is_seen_by_every_worker_at_once(served):
    service, registry, agency, batch = served
    assert verify_on_new_connection(service.url, batch.documents[2]).json()["status"] == "VALID"
    revoke(registry, agency, batch.documents[2], Reason.COURT_ORDER)
    statuses = [
        verify_on_new_connection(service.url, batch.documents[2]).json()["status"]
        for _ in range(20)
    ]
    assert statuses == ["REVOKED"] * 20


def test_metrics_add_up_over_the_workers(served):
    service, _, _, batch = served
    for _ in range(30):
        assert verify_on_new_connection(service.url, batch.documents[0]).status_code == 200
    # Whichever worker answers the scrape, it reports every worker's requests.
    assert {counted_verifications(service.url) for _ in range(10)} == {30.0}


def test_a_worker_that_dies_is_started_again(served):
    service, _, _, batch = served
    assert service.process is not None
    before = worker_pids(service.process.pid)
    os.kill(min(before), signal.SIGKILL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        now = worker_pids(service.process.pid)
        if len(now) == WORKERS and now != before:
            break
        time.sleep(0.2)
    else:
        pytest.fail("the dead worker was not replaced")
    statuses = {
        verify_on_new_connection(service.url, batch.documents[0]).json()["status"]
        for _ in range(20)
    }
    assert statuses == {"VALID"}


def test_killing_the_supervisor_stops_every_worker(served):
    service, _, _, _ = served
    assert service.process is not None
    workers = worker_pids(service.process.pid)
    service.process.kill()
    service.process.wait(timeout=30)
    service.process = None
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and any(map(running, workers)):
        time.sleep(0.1)
    assert not [pid for pid in workers if running(pid)]
    with pytest.raises(OSError), socket.create_connection(("127.0.0.1", service.port), timeout=1):
        pass
