"""`elicence serve --workers 2` when workers die: the supervisor starts them again, later
and later, and the service keeps answering with the workers that live; it never gives
up, and says each time why a worker stopped."""

from __future__ import annotations

import os
import signal
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from licence.payload import encode_payload
from licence.presentation import present
from tests.service.conftest import ServiceProcess, issued_on_node

pytestmark = pytest.mark.slow

WORKERS = 2
# The supervisor used to exit after this many stops right after a start.
OLD_LIMIT = 3 * WORKERS


@pytest.fixture
def licence(embedded_node_url, tmp_path) -> tuple[str, str]:
    """A registry on the shared node and the QR text of a licence it holds."""
    registry, _, batch = issued_on_node(embedded_node_url, tmp_path / "licences", "sup", 1)
    return registry.address, encode_payload(present(batch.documents[0], []))


def two_workers(home: Path, chain_url: str, registry: str) -> ServiceProcess:
    return ServiceProcess(
        home,
        chain_url,
        registry,
        "--workers",
        str(WORKERS),
        env={"ELICENCE_ANONYMOUS_RATE": "1000", "ELICENCE_ANONYMOUS_BURST": "1000"},
    )


@pytest.fixture
def served(embedded_node_url, licence, tmp_path) -> Iterator[tuple[ServiceProcess, str]]:
    registry, qr = licence
    service = two_workers(tmp_path / "service-home", embedded_node_url, registry).start()
    try:
        yield service, qr
    finally:
        service.stop()


def workers_of(supervisor: int, besides: set[int]) -> set[int]:
    """The supervisor's worker processes other than `besides`, once there are WORKERS."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        found = set()
        for pid in Path(f"/proc/{supervisor}/task/{supervisor}/children").read_text().split():
            try:
                # A child between fork and exec still shows the supervisor's command, and
                # a dead one (a zombie) shows none.
                if b"serve-worker" in Path(f"/proc/{pid}/cmdline").read_bytes():
                    found.add(int(pid))
            except FileNotFoundError:
                continue
        found -= besides
        if len(found) == WORKERS:
            return found
        time.sleep(0.05)
    raise AssertionError(f"the supervisor did not start {WORKERS} new workers")


def verify_once_listening(url: str, port: int, qr: str) -> str:
    """The verdict, once a worker listens again (while none does, connecting is refused)."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                break
        except OSError:
            time.sleep(0.1)
    answer = httpx.post(f"{url}/v1/verifications", json={"qr": qr}, timeout=60)
    assert answer.status_code == 200, answer.text
    return str(answer.json()["status"])


def test_service_answers_after_more_early_worker_deaths_than_the_old_limit(served):
    service, qr = served
    assert service.process is not None
    killed: set[int] = set()
    while len(killed) <= OLD_LIMIT:
        # Killed as soon as they exist: each death comes right after its start.
        for pid in workers_of(service.process.pid, killed):
            os.kill(pid, signal.SIGKILL)
            killed.add(pid)
    assert len(killed) > OLD_LIMIT
    assert verify_once_listening(service.url, service.port, qr) == "VALID"
    statuses = {
        httpx.post(f"{service.url}/v1/verifications", json={"qr": qr}, timeout=60).json()["status"]
        for _ in range(20)
    }
    assert statuses == {"VALID"}
    assert service.process.poll() is None
    log = service.log.read_text()
    assert log.count("(killed by SIGKILL)") >= len(killed)
    assert "times in a row" in log and "starting it again in" in log


def test_a_worker_broken_at_start_is_reported_each_time_while_the_other_serves(
    embedded_node_url, licence, tmp_path
):
    registry, qr = licence
    home = tmp_path / "service-home"
    # Worker 1's index cannot be opened: that worker stops at every start.
    (home / "index-1.sqlite").mkdir(parents=True)
    service = two_workers(home, embedded_node_url, registry).start()
    try:
        statuses = {
            httpx.post(f"{service.url}/v1/verifications", json={"qr": qr}, timeout=60).json()[
                "status"
            ]
            for _ in range(20)
        }
        assert statuses == {"VALID"}
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and service.log.read_text().count("worker 1 stopped") < 3:
            time.sleep(0.2)
        log = service.log.read_text()
        reports = [line for line in log.splitlines() if "worker 1 stopped (exit code" in line]
        assert len(reports) >= 3, log
        assert all("before it could answer" in line for line in reports), reports
        assert "3 times in a row (a bad setting or a broken home" in log
        assert "worker 0 stopped" not in log
        assert service.process is not None and service.process.poll() is None
    finally:
        service.stop()
