"""Many replicas, one service: three real `elicence serve` processes on different ports,
each with its own home and index, sharing one PostgreSQL database (tests/postgres.py)
and one chain (a real embedded node), with a client spreading requests over them."""

from __future__ import annotations

import itertools
import json
import signal
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest

from licence.payload import encode_payload
from licence.presentation import present
from tests.conftest import run_elicence
from tests.service.conftest import ServiceProcess, issued_on_node

pytestmark = pytest.mark.slow

REPLICAS = 3
REVOCATION_WINDOW_S = 1.0


@dataclass
class Cluster:
    replicas: list[ServiceProcess]
    database: str
    documents: tuple
    cli_home: str

    def elicence(self, *args: str):
        done = run_elicence(*args, "--home", self.cli_home, "--database", self.database)
        assert done.returncode == 0, done.stderr
        return done

    def new_key(self, name: str, *options: str) -> str:
        return self.elicence("apikey", "create", "--name", name, *options).stdout.strip()

    def audit(self) -> list[dict]:
        done = self.elicence("audit", "--format", "jsonl")
        return [json.loads(line) for line in done.stdout.splitlines()]

    def audited(self, purposes: set[str]) -> list[dict]:
        """The log once it holds every one of `purposes`: each replica moves its spool
        into the database within moments (verifier.service.spool)."""
        deadline = time.monotonic() + 30
        while True:
            records = self.audit()
            if purposes <= {r["purpose"] for r in records} or time.monotonic() > deadline:
                return records
            time.sleep(0.1)


@pytest.fixture(scope="module")
def cluster(embedded_node_url, postgres_server, tmp_path_factory) -> Iterator[Cluster]:
    work = tmp_path_factory.mktemp("replicas")
    registry, _, batch = issued_on_node(embedded_node_url, work / "licences", "replicas", 4)
    # A password the server does not ask for (it trusts loopback): it must never show.
    database = postgres_server.create_database().replace(
        "postgresql://elicence@", "postgresql://elicence:s3cret-pw@"
    )
    replicas = [
        ServiceProcess(
            work / f"replica-{i}",
            embedded_node_url,
            registry.address,
            "--database",
            database,
        )
        for i in range(REPLICAS)
    ]
    try:
        for replica in replicas:
            replica.start()
        yield Cluster(replicas, database, batch.documents, str(work / "operator"))
    finally:
        for replica in replicas:
            if replica.process is not None:
                replica.process.kill()
                replica.process.wait(timeout=30)
    for replica in replicas:
        assert "s3cret-pw" not in replica.log.read_text(errors="replace")


def verify(url: str, document, key: str | None = None, purpose: str | None = None):
    body: dict[str, object] = {"qr": encode_payload(present(document, []))}
    if purpose is not None:
        body["purpose"] = purpose
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return httpx.post(f"{url}/v1/verifications", json=body, headers=headers, timeout=30)


def test_a_key_created_once_works_on_every_replica_and_its_revocation_reaches_all(cluster):
    key = cluster.new_key("gz-approvals")
    document = cluster.documents[0]
    for replica in cluster.replicas:
        answer = verify(replica.url, document, key)
        assert answer.status_code == 200, answer.text
    cluster.elicence("apikey", "revoke", "gz-approvals")
    revoked_at = time.monotonic()
    accepted_late: list[tuple[int, float]] = []
    first_refusal: dict[int, float] = {}
    # Every replica is asked until it refuses the key, and once more after the window.
    while len(first_refusal) < REPLICAS or time.monotonic() - revoked_at < REVOCATION_WINDOW_S:
        assert time.monotonic() - revoked_at < 30, f"still accepted: {first_refusal}"
        for number, replica in enumerate(cluster.replicas):
            sent = time.monotonic() - revoked_at
            status = verify(replica.url, document, key).status_code
            if status == 401:
                first_refusal.setdefault(number, sent)
            elif sent >= REVOCATION_WINDOW_S:
                accepted_late.append((number, sent))
        time.sleep(0.02)
    print(f"revocation refused by the replicas after {first_refusal} s")
    assert accepted_late == []


def test_the_holder_log_of_any_replica_shows_every_replicas_records_in_order(cluster):
    document = cluster.documents[1]
    for number, replica in enumerate(cluster.replicas):
        assert verify(replica.url, document, purpose=f"holder-{number}").status_code == 200
    cluster.audited({f"holder-{number}" for number in range(REPLICAS)})
    answer = httpx.post(
        f"{cluster.replicas[-1].url}/v1/holder/verifications",
        json={"qr": encode_payload(document)},
        timeout=30,
    )
    assert answer.status_code == 200, answer.text
    rows = answer.json()["verifications"]
    assert [(r["purpose"], r["operation"]) for r in rows] == [
        ("holder-0", "verify"),
        ("holder-1", "verify"),
        ("holder-2", "verify"),
        (None, "holder-log"),
    ]


def test_a_keys_rate_is_enforced_across_the_replicas(cluster):
    rate, seconds = 20.0, 10.0
    key = cluster.new_key("sz-approvals", "--rate", f"{rate:g}")
    burst = rate  # a key with its own rate may use a second of it at once (access.Gate)
    document = cluster.documents[2]
    sent: list[tuple[float, int]] = []
    lock = threading.Lock()
    start = time.monotonic()

    def client(offset: int) -> None:
        with httpx.Client(timeout=30) as session:
            body = {"qr": encode_payload(present(document, []))}
            for n in itertools.count(offset):
                moment = time.monotonic()
                if moment - start >= seconds:
                    return
                replica = cluster.replicas[n % REPLICAS]
                status = session.post(
                    f"{replica.url}/v1/verifications",
                    json=body,
                    headers={"Authorization": f"Bearer {key}"},
                ).status_code
                with lock:
                    sent.append((moment, status))

    threads = [threading.Thread(target=client, args=(i,)) for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    statuses = Counter(status for _, status in sent)
    assert set(statuses) <= {200, 429}, statuses
    elapsed = max(m for m, _ in sent) - min(m for m, _ in sent)
    # The client asked for far more than the key's rate, spread over every replica.
    assert len(sent) > 2 * (burst + rate * elapsed), statuses
    expected = burst + rate * elapsed
    print(f"admitted {statuses[200]} of {len(sent)} in {elapsed:.1f} s; expected {expected:.0f}")
    assert abs(statuses[200] - expected) <= 0.1 * rate * seconds


def test_a_replica_killed_mid_load_loses_no_audit_record_of_an_answered_request(cluster):
    key = cluster.new_key("fs-approvals", "--rate", "100000")
    victim = cluster.replicas[1]
    answered: list[str] = []
    failed: list[str] = []
    lock = threading.Lock()
    killed = threading.Event()
    per_client = 150

    def client(number: int) -> None:
        with httpx.Client(timeout=30) as session:
            for n in range(per_client):
                purpose = f"kill-{number}-{n}"
                replica = cluster.replicas[(number + n) % REPLICAS]
                try:
                    answer = session.post(
                        f"{replica.url}/v1/verifications",
                        json={
                            "qr": encode_payload(present(cluster.documents[n % 4], [])),
                            "purpose": purpose,
                        },
                        headers={"Authorization": f"Bearer {key}"},
                    )
                except httpx.HTTPError:
                    with lock:
                        failed.append(purpose)
                    continue
                with lock:
                    (answered if answer.status_code == 200 else failed).append(purpose)
                    if len(answered) == per_client and not killed.is_set():
                        killed.set()
                        assert victim.process is not None
                        victim.process.send_signal(signal.SIGKILL)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert killed.is_set() and victim.process is not None
    assert victim.process.wait(timeout=30) == -signal.SIGKILL
    assert failed, "the killed replica answered nothing after its death"
    # Its last records wait in its spool until it runs again, as its supervisor (or the
    # operator) starts it again.
    victim.start()
    records = [r for r in cluster.audited(set(answered)) if r["client"] == "fs-approvals"]
    stored = Counter(r["purpose"] for r in records)
    assert [p for p in answered if stored[p] != 1] == []  # none lost, none twice
    assert [p for p, count in stored.items() if count > 1] == []
    # One order for every replica's records: by time, the same as the log's own order.
    times = [r["time"] for r in cluster.audit()]
    assert times == sorted(times)
    # The replicas still standing answer, with the shared key.
    for replica in cluster.replicas:
        if replica is not victim:
            assert verify(replica.url, cluster.documents[0], key).status_code == 200
