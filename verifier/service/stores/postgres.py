"""The shared state in PostgreSQL (psycopg 3): one database for every replica.

Schema. Versioned migrations (MIGRATIONS) are applied when a process opens the
database, in one transaction under an advisory lock, so replicas starting together
migrate it once; `schema_version` records each one applied. A database whose version is
above this code's is refused (SchemaTooNew): a newer elicence changed it, and this one
could misread it.

API keys. A process remembers the answers it gave (as the SQLite store does), and before
using them checks the keys' version at most every KEY_RECHECK_S: one row that a trigger
moves in the same transaction as any change to the keys. A revocation committed on any
replica is thus refused by every replica within KEY_RECHECK_S, and a key created on one
is found by the others at once (a key not remembered is looked up). When the database
cannot be reached, the key cannot be checked and the request is refused
(StoreUnavailable, 503), never answered from an answer older than that.

Rate limits of API keys. Each key has one token bucket in the database, refilled from
the database's clock. A process takes a lease of tokens from it (LEASE_S of the key's
rate, at least one) and spends it locally, so that a request costs a round trip only once
per lease; a lease not spent within LEASE_TTL_S is dropped. No process spends a token the
bucket did not give it, so every replica together admits at most the bucket's burst plus
its rate; dropped leases can only admit fewer. When the bucket is empty the process
refuses locally until the next token is due, without asking again.

Audit log. Every replica appends to one table (COPY); its bigint identity orders records
of the same microsecond. A record is in its process's local spool before its request is
answered (verifier.service.spool), and is moved into the table within moments, in one
transaction with the spool's progress (audit_spools): a process killed with -9 loses no
record and none is moved twice. A replica killed with -9 has its last records moved in
when it, or `elicence audit` with its home, runs again.

Outages. Every use of the database is bounded in time (PostgresStore), also when the
server accepts connections but answers nothing; after a failure every use is refused at
once until a background probe gets an answer, so that a database that is down or hung
costs keyed requests a 503, never a stalled worker (audit records wait in the spools),
and the process recovers by itself (tests/service/test_postgres_outage.py).
"""

from __future__ import annotations

import itertools
import logging
import math
import os
import re
import socket
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from psycopg import errors as pg_errors
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg_pool import ConnectionPool

from ledger.private import private_folder
from verifier.service.apikeys import (
    AUTH_CACHE_ENTRIES,
    KEY_PREFIX,
    ApiKey,
    hash_key,
    key_row,
    new_key,
    now_text,
    record_of,
)
from verifier.service.audit import (
    AUDIT_COLUMNS,
    AppendingLog,
    AuditRecord,
    in_batches,
    query_sql,
    spool_uri,
)
from verifier.service.errors import (
    ApiKeyExists,
    SchemaTooNew,
    StoreUnavailable,
    UnknownApiKey,
)
from verifier.service.stores import dead_letter_file, redact

log = logging.getLogger("elicence.service")

CONNECT_TIMEOUT_S = 5
# Set on every connection (PostgreSQL's own limits; an operator may set others in the
# URL's `options`, which come after these and win): a statement, a lock wait and a
# transaction left idle end on the server instead of holding a request.
SERVER_OPTIONS = (
    "-c statement_timeout=5s -c lock_timeout=1s -c idle_in_transaction_session_timeout=30s"
)
# A server that does not answer at all (hung, paused, its host gone silent) enforces
# none of them: the client side cuts a connection whose use outlives the statement
# timeout by this much (_Watchdog).
CUT_MARGIN_S = 1.0
# `elicence audit` and other commands: exports of a long log may run for minutes.
COMMAND_STATEMENT_TIMEOUT_S = 600.0
# The hot path (keys, leases) runs on a request's event loop: it waits at most this long
# for a connection, and its use of one at most this long.
FAST_TIMEOUT_S = 0.5
FAST_DEADLINE_S = 0.5
# Other uses (audit writes, commands) wait at most this long for a connection.
POOL_TIMEOUT_S = 5.0
# After a failure every use is refused at once (nothing waits on a database known to be
# away) until a background probe, every PROBE_S, gets an answer again.
PROBE_S = 0.5
KEY_RECHECK_S = 0.25
LEASE_S = 0.01
LEASE_TTL_S = 1.0
MAX_LEASES = 100_000
# pg_advisory_xact_lock's key for migrations: "elic" in ASCII.
MIGRATION_LOCK = 0x656C6963


@dataclass(frozen=True)
class Migration:
    """One step of the schema."""

    version: int
    description: str
    sql: str


MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        "API keys, their version, rate buckets, audit log",
        """
CREATE TABLE api_keys (
    name text PRIMARY KEY,
    key_hash text NOT NULL UNIQUE,
    hint text NOT NULL,
    types text,
    fields text,
    rate double precision,
    created text NOT NULL,
    revoked text
);
CREATE TABLE store_versions (name text PRIMARY KEY, version bigint NOT NULL);
INSERT INTO store_versions VALUES ('api_keys', 0);
CREATE FUNCTION elicence_api_keys_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE store_versions SET version = version + 1 WHERE name = 'api_keys';
    RETURN NULL;
END $$;
CREATE TRIGGER api_keys_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON api_keys
    FOR EACH STATEMENT EXECUTE FUNCTION elicence_api_keys_changed();
CREATE TABLE rate_buckets (
    client text PRIMARY KEY,
    tokens double precision NOT NULL,
    updated double precision NOT NULL
);
CREATE FUNCTION elicence_take_tokens(
    p_client text, p_rate double precision, p_burst double precision,
    p_want double precision, OUT granted double precision, OUT tokens_left double precision
) LANGUAGE plpgsql AS $$
DECLARE
    now_s double precision := extract(epoch FROM clock_timestamp());
    have double precision;
    since double precision;
BEGIN
    INSERT INTO rate_buckets VALUES (p_client, p_burst, now_s) ON CONFLICT (client) DO NOTHING;
    SELECT tokens, updated INTO have, since FROM rate_buckets
        WHERE client = p_client FOR UPDATE;
    have := least(p_burst, have + greatest(0, now_s - since) * p_rate);
    granted := greatest(0, least(p_want, floor(have)));
    tokens_left := have - granted;
    UPDATE rate_buckets SET tokens = tokens_left, updated = now_s WHERE client = p_client;
END $$;
CREATE TABLE audit (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    time text NOT NULL,
    client text NOT NULL,
    purpose text,
    licence_id text NOT NULL,
    licence_type text NOT NULL,
    verdict text NOT NULL,
    block_height bigint,
    operation text NOT NULL
);
CREATE INDEX audit_licence ON audit (licence_id, time, id);
CREATE INDEX audit_client ON audit (client, time, id);
CREATE INDEX audit_time ON audit (time, id);
""",
    ),
    Migration(
        2,
        "audit spools: the last record moved in from each",
        """
CREATE TABLE audit_spools (name text PRIMARY KEY, moved bigint NOT NULL);
""",
    ),
)
SCHEMA_VERSION = MIGRATIONS[-1].version

_KEY_COLUMNS = "name, hint, types, fields, rate, created, revoked"


def migrate(conn: psycopg.Connection[Any], shown: str) -> int:
    """Bring the database to SCHEMA_VERSION; its version before.

    Raises:
        SchemaTooNew: the database's version is above SCHEMA_VERSION.
    """
    with conn.transaction():
        # Replicas starting together wait here while one migrates, for as long as its
        # migration takes: not bounded by the service's lock and statement timeouts.
        conn.execute("SET LOCAL lock_timeout = 0")
        conn.execute("SET LOCAL statement_timeout = 0")
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
        conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_version (version integer PRIMARY KEY, "
            "description text NOT NULL, applied timestamptz NOT NULL DEFAULT now())"
        )
        row = conn.execute("SELECT coalesce(max(version), 0) FROM schema_version").fetchone()
        found = int(row[0]) if row is not None else 0
        if found > SCHEMA_VERSION:
            raise SchemaTooNew(
                f"the database {shown} has schema version {found}, newer than this "
                f"elicence's {SCHEMA_VERSION}: run a newer elicence, or use another database",
                found,
                SCHEMA_VERSION,
            )
        for migration in MIGRATIONS:
            if migration.version <= found:
                continue
            conn.execute(migration.sql.encode("utf-8"))
            conn.execute(
                "INSERT INTO schema_version (version, description) VALUES (%s, %s)",
                (migration.version, migration.description),
            )
            log.info(
                "database %s: migration %d applied (%s)",
                shown,
                migration.version,
                migration.description,
            )
    return found


class PostgresStore:
    """A pool of connections to one database, and the stores over it.

    Every use of a connection is bounded: waiting for one (FAST_TIMEOUT_S on the hot
    path, else POOL_TIMEOUT_S), and using it (FAST_DEADLINE_S on the hot path, else the
    statement timeout plus CUT_MARGIN_S, enforced by the server when it answers and by
    _Watchdog when it does not). A failure marks the database down: until a background
    probe reaches it again, every use is refused at once with StoreUnavailable, so that
    an outage costs requests a 503, not a wait.
    """

    def __init__(
        self,
        pool: ConnectionPool[Any],
        shown: str,
        service_dir: Path,
        *,
        statement_timeout_s: float | None = None,
    ) -> None:
        self._pool = pool
        self.shown = shown  # the URL without its password
        self.service_dir = service_dir
        self._deadline_s = None if not statement_timeout_s else statement_timeout_s + CUT_MARGIN_S
        self._watchdog = _Watchdog()
        self._state = threading.Lock()
        self._down = False
        self._closed = threading.Event()
        self._prober: threading.Thread | None = None

    @classmethod
    def open(
        cls, url: str, service_dir: Path, *, pool: int = 4, command: bool = False
    ) -> PostgresStore:
        """Connect, migrate, and keep up to `pool` connections (`command`: for a command
        rather than the service, whose statements may run for COMMAND_STATEMENT_TIMEOUT_S).

        Raises:
            StoreUnavailable: the database cannot be reached or refuses the login.
            SchemaTooNew: the database was migrated by a newer elicence.
        """
        shown = redact(url)
        conninfo, timeout_s = connection_settings(
            url, COMMAND_STATEMENT_TIMEOUT_S if command else None
        )
        try:
            # One connection first: its error says why (refused, no such database, bad
            # password), where a pool would only say that it timed out.
            with psycopg.connect(conninfo, autocommit=True) as conn:
                migrate(conn, shown)
        except psycopg.OperationalError as exc:
            raise StoreUnavailable(f"cannot use the database {shown}: {_reason(exc)}") from None
        connections: ConnectionPool[Any] = ConnectionPool(
            conninfo,
            min_size=1,
            max_size=pool,
            kwargs={"autocommit": True},
            open=False,
            name="elicence",
            timeout=POOL_TIMEOUT_S,
        )
        try:
            connections.open(wait=True, timeout=CONNECT_TIMEOUT_S)
        except psycopg.OperationalError as exc:
            connections.close()
            raise StoreUnavailable(f"cannot use the database {shown}: {_reason(exc)}") from None
        return cls(connections, shown, service_dir, statement_timeout_s=timeout_s)

    def close(self) -> None:
        """Close every connection."""
        self._closed.set()
        self._watchdog.close()
        self._pool.close()

    @contextmanager
    def connection(self, *, fast: bool = False) -> Iterator[psycopg.Connection[Any]]:
        """A connection from the pool, its use bounded (the class's docstring);
        StoreUnavailable when the database cannot be reached or did not answer in time.
        `fast`: for a request waiting on the event loop."""
        if self._down:
            raise StoreUnavailable(f"the database {self.shown} could not be reached just now")
        deadline = FAST_DEADLINE_S if fast else self._deadline_s
        try:
            with (
                self._pool.connection(timeout=FAST_TIMEOUT_S if fast else POOL_TIMEOUT_S) as conn,
                self._watchdog.guard(conn, deadline),
            ):
                yield conn
        except psycopg.OperationalError as exc:
            # Refused, dropped, cut by the watchdog, timed out waiting for a connection,
            # a statement or lock timeout: the database, not the request.
            self._mark_down()
            raise StoreUnavailable(f"the database {self.shown} failed: {_reason(exc)}") from exc

    def _mark_down(self) -> None:
        with self._state:
            self._down = True
            if self._closed.is_set() or (self._prober is not None and self._prober.is_alive()):
                return
            self._prober = threading.Thread(
                target=self._probe, name="elicence-db-probe", daemon=True
            )
            self._prober.start()

    def _probe(self) -> None:
        """Until the database answers again: the pool's connections are tried one after
        the other (those that died with the server are dropped, and the pool makes new
        ones), and the first answer ends the outage."""
        while not self._closed.wait(PROBE_S):
            answered = False
            for _ in range(self._pool.max_size + 1):
                try:
                    with (
                        self._pool.connection(timeout=POOL_TIMEOUT_S) as conn,
                        self._watchdog.guard(conn, FAST_DEADLINE_S * 4),
                    ):
                        conn.execute("SELECT 1")
                    answered = True
                except psycopg.Error:
                    continue  # a connection that died with the server, or no answer yet
                except Exception:  # a closed pool: the store is going away
                    return
            if answered:
                with self._state:
                    self._down = False
                log.warning("database %s: reachable again", self.shown)
                return

    def keys(self, *, owns: bool = False) -> PostgresKeyStore:
        """The API keys (`owns`: closing them closes this store)."""
        return PostgresKeyStore(self, owns=owns)

    def audit_log(self, *, owns: bool = False) -> PostgresAuditLog:
        """The audit log (`owns`: closing it closes this store)."""
        return PostgresAuditLog(self, owns=owns)

    def limiter(self) -> SharedRateLimiter:
        """Rate limits shared by every replica."""
        return SharedRateLimiter(self)

    def take_tokens(
        self, client: str, rate: float, burst: float, want: float
    ) -> tuple[float, float]:
        """Take up to `want` whole tokens from `client`'s shared bucket: (granted, left)."""
        with self.connection(fast=True) as conn:
            row = conn.execute(
                "SELECT granted, tokens_left FROM elicence_take_tokens(%s, %s, %s, %s)",
                (client, rate, burst, want),
            ).fetchone()
        assert row is not None
        return float(row[0]), float(row[1])


def _reason(exc: BaseException) -> str:
    # libpq's messages name the host, port and user, never the password.
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


_TIMEOUT = re.compile(r"statement_timeout\s*=\s*(\d+(?:\.\d+)?)\s*(ms|s|min|h)?\b")
_UNITS = {"ms": 0.001, "s": 1.0, "min": 60.0, "h": 3600.0}


def connection_settings(url: str, statement_timeout_s: float | None = None) -> tuple[str, float]:
    """The libpq connection string for `url` with this module's defaults where the URL
    sets nothing (connect_timeout, application_name) and SERVER_OPTIONS before the URL's
    own `options` (so that an operator's setting wins); and the statement timeout in
    force, in seconds (0: none). `statement_timeout_s`: another default."""
    params = {k: v for k, v in conninfo_to_dict(url).items() if v is not None}
    params.setdefault("connect_timeout", str(CONNECT_TIMEOUT_S))
    params.setdefault("application_name", "elicence")
    ours = SERVER_OPTIONS
    if statement_timeout_s is not None:
        ours += f" -c statement_timeout={int(statement_timeout_s * 1000)}ms"
    params["options"] = f"{ours} {params.get('options', '')}".strip()
    found = _TIMEOUT.findall(str(params["options"]))
    number, unit = found[-1]  # the last one given is the one in force
    return make_conninfo("", **params), float(number) * _UNITS[unit or "ms"]


class _Watchdog:
    """Cuts connections whose use outlives its deadline: their socket is shut down, so
    that libpq, waiting for an answer that will never come, sees the connection closed
    and psycopg raises OperationalError (the pool then drops the connection). A server
    that answers nothing enforces no timeout of its own, and TCP keepalives get answers
    from its kernel; this is what bounds a request's wait then.

    One thread for the store, idle while nothing is watched."""

    TICK_S = 0.05

    def __init__(self) -> None:
        self._lock = threading.Condition()
        self._watched: dict[int, tuple[float, psycopg.Connection[Any]]] = {}
        self._tokens = itertools.count()
        self._thread: threading.Thread | None = None
        self._closed = False

    @contextmanager
    def guard(self, conn: psycopg.Connection[Any], seconds: float | None) -> Iterator[None]:
        if seconds is None:
            yield
            return
        token = next(self._tokens)
        with self._lock:
            self._watched[token] = (time.monotonic() + seconds, conn)
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="elicence-db-watchdog", daemon=True
                )
                self._thread.start()
            elif len(self._watched) == 1:
                self._lock.notify()
        try:
            yield
        finally:
            with self._lock:
                self._watched.pop(token, None)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._lock.notify()

    def _run(self) -> None:
        with self._lock:
            while not self._closed:
                if not self._watched:
                    self._lock.wait()
                    continue
                self._lock.wait(self.TICK_S)
                now = time.monotonic()
                for token, (deadline, conn) in list(self._watched.items()):
                    if now >= deadline:
                        del self._watched[token]
                        _cut(conn)


def _cut(conn: psycopg.Connection[Any]) -> None:
    """Shut the connection's socket down under libpq (which keeps its descriptor: only
    the duplicate made here is closed)."""
    try:
        duplicate = socket.socket(fileno=os.dup(conn.pgconn.socket))
    except (OSError, psycopg.Error):
        return  # closed already
    try:
        duplicate.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    finally:
        duplicate.close()
    log.warning("a database connection got no answer in time and was cut")


class PostgresKeyStore:
    """API keys in PostgreSQL (apikeys.KeyStore)."""

    def __init__(
        self, store: PostgresStore, *, owns: bool, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._store = store
        self._owns = owns
        self._clock = clock
        self._lock = threading.Lock()
        self._recent: dict[str, ApiKey | None] = {}
        self._version: int | None = None
        self._checked = -math.inf

    def create(
        self,
        name: str,
        *,
        types: frozenset[str] | None = None,
        fields: frozenset[str] | None = None,
        rate: float | None = None,
        operator: bool = False,
    ) -> tuple[ApiKey, str]:
        """A new key; returns its record and the key itself (shown once, never stored)."""
        record, key = new_key(name, types=types, fields=fields, rate=rate, operator=operator)
        try:
            with self._store.connection() as conn:
                conn.execute(
                    "INSERT INTO api_keys VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
                    key_row(record, key),
                )
        except pg_errors.UniqueViolation:
            raise ApiKeyExists(f"an API key named {name!r} exists already") from None
        return record, key

    def list(self) -> list[ApiKey]:
        """Every key, active and revoked, by name."""
        with self._store.connection() as conn:
            rows = conn.execute(f"SELECT {_KEY_COLUMNS} FROM api_keys ORDER BY name").fetchall()
        return [record_of(tuple(row)) for row in rows]

    def revoke(self, name: str) -> ApiKey:
        """Revoke a key: every replica refuses it within KEY_RECHECK_S."""
        with self._store.connection() as conn:
            row = conn.execute(
                "UPDATE api_keys SET revoked = coalesce(revoked, %s) WHERE name = %s "
                f"RETURNING {_KEY_COLUMNS}",
                (now_text(), name),
            ).fetchone()
        if row is None:
            raise UnknownApiKey(f"no API key named {name!r}")
        with self._lock:
            self._recent.clear()
        return record_of(tuple(row))

    def authenticate(self, key: str) -> ApiKey | None:
        """The active key's record, or None; StoreUnavailable when it cannot be checked.

        Answers are remembered while the keys' version stays the same, checked at most
        every KEY_RECHECK_S (the module's docstring says why that is enough).
        """
        if not key.startswith(KEY_PREFIX) or len(key) > 100:
            return None
        digest = hash_key(key)
        with self._lock:
            # The time before the check: an answer is never older than KEY_RECHECK_S
            # counted from before the version was read.
            now = self._clock()
            if now - self._checked >= KEY_RECHECK_S:
                with self._store.connection(fast=True) as conn:
                    row = conn.execute(
                        "SELECT version FROM store_versions WHERE name = 'api_keys'"
                    ).fetchone()
                version = None if row is None else int(row[0])
                if version != self._version:
                    self._recent.clear()
                    self._version = version
                self._checked = now
            if digest in self._recent:
                return self._recent[digest]
            with self._store.connection(fast=True) as conn:
                found_row = conn.execute(
                    f"SELECT {_KEY_COLUMNS} FROM api_keys WHERE key_hash = %s", (digest,)
                ).fetchone()
            record = None if found_row is None else record_of(tuple(found_row))
            found = record if record is not None and record.active else None
            if len(self._recent) >= AUTH_CACHE_ENTRIES:
                self._recent.clear()  # unknown keys must not grow it without bound
            self._recent[digest] = found
            return found

    def close(self) -> None:
        """Close the store when this owns it."""
        if self._owns:
            self._store.close()


class PostgresAuditLog(AppendingLog):
    """The audit log in PostgreSQL, shared by every replica; records a replica's database
    refused go to its own dead-letter file (HOME/service/audit-dead-letter.jsonl)."""

    def __init__(self, store: PostgresStore, *, owns: bool) -> None:
        super().__init__(dead_letter_file(store.service_dir))
        self._store = store
        self._owns = owns
        if not owns:  # the service's: its dead-letter file needs the folder
            private_folder(store.service_dir)

    def _store_failed(self, error: Exception) -> bool:
        return isinstance(error, StoreUnavailable | psycopg.OperationalError)

    def moved_upto(self, spool: str) -> int:
        with self._store.connection() as conn:
            row = conn.execute(
                "SELECT moved FROM audit_spools WHERE name = %s", (spool,)
            ).fetchone()
        return 0 if row is None else int(row[0])

    def _append_moved(
        self, spool: str, records: Sequence[tuple[int, AuditRecord]], upto: int
    ) -> None:
        with self._store.connection() as conn, conn.transaction():
            done = _lock_progress(conn, spool)
            pending = [record for id_, record in records if id_ > done]
            if pending:
                _copy_records(conn, pending)
            if upto > done:
                conn.execute("UPDATE audit_spools SET moved = %s WHERE name = %s", (upto, spool))

    def append_spool_file(self, spool: str, path: Path, batch: int) -> int | None:
        """`AppendingLog.append_spool_file`: the spool's rows go from SQLite's cursor
        to COPY as they are read (the mover's CPU a record: 6.2 -> 2 µs)."""
        try:
            source = sqlite3.connect(spool_uri(path), uri=True, isolation_level=None)
        except sqlite3.Error:
            return None
        try:
            return in_batches(lambda: self._copy_from_spool(spool, source, batch), batch)
        finally:
            source.close()

    def _copy_from_spool(
        self, spool: str, source: sqlite3.Connection, batch: int
    ) -> tuple[int, int] | None:
        """One transaction of `append_spool_file`: the progress after, and the number of
        records appended."""
        try:
            with self._lock, self._store.connection() as conn, conn.transaction():
                done = _lock_progress(conn, spool)
                upto = source.execute(
                    "SELECT max(id) FROM (SELECT id FROM audit WHERE id > ? ORDER BY id LIMIT ?)",
                    (done, batch),
                ).fetchone()[0]
                if upto is None:
                    return done, 0
                rows = source.execute(
                    f"SELECT {AUDIT_COLUMNS} FROM audit WHERE id > ? AND id <= ? ORDER BY id",
                    (done, upto),
                )
                _copy_records(conn, rows)
                conn.execute("UPDATE audit_spools SET moved = %s WHERE name = %s", (upto, spool))
                return upto, upto - done
        except Exception as exc:
            # The database as a whole: raised. The spool unreadable, or a record refused
            # (NUL): the row-by-row move says which.
            if self._store_failed(exc):
                raise
            return None

    def _select(
        self,
        *,
        licence_id: str | None,
        client: str | None,
        since: str | None,
        limit: int | None,
    ) -> list[AuditRecord]:
        """Records of every replica matching every filter given, oldest first."""
        sql, args = query_sql("%s", licence_id=licence_id, client=client, since=since, limit=limit)
        with self._store.connection() as conn:
            rows = conn.execute(sql.encode("utf-8"), args).fetchall()
        return [
            AuditRecord(
                str(t),
                str(c),
                None if p is None else str(p),
                str(lid),
                str(lt),
                str(v),
                None if h is None else int(h),
                str(o),
            )
            for t, c, p, lid, lt, v, h, o in rows
        ]

    def close(self) -> None:
        """Close the store when this owns it."""
        if self._owns:
            self._store.close()


def _lock_progress(conn: psycopg.Connection[Any], spool: str) -> int:
    """The spool's progress, its row locked for the transaction: a second mover of the
    same spool waits here, then reads this one's progress and appends nothing twice."""
    row = conn.execute(
        "INSERT INTO audit_spools AS s (name, moved) VALUES (%s, 0) "
        "ON CONFLICT (name) DO UPDATE SET moved = s.moved RETURNING moved",
        (spool,),
    ).fetchone()
    return int(row[0]) if row is not None else 0


def _copy_records(conn: psycopg.Connection[Any], rows: Iterable[Sequence[object]]) -> None:
    """Append rows in AUDIT_COLUMNS' order (an AuditRecord is one) with COPY."""
    with (
        conn.cursor() as cursor,
        cursor.copy(f"COPY audit ({AUDIT_COLUMNS}) FROM STDIN") as copy,
    ):
        for row in rows:
            copy.write_row(row)


@dataclass
class _Lease:
    tokens: float  # left to spend here
    expires: float
    empty_until: float = 0.0  # the bucket had none: refuse here until then


class SharedRateLimiter:
    """Token buckets in the database, spent through local leases (module docstring)."""

    def __init__(self, store: PostgresStore, clock: Callable[[], float] = time.monotonic) -> None:
        self._store = store
        self._clock = clock
        self._lock = threading.Lock()
        self._leases: dict[str, _Lease] = {}

    def take(self, client: str, rate: float, burst: float) -> float:
        """Take a token: 0.0 when allowed, else the seconds until one will be there."""
        with self._lock:
            now = self._clock()
            lease = self._leases.get(client)
            if lease is not None:
                if now < lease.empty_until:
                    return lease.empty_until - now
                if lease.tokens >= 1.0 and now < lease.expires:
                    lease.tokens -= 1.0
                    return 0.0
            want = max(1.0, min(math.floor(rate * LEASE_S), math.floor(burst / 4)))
            granted, left = self._store.take_tokens(client, rate, burst, want)
            if len(self._leases) >= MAX_LEASES and client not in self._leases:
                self._leases.clear()  # only a lease's unspent tokens are lost
            if granted >= 1.0:
                self._leases[client] = _Lease(granted - 1.0, now + LEASE_TTL_S)
                return 0.0
            wait = math.inf if rate <= 0 else (1.0 - left) / rate
            self._leases[client] = _Lease(0.0, now, now + wait)
            return wait
