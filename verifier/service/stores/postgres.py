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

Audit log. Every replica appends to one table in group-committed transactions (COPY);
its bigint identity orders records of the same microsecond. A record is in the table
before its request is answered (audit.AuditWriter), and a process killed with -9 leaves
either its whole transaction or none of it: no record is lost or written twice.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from psycopg import errors as pg_errors
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
from verifier.service.audit import AUDIT_COLUMNS, AppendingLog, AuditRecord, query_sql
from verifier.service.errors import (
    ApiKeyExists,
    SchemaTooNew,
    StoreUnavailable,
    UnknownApiKey,
)
from verifier.service.stores import dead_letter_file, redact

log = logging.getLogger("elicence.service")

CONNECT_TIMEOUT_S = 5
# A request waits at most this long for a connection on the hot path (keys, leases);
# after a failure the hot path refuses at once for DOWN_S rather than wait every time.
FAST_TIMEOUT_S = 2.0
DOWN_S = 1.0
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
)
SCHEMA_VERSION = MIGRATIONS[-1].version

_KEY_COLUMNS = "name, hint, types, fields, rate, created, revoked"


def migrate(conn: psycopg.Connection[Any], shown: str) -> int:
    """Bring the database to SCHEMA_VERSION; its version before.

    Raises:
        SchemaTooNew: the database's version is above SCHEMA_VERSION.
    """
    with conn.transaction():
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
    """A pool of connections to one database, and the stores over it."""

    def __init__(self, pool: ConnectionPool[Any], shown: str, service_dir: Path) -> None:
        self._pool = pool
        self.shown = shown  # the URL without its password
        self.service_dir = service_dir
        self._down_until = 0.0

    @classmethod
    def open(cls, url: str, service_dir: Path, *, pool: int = 4) -> PostgresStore:
        """Connect, migrate, and keep up to `pool` connections.

        Raises:
            StoreUnavailable: the database cannot be reached or refuses the login.
            SchemaTooNew: the database was migrated by a newer elicence.
        """
        shown = redact(url)
        try:
            # One connection first: its error says why (refused, no such database, bad
            # password), where a pool would only say that it timed out.
            with psycopg.connect(url, autocommit=True, connect_timeout=CONNECT_TIMEOUT_S) as conn:
                migrate(conn, shown)
        except psycopg.OperationalError as exc:
            raise StoreUnavailable(f"cannot use the database {shown}: {_reason(exc)}") from None
        connections: ConnectionPool[Any] = ConnectionPool(
            url,
            min_size=1,
            max_size=pool,
            kwargs={
                "autocommit": True,
                "connect_timeout": CONNECT_TIMEOUT_S,
                "application_name": "elicence",
            },
            open=False,
            name="elicence",
            timeout=CONNECT_TIMEOUT_S,
        )
        try:
            connections.open(wait=True, timeout=CONNECT_TIMEOUT_S)
        except psycopg.OperationalError as exc:
            connections.close()
            raise StoreUnavailable(f"cannot use the database {shown}: {_reason(exc)}") from None
        return cls(connections, shown, service_dir)

    def close(self) -> None:
        """Close every connection."""
        self._pool.close()

    @contextmanager
    def connection(self, *, fast: bool = False) -> Iterator[psycopg.Connection[Any]]:
        """A connection from the pool; StoreUnavailable when the database cannot be
        reached. `fast`: for a request waiting on the event loop (a short wait, and none
        at all for DOWN_S after a failure)."""
        if fast and time.monotonic() < self._down_until:
            raise StoreUnavailable(f"the database {self.shown} could not be reached just now")
        try:
            with self._pool.connection(timeout=FAST_TIMEOUT_S if fast else None) as conn:
                yield conn
        except psycopg.OperationalError as exc:
            if fast:
                self._down_until = time.monotonic() + DOWN_S
            raise StoreUnavailable(f"the database {self.shown} failed: {_reason(exc)}") from exc

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

    def _write(self, records: Sequence[AuditRecord]) -> None:
        if not records:
            return
        with (
            self._store.connection() as conn,
            conn.transaction(),
            conn.cursor() as cursor,
            cursor.copy(f"COPY audit ({AUDIT_COLUMNS}) FROM STDIN") as copy,
        ):
            for r in records:
                copy.write_row(
                    (
                        r.time,
                        r.client,
                        r.purpose,
                        r.licence_id,
                        r.licence_type,
                        r.verdict,
                        r.block_height,
                        r.operation,
                    )
                )

    def query(
        self,
        *,
        licence_id: str | None = None,
        client: str | None = None,
        since: str | None = None,
        limit: int | None = None,
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
