"""A PostgreSQL outage costs requests a quick 503, never a stalled worker.

The database is a real server of this module's own (tests/postgres.py), made to fail as
production ones do: stopped (connections refused), hung (every one of its processes
paused with SIGSTOP, so that connections open but nothing answers), or holding a lock a
request needs. While it fails, keyed requests are answered at once with 503
could-not-audit and a Retry-After (the key cannot be checked); anonymous ones are
answered, their audit records kept in the replica's spool and moved into the database
once it is back; nothing it had stored is lost; the service recovers by itself.

No wall-clock limits: a request that "hangs" is one still unanswered after HANG_S, far
beyond any of the store's timeouts.
"""

from __future__ import annotations

import os
import shutil
import signal
import tempfile
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.postgres import PostgresServer, start_server
from tests.samples import business_licence
from tests.service.conftest import Service, make_service
from verifier.service.errors import StoreUnavailable
from verifier.service.stores import open_stores
from verifier.service.stores.postgres import KEY_RECHECK_S, MIGRATION_LOCK, PostgresStore

PROBLEM = "application/problem+json"
COULD_NOT_AUDIT = "https://elicence.example/problems/could-not-audit"
HANG_S = 30.0  # a client's timeout: an answer later than this is a stalled worker
LOCK_TIMEOUT_S = 1.0  # the lock_timeout every connection carries


@pytest.fixture(scope="module")
def server() -> Iterator[PostgresServer]:
    """A server of this module's own: stopping or pausing it touches no other test."""
    base = Path(tempfile.mkdtemp(prefix="elicence-pg-outage-"))
    try:
        started = start_server(base)
        try:
            yield started
        finally:
            resume(started)
            started.stop()
    finally:
        shutil.rmtree(base, ignore_errors=True)


def server_pids(server: PostgresServer) -> list[int]:
    """The postmaster and every process it started (backends, checkpointer, ...)."""
    pid_file = server.folder / "data" / "postmaster.pid"
    if not pid_file.exists():
        return []
    postmaster = int(pid_file.read_text().split()[0])
    children = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # The fields after the command's closing parenthesis: state, ppid, ...
        if int(stat.rpartition(")")[2].split()[1]) == postmaster:
            children.append(int(entry.name))
    return [postmaster, *children]


def pause(server: PostgresServer) -> None:
    for pid in server_pids(server):
        os.kill(pid, signal.SIGSTOP)


def resume(server: PostgresServer) -> None:
    for pid in server_pids(server):
        with suppress(ProcessLookupError):
            os.kill(pid, signal.SIGCONT)


@contextmanager
def hung(server: PostgresServer) -> Iterator[None]:
    pause(server)
    try:
        yield
    finally:
        resume(server)


@contextmanager
def stopped(server: PostgresServer) -> Iterator[None]:
    server.stop()
    try:
        yield
    finally:
        server.start()


def answered(call: Callable[[], Any], count: int = 1) -> list[Any]:
    """`count` calls of `call`, in threads of their own; their answers (or the error
    raised), failing the test if any is still unanswered after HANG_S."""
    results: list[Any] = [None] * count

    def run(i: int) -> None:
        try:
            results[i] = call()
        except Exception as exc:
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i,), daemon=True) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(HANG_S)
    assert not any(t.is_alive() for t in threads), f"a call was still waiting after {HANG_S} s"
    return results


def eventually(check: Callable[[], bool], tries: int = 300) -> bool:
    """Whether `check` holds within `tries` tries a tenth of a second apart."""
    for _ in range(tries):
        if check():
            return True
        threading.Event().wait(0.1)
    return False


@pytest.fixture
def service(server, tmp_path, registry, agency_key) -> Iterator[tuple[Service, str, Any]]:
    """The service in process on a fresh database of the module's server, a key of
    its own, and a licence anchored to verify."""
    url = server.create_database()
    made = make_service(tmp_path, registry, agency_key, database=url)
    stores = open_stores(made.settings)
    try:
        _, key = stores.keys.create("outage-approvals", rate=1000.0)
    finally:
        stores.close()
    document = made.issue([business_licence(0)]).documents[0]
    with made.client:
        yield made, key, document


def audited(url: str) -> list[str]:
    with psycopg.connect(url) as conn:
        return [str(r[0]) for r in conn.execute("SELECT purpose FROM audit ORDER BY id")]


def assert_could_not_audit(answer: Any) -> None:
    assert not isinstance(answer, Exception), answer
    assert answer.status_code == 503, answer.text
    assert answer.headers["content-type"].startswith(PROBLEM)
    assert answer.json()["type"] == COULD_NOT_AUDIT
    assert int(answer.headers["Retry-After"]) >= 1


def test_keyed_requests_get_503_rather_than_wait_while_the_database_hangs(server, service):
    made, key, document = service
    url = made.settings.database_url()
    assert made.verify(document, key=key, purpose="before").status_code == 200
    threading.Event().wait(KEY_RECHECK_S)  # the next request must ask the database
    with hung(server):
        answers = answered(lambda: made.verify(document, key=key, purpose="during"), count=4)
        for answer in answers:
            assert_could_not_audit(answer)
        # Later requests too: none waits for the database it knows is away.
        assert_could_not_audit(answered(lambda: made.verify(document, key=key))[0])
    # Back by itself: no restart, no operator.
    assert eventually(lambda: made.verify(document, key=key, purpose="after").status_code == 200)
    assert url is not None
    assert eventually(lambda: "after" in audited(url))
    purposes = audited(url)
    assert purposes[0] == "before" and "during" not in purposes


def test_anonymous_answers_go_on_while_the_database_hangs_and_their_records_follow(server, service):
    made, _, document = service
    url = made.settings.database_url()
    assert url is not None
    assert made.verify(document, purpose="kept").status_code == 200  # anonymous: no key
    with hung(server):
        answers = answered(lambda: made.verify(document, purpose="spooled"), count=4)
        for answer in answers:
            assert not isinstance(answer, Exception), answer
            assert answer.status_code == 200, answer.text
    assert eventually(lambda: audited(url).count("spooled") == 4)
    purposes = audited(url)
    assert purposes[0] == "kept" and len(purposes) == 5
    assert not (made.settings.service_dir / "audit-dead-letter.jsonl").exists()


def test_keyed_requests_get_503_while_the_database_is_stopped_and_recover_after(server, service):
    made, key, document = service
    url = made.settings.database_url()
    assert url is not None
    assert made.verify(document, key=key, purpose="before").status_code == 200
    threading.Event().wait(KEY_RECHECK_S)
    with stopped(server):
        for answer in answered(lambda: made.verify(document, key=key), count=4):
            assert_could_not_audit(answer)
        for answer in answered(lambda: made.verify(document, purpose="stopped"), count=2):
            assert not isinstance(answer, Exception), answer
            assert answer.status_code == 200, answer.text
    # The pool's connections died with the server: new ones are made without help.
    assert eventually(lambda: made.verify(document, key=key, purpose="after").status_code == 200)
    assert eventually(lambda: "after" in audited(url))
    purposes = audited(url)
    assert purposes[0] == "before" and purposes.count("stopped") == 2


def test_a_lock_held_elsewhere_costs_a_503_not_a_wait(server, tmp_path):
    url = server.create_database()
    store = PostgresStore.open(url, tmp_path / "service")
    try:
        limiter = store.limiter()
        assert limiter.take("key:locked", 100.0, 100.0) == 0.0
        with psycopg.connect(url) as other:
            # Another session (a stuck migration, an operator's query) holds the bucket.
            other.execute("SELECT * FROM rate_buckets WHERE client = 'key:locked' FOR UPDATE")
            fresh = store.limiter()  # no lease yet: it must ask the database
            [result] = answered(lambda: fresh.take("key:locked", 100.0, 100.0))
            assert isinstance(result, StoreUnavailable), result
            other.rollback()
        assert eventually(lambda: _take_ok(store))
    finally:
        store.close()


def _take_ok(store: PostgresStore) -> bool:
    try:
        return store.limiter().take("key:locked", 100.0, 100.0) == 0.0
    except StoreUnavailable:
        return False


def test_every_connection_carries_the_statement_and_lock_timeouts(server, tmp_path):
    store = PostgresStore.open(server.create_database(), tmp_path / "service")
    try:
        with store.connection() as conn:
            settings = {
                name: conn.execute(f"SHOW {name}").fetchone()[0]  # type: ignore[index]
                for name in (
                    "statement_timeout",
                    "lock_timeout",
                    "idle_in_transaction_session_timeout",
                )
            }
        assert all(value not in {"0", "0ms"} for value in settings.values()), settings
    finally:
        store.close()


def test_an_operator_can_set_the_timeouts_in_the_database_url(server, tmp_path):
    url = server.create_database() + "?options=-c%20statement_timeout%3D7s&connect_timeout=3"
    store = PostgresStore.open(url, tmp_path / "service")
    try:
        with store.connection() as conn:
            row = conn.execute("SHOW statement_timeout").fetchone()
            assert row is not None and row[0] == "7s"
            assert conn.info.get_parameters().get("connect_timeout") == "3"
    finally:
        store.close()


def test_a_replica_starting_during_a_long_migration_waits_for_it_rather_than_failing(
    server, tmp_path
):
    url = server.create_database()
    PostgresStore.open(url, tmp_path / "first").close()
    with psycopg.connect(url) as migrating:
        # Another replica's migration, running longer than the lock timeout.
        migrating.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
        opened: list[Any] = []
        starting = threading.Thread(
            target=lambda: opened.append(_open_or_error(url, tmp_path / "second")), daemon=True
        )
        starting.start()
        starting.join(2 * LOCK_TIMEOUT_S)
        assert starting.is_alive(), opened  # still waiting for the lock, not refused
        migrating.rollback()
    starting.join(HANG_S)
    assert opened and isinstance(opened[0], PostgresStore), opened
    opened[0].close()


def _open_or_error(url: str, service_dir: Path) -> PostgresStore | Exception:
    try:
        return PostgresStore.open(url, service_dir)
    except Exception as exc:
        return exc
