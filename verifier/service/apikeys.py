"""API keys of approval systems: created by the operator, shown once, stored hashed.

A key is `elk_` followed by 43 URL-safe characters (32 random bytes). Only its SHA-256
is stored: a key carries 256 bits of entropy, so no guess can find a preimage and a slow
password hash would only slow every request down. A key may be limited to licence types
(the only ones it may verify) and to fields (the only disclosed fields it sees; the rest
are reported as withheld), and may carry its own rate.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import secrets
import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path

from ledger.private import private_database
from licence.catalogue import catalogue
from verifier.service.errors import ApiKeyExists, FieldError, InvalidRequest, UnknownApiKey

KEY_PREFIX = "elk_"
AUTH_CACHE_ENTRIES = 10_000
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS api_keys (
    name TEXT PRIMARY KEY,
    key_hash TEXT NOT NULL UNIQUE,
    hint TEXT NOT NULL,
    types TEXT,
    fields TEXT,
    rate REAL,
    created TEXT NOT NULL,
    revoked TEXT
);
"""


@dataclass(frozen=True)
class ApiKey:
    """An approval system's key, without the key itself."""

    name: str
    hint: str  # the first characters of the key, so an operator can tell keys apart
    types: frozenset[str] | None  # None: every licence type
    fields: frozenset[str] | None  # None: every disclosed field
    rate: float | None  # requests per second; None: the service's default
    created: str
    revoked: str | None = None

    @property
    def active(self) -> bool:
        """False once revoked."""
        return self.revoked is None


def hash_key(key: str) -> str:
    """The stored form of a key."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def _split(value: str | None) -> frozenset[str] | None:
    return None if value is None else frozenset(v for v in value.split(",") if v)


def _join(values: frozenset[str] | None) -> str | None:
    return None if values is None else ",".join(sorted(values))


def check_limits(types: frozenset[str] | None, fields: frozenset[str] | None) -> list[FieldError]:
    """What is wrong with a key's limits (unknown licence types or fields)."""
    problems = []
    known_types = {t.id for t in catalogue()}
    known_fields = {f.name for t in catalogue() for f in t.fields}
    for name in sorted((types or frozenset()) - known_types):
        problems.append(
            FieldError("types", f"no licence type {name!r}; known: {sorted(known_types)}")
        )
    for name in sorted((fields or frozenset()) - known_fields):
        problems.append(FieldError("fields", f"no licence type has a field {name!r}"))
    return problems


class ApiKeyStore:
    """The keys in HOME/service/apikeys.sqlite."""

    def __init__(self, path: Path) -> None:
        private_database(path)  # SQLite gives its -wal and -shm files the same mode
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.executescript(_SCHEMA)
        self._lock = threading.Lock()
        self._recent: dict[str, ApiKey | None] = {}
        self._version: object = None

    def create(
        self,
        name: str,
        *,
        types: frozenset[str] | None = None,
        fields: frozenset[str] | None = None,
        rate: float | None = None,
    ) -> tuple[ApiKey, str]:
        """A new key; returns its record and the key itself (shown once, never stored)."""
        problems = check_limits(types, fields)
        if not _NAME.fullmatch(name):
            problems.insert(
                0, FieldError("name", "1 to 64 letters, digits, '.', '_' or '-', not first")
            )
        if rate is not None and rate <= 0:
            problems.append(FieldError("rate", "must be above 0"))
        if problems:
            raise InvalidRequest("the API key cannot be created as asked", problems)
        key = KEY_PREFIX + secrets.token_urlsafe(32)
        record = ApiKey(name, key[:10], types, fields, rate, _now())
        with self._lock:
            try:
                self._db.execute(
                    "INSERT INTO api_keys VALUES (?, ?, ?, ?, ?, ?, ?, NULL)",
                    (
                        name,
                        hash_key(key),
                        record.hint,
                        _join(types),
                        _join(fields),
                        rate,
                        record.created,
                    ),
                )
            except sqlite3.IntegrityError:
                raise ApiKeyExists(f"an API key named {name!r} exists already") from None
        return record, key

    def list(self) -> list[ApiKey]:
        """Every key, active and revoked, by name."""
        with self._lock:
            rows = self._db.execute(
                "SELECT name, hint, types, fields, rate, created, revoked FROM api_keys "
                "ORDER BY name"
            ).fetchall()
        return [_record(row) for row in rows]

    def revoke(self, name: str) -> ApiKey:
        """Revoke a key: the service refuses it from its next request on."""
        with self._lock:
            self._recent.clear()
            updated = self._db.execute(
                "UPDATE api_keys SET revoked = ? WHERE name = ? AND revoked IS NULL",
                (_now(), name),
            ).rowcount
            row = self._db.execute(
                "SELECT name, hint, types, fields, rate, created, revoked FROM api_keys "
                "WHERE name = ?",
                (name,),
            ).fetchone()
        if row is None:
            raise UnknownApiKey(f"no API key named {name!r}")
        del updated  # revoking a revoked key again is not an error
        return _record(row)

    def authenticate(self, key: str) -> ApiKey | None:
        """The active key's record, or None.

        Answers are remembered until the key file changes: a key look-up per request was
        a tenth of the service's time under load. SQLite's data_version moves whenever
        another connection commits (`elicence apikey revoke` in another process), so a
        revoked key is still refused from the next request on.
        """
        if not key.startswith(KEY_PREFIX) or len(key) > 100:
            return None
        digest = hash_key(key)
        with self._lock:
            version = self._db.execute("PRAGMA data_version").fetchone()[0]
            if version != self._version:
                self._recent.clear()
                self._version = version
            if digest in self._recent:
                return self._recent[digest]
            row = self._db.execute(
                "SELECT name, hint, types, fields, rate, created, revoked FROM api_keys "
                "WHERE key_hash = ?",
                (digest,),
            ).fetchone()
            record = None if row is None else _record(row)
            found = record if record is not None and record.active else None
            if len(self._recent) >= AUTH_CACHE_ENTRIES:
                self._recent.clear()  # unknown keys must not grow it without bound
            self._recent[digest] = found
            return found

    def close(self) -> None:
        """Close the key file."""
        self._db.close()


def _record(row: tuple[object, ...]) -> ApiKey:
    name, hint, types, fields, rate, created, revoked = row
    return ApiKey(
        name=str(name),
        hint=str(hint),
        types=_split(None if types is None else str(types)),
        fields=_split(None if fields is None else str(fields)),
        rate=None if rate is None else float(str(rate)),
        created=str(created),
        revoked=None if revoked is None else str(revoked),
    )
