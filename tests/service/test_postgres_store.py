"""The shared state in a real PostgreSQL server (tests/postgres.py starts one): schema
migrations, a newer schema refused, keys, rate limits and the audit log seen alike by
several replicas, the service and the operator's commands against it, and a database
password that never shows."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import psycopg
import pytest
from typer.testing import CliRunner

from cli.app import app
from tests.samples import business_licence
from tests.service.conftest import make_service, move_all_at_once
from verifier.service.audit import AppendingLog, AuditRecord, now
from verifier.service.errors import (
    ApiKeyExists,
    SchemaTooNew,
    StoreError,
    StoreUnavailable,
    UnknownApiKey,
)
from verifier.service.ratelimit import RateLimiter
from verifier.service.settings import Settings
from verifier.service.spool import SpoolFile, move_spools, spool_folder
from verifier.service.stores import open_stores
from verifier.service.stores.postgres import (
    KEY_RECHECK_S,
    MIGRATIONS,
    SCHEMA_VERSION,
    PostgresKeyStore,
    PostgresStore,
)

ENV = {"COLUMNS": "200", "NO_COLOR": "1"}


def run(*args: str, env: dict[str, str] | None = None):
    return CliRunner().invoke(app, list(args), env={**ENV, **(env or {})})


def with_password(url: str, password: str = "s3cret-pw") -> str:
    """The same database with a password in the URL (the test server trusts loopback,
    so any password logs in: what matters is that it never shows)."""
    return url.replace("postgresql://elicence@", f"postgresql://elicence:{password}@")


@pytest.fixture
def replicas(postgres_url, tmp_path):
    """Two replicas' stores over one database, each with its own home."""
    opened = [PostgresStore.open(postgres_url, tmp_path / f"r{i}" / "service") for i in (0, 1)]
    yield opened
    for store in opened:
        store.close()


def versions(url: str) -> list[int]:
    with psycopg.connect(url) as conn:
        return [r[0] for r in conn.execute("SELECT version FROM schema_version ORDER BY 1")]


def test_a_new_database_gets_every_migration_once(postgres_url, tmp_path):
    for _ in range(2):
        PostgresStore.open(postgres_url, tmp_path).close()
    assert versions(postgres_url) == [m.version for m in MIGRATIONS]
    assert versions(postgres_url)[-1] == SCHEMA_VERSION


def test_replicas_starting_together_migrate_the_database_once(postgres_url, tmp_path):
    errors: list[BaseException] = []

    def start() -> None:
        try:
            PostgresStore.open(postgres_url, tmp_path).close()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=start) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert versions(postgres_url) == [m.version for m in MIGRATIONS]


def test_a_database_newer_than_the_code_is_refused_naming_both_versions(postgres_url, tmp_path):
    PostgresStore.open(postgres_url, tmp_path).close()
    with psycopg.connect(postgres_url) as conn:
        conn.execute(
            "INSERT INTO schema_version (version, description) VALUES (%s, 'from the future')",
            (SCHEMA_VERSION + 1,),
        )
    with pytest.raises(SchemaTooNew) as refused:
        PostgresStore.open(with_password(postgres_url), tmp_path)
    assert (refused.value.found, refused.value.supported) == (SCHEMA_VERSION + 1, SCHEMA_VERSION)
    message = str(refused.value)
    assert f"version {SCHEMA_VERSION + 1}" in message and f"{SCHEMA_VERSION}:" in message
    assert "s3cret-pw" not in message and "***" in message
    # Nothing was changed by the refused process.
    assert versions(postgres_url)[-1] == SCHEMA_VERSION + 1
    # The service and the commands refuse it too, in one line.
    result = run("apikey", "list", "--home", str(tmp_path), "--database", postgres_url)
    assert result.exit_code == 2 and "newer than this elicence" in result.output


def test_an_unreachable_database_is_a_typed_error_without_its_password(postgres_server):
    from tests.postgres import free_port

    url = f"postgresql://elicence:s3cret-pw@127.0.0.1:{free_port()}/nothing"
    with pytest.raises(StoreUnavailable) as failed:
        PostgresStore.open(url, Path("/nonexistent"))
    assert "s3cret-pw" not in str(failed.value) and "127.0.0.1" in str(failed.value)


def test_a_setting_that_is_not_a_postgresql_url_is_refused(tmp_path):
    settings = Settings(home=tmp_path, database="mysql://root:s3cret-pw@db/x")
    with pytest.raises(StoreError) as refused:
        open_stores(settings)
    assert "postgresql://" in str(refused.value) and "s3cret-pw" not in str(refused.value)


def test_a_key_created_on_one_replica_works_on_the_other(replicas):
    one, other = replicas
    _, key = one.keys().create("gz-approvals", types=frozenset({"business-licence"}))
    found = other.keys().authenticate(key)
    assert found is not None and found.name == "gz-approvals"
    assert found.types == frozenset({"business-licence"})
    assert other.keys().authenticate(key + "x") is None
    with pytest.raises(ApiKeyExists):
        other.keys().create("gz-approvals")
    assert [k.name for k in other.keys().list()] == ["gz-approvals"]


def test_a_revocation_on_one_replica_is_refused_by_the_other_after_the_recheck(replicas):
    one, other = replicas
    _, key = one.keys().create("sz-approvals")
    moment = [0.0]
    remembering = PostgresKeyStore(other, owns=False, clock=lambda: moment[0])
    assert remembering.authenticate(key) is not None  # now remembered
    revoked = one.keys().revoke("sz-approvals")
    assert revoked.revoked is not None
    moment[0] += KEY_RECHECK_S
    assert remembering.authenticate(key) is None
    with pytest.raises(UnknownApiKey):
        one.keys().revoke("nobody")


def test_a_key_is_refused_rather_than_answered_when_the_database_is_gone(replicas):
    one, _ = replicas
    _, key = one.keys().create("fs-approvals")
    moment = [0.0]
    keys = PostgresKeyStore(one, owns=False, clock=lambda: moment[0])
    assert keys.authenticate(key) is not None
    one.close()  # as good as a database that went away
    moment[0] += KEY_RECHECK_S
    with pytest.raises(StoreUnavailable):
        keys.authenticate(key)


def test_a_keys_rate_is_shared_by_the_replicas(replicas):
    rate, burst = 5.0, 10.0
    limiters = [store.limiter() for store in replicas]
    admitted = sum(limiters[i % 2].take("key:shared", rate, burst) == 0.0 for i in range(40))
    # One bucket for both: its burst (a token or two may refill meanwhile), where
    # each replica's own bucket would let each of them admit its burst.
    assert burst <= admitted <= burst + 2
    local = [RateLimiter(), RateLimiter()]
    alone = sum(local[i % 2].take("key:shared", rate, burst) == 0.0 for i in range(40))
    assert alone == 2 * burst
    wait = limiters[0].take("key:shared", rate, burst)
    assert 0.0 < wait <= 1.0 / rate + 0.01


def record(client: str, purpose: str | None, licence_id: str = "0xab") -> AuditRecord:
    return AuditRecord(now(), client, purpose, licence_id, "business-licence", "VALID", 7, "verify")


def spooled_and_moved(log: AppendingLog, *records: AuditRecord) -> int:
    """Records as a process of the log's home spools them, then moved into the log; the
    number the log set aside."""
    file = SpoolFile(spool_folder(log.dead_letter_path.parent))
    assert file.record_groups([list(records)]) == [None]
    file.close()
    set_aside: list[int] = []
    move_spools(log, on_set_aside=set_aside.append)
    return sum(set_aside)


def test_every_replicas_audit_records_show_in_one_log_in_order(replicas):
    one, other = replicas
    writes = [
        (one, record("a", "1")),
        (other, record("b", "2")),
        (one, record("c", "3")),
        (other, record("d", "4", "0xcd")),
    ]
    for store, written in writes:
        assert spooled_and_moved(store.audit_log(), written) == 0
    log = other.audit_log()
    assert [r.purpose for r in log.query()] == ["1", "2", "3", "4"]
    assert [r.purpose for r in log.query(licence_id="0xAB")] == ["1", "2", "3"]
    assert [r.purpose for r in log.query(client="b")] == ["2"]
    assert [r.purpose for r in log.query(since=writes[2][1].time)] == ["3", "4"]
    assert [r.purpose for r in log.query(limit=1)] == ["1"]
    assert log.query()[0] == writes[0][1]


def test_a_record_the_database_refuses_is_set_aside_and_the_others_move_in(replicas, tmp_path):
    one, _ = replicas
    log = one.audit_log()
    # PostgreSQL's text cannot hold NUL (the spool can): that record alone is set aside.
    refused = spooled_and_moved(log, record("x", "1"), record("y", "a\x00b"), record("z", "3"))
    assert refused == 1
    assert [r.client for r in log.query()] == ["x", "z"]
    lines = [json.loads(x) for x in log.dead_letter_path.read_text().splitlines()]
    assert [x["record"]["client"] for x in lines] == ["y"]
    assert "DataError" in lines[0]["error"]
    assert log.dead_letter_path.parent == tmp_path / "r0" / "service"


def test_movers_of_several_replicas_racing_move_each_record_once(replicas):
    one, other = replicas
    file = SpoolFile(spool_folder(one.audit_log().dead_letter_path.parent))
    file.record_groups([[record(f"c{i}", str(i)) for i in range(3_000)]])
    file.close()
    # Three movers of one home (its workers, `elicence audit`), each on its own connection.
    move_all_at_once([one.audit_log() for _ in range(3)])
    purposes = [r.purpose for r in other.audit_log().query()]
    assert sorted(purposes, key=int) == [str(i) for i in range(3_000)]


def test_the_service_keeps_keys_and_audit_in_the_database(
    postgres_url, tmp_path, registry, agency_key
):
    made = make_service(tmp_path, registry, agency_key, database=postgres_url)
    with made.client:
        stores = open_stores(made.settings)
        try:
            _, key = stores.keys.create("js-approvals", rate=1000.0)
            batch = made.issue([business_licence(0)])
            answer = made.verify(batch.documents[0], key=key, purpose="case-pg")
            assert answer.status_code == 200, answer.text
            assert answer.json()["status"] == "VALID"
            rows = stores.audit.query(client="js-approvals")
            assert [(r.purpose, r.verdict) for r in rows] == [("case-pg", "VALID")]
            stores.keys.revoke("js-approvals")
        finally:
            stores.close()
        # This process checks the keys' version at most every KEY_RECHECK_S.
        refused = made.verify(batch.documents[0], key=key)
        for _ in range(100):
            if refused.status_code == 401:
                break
            threading.Event().wait(KEY_RECHECK_S / 5)
            refused = made.verify(batch.documents[0], key=key)
        assert refused.status_code == 401
    # Nothing of the shared state went to SQLite files in the home.
    assert not list((made.home / "service").glob("*.sqlite"))


def test_apikey_and_audit_commands_work_against_the_database(
    postgres_url, tmp_path, registry, agency_key
):
    url = with_password(postgres_url)
    home = str(tmp_path / "cli-home")
    created = run("apikey", "create", "--home", home, "--name", "nb-approvals", "--database", url)
    assert created.exit_code == 0, created.output
    key = created.stdout.strip().splitlines()[-1]
    # Through the environment and through the home's config.json as well.
    listed = run("apikey", "list", "--home", home, env={"ELICENCE_DATABASE": url})
    assert "nb-approvals" in listed.output and key not in listed.output
    Path(home).mkdir(exist_ok=True)
    (Path(home) / "config.json").write_text(json.dumps({"database": url}))
    duplicate = run("apikey", "create", "--home", home, "--name", "nb-approvals")
    assert duplicate.exit_code == 2 and "exists already" in duplicate.output
    made = make_service(tmp_path, registry, agency_key, database=postgres_url)
    with made.client:
        batch = made.issue([business_licence(1)])
        assert made.verify(batch.documents[0], key=key, purpose="c-1").status_code == 200
        assert made.verify(batch.documents[0], purpose="c-2").status_code == 200
    exported = run("audit", "--home", home, "--format", "jsonl")
    assert exported.exit_code == 0, exported.output
    rows = [json.loads(line) for line in exported.stdout.splitlines()]
    assert [(r["client"], r["purpose"]) for r in rows] == [
        ("nb-approvals", "c-1"),
        ("anonymous", "c-2"),
    ]
    only = run("audit", "--home", home, "--client", "nb-approvals", "--format", "csv")
    assert only.stdout.count("nb-approvals") == 1
    revoked = run("apikey", "revoke", "nb-approvals", "--home", home)
    assert revoked.exit_code == 0, revoked.output
    assert not list((Path(home) / "service").glob("*.sqlite"))
    unreachable = postgres_url.rsplit(":", 1)[0] + ":1/x"
    for args in (("apikey", "list"), ("audit",)):
        failed = run(*args, "--home", home, "--database", with_password(unreachable))
        assert failed.exit_code == 2 and "cannot use the database" in failed.output
        assert "s3cret-pw" not in failed.output
    for result in (created, listed, duplicate, exported, revoked):
        assert "s3cret-pw" not in result.output
