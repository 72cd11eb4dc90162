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
import math
import secrets
import sqlite3
import threading
import time
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from ledger.private import private_database
from licence.catalogue import catalogue
from verifier.service.errors import ApiKeyExists, FieldError, InvalidRequest, UnknownApiKey

KEY_PREFIX = "elk_"
# The scope of an operator's key (`elicence apikey create --operator`): in place of licence
# types, so that it may read the operator page and verify nothing. No licence type id can
# start with "@", and the scope is kept in the types column, so no store needs a new column.
OPERATOR_SCOPE = "@operator"
AUTH_CACHE_ENTRIES = 10_000
# Remembered answers are checked against the key file at most this often: a key revoked
# from another process (`elicence apikey revoke`, another worker) is refused within it,
# as PostgreSQL's store does (verifier.service.stores.postgres.KEY_RECHECK_S).
KEY_RECHECK_S = 0.25
NAME_RULE = (
    "1 to 64 characters: letters (Chinese too) and digits, spaces and - _ . ·; "
    "starting and ending with a letter or digit"
)
_NAME_MAX = 64
_NAME_MARKS = frozenset(" -_.·")


def name_problem(name: str) -> str | None:
    """Why `name` cannot name an API key (NAME_RULE), or None when it can.

    A display name such as 广州市市场监督管理局审批系统 is allowed: it is what the audit log
    and a holder's history show. Control, format (bidi) and other invisible characters
    are not, so that a name reads the same in every listing.
    """
    if not 1 <= len(name) <= _NAME_MAX:
        return NAME_RULE
    for char in name:
        kind = unicodedata.category(char)
        if not (kind[0] in "LM" or kind == "Nd" or char in _NAME_MARKS):
            return NAME_RULE
    if not _letter_or_digit(name[0]) or not _letter_or_digit(name[-1]):
        return NAME_RULE
    return None


def _letter_or_digit(char: str) -> bool:
    return unicodedata.category(char)[0] == "L" or unicodedata.category(char) == "Nd"


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


def new_key(
    name: str,
    *,
    types: frozenset[str] | None,
    fields: frozenset[str] | None,
    rate: float | None,
    operator: bool = False,
) -> tuple[ApiKey, str]:
    """A new key and its record once its name and limits are checked (InvalidRequest
    says what is wrong); every store creates its keys through this.

    An `operator` key reads the operator page; it may verify no licence and see no
    field (its types are OPERATOR_SCOPE alone), so it cannot be given limits.
    """
    problems = check_limits(types, fields)
    if operator:
        if types is not None or fields is not None:
            problems.append(FieldError("operator", "an operator key takes no types or fields"))
        types, fields = frozenset({OPERATOR_SCOPE}), frozenset()
    if (wrong := name_problem(name)) is not None:
        problems.insert(0, FieldError("name", wrong))
    if rate is not None and rate <= 0:
        problems.append(FieldError("rate", "must be above 0"))
    if problems:
        raise InvalidRequest("the API key cannot be created as asked", problems)
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    return ApiKey(name, key[:10], types, fields, rate, _now()), key


def key_row(record: ApiKey, key: str) -> tuple[object, ...]:
    """The stored row of a new key: the api_keys table's columns, in order (the key
    itself only as its hash)."""
    return (
        record.name,
        hash_key(key),
        record.hint,
        _join(record.types),
        _join(record.fields),
        record.rate,
        record.created,
        None,
    )


def now_text() -> str:
    """The time as keys record it (created, revoked): UTC, to the second."""
    return _now()


class KeyStore(Protocol):
    """Where the keys are kept: ApiKeyStore (SQLite, the default) or PostgreSQL shared
    by every replica (verifier.service.stores)."""

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
        ...

    def list(self) -> list[ApiKey]:
        """Every key, active and revoked, by name."""
        ...

    def revoke(self, name: str) -> ApiKey:
        """Revoke a key (UnknownApiKey when there is none of that name)."""
        ...

    def authenticate(self, key: str) -> ApiKey | None:
        """The active key's record, or None."""
        ...

    def close(self) -> None:
        """Release the store."""
        ...


class ApiKeyStore:
    """The keys in HOME/service/apikeys.sqlite."""

    def __init__(self, path: Path, clock: Callable[[], float] = time.monotonic) -> None:
        private_database(path)  # SQLite gives its -wal and -shm files the same mode
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.executescript(_SCHEMA)
        self._lock = threading.Lock()
        self._recent: dict[str, ApiKey | None] = {}
        self._version: object = None
        self._clock = clock
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
        """A new key; returns its record and the key itself (shown once, never stored).

        An `operator` key reads the operator page; it may verify no licence and see no
        field (its types are OPERATOR_SCOPE alone), so it cannot be given limits.
        """
        record, key = new_key(name, types=types, fields=fields, rate=rate, operator=operator)
        with self._lock:
            try:
                self._db.execute(
                    "INSERT INTO api_keys VALUES (?, ?, ?, ?, ?, ?, ?, ?)", key_row(record, key)
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
        return [record_of(row) for row in rows]

    def revoke(self, name: str) -> ApiKey:
        """Revoke a key: this store refuses it from its next request on, every other
        (another worker, a running service) within KEY_RECHECK_S."""
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
        return record_of(row)

    def authenticate(self, key: str) -> ApiKey | None:
        """The active key's record, or None.

        Answers are remembered until the key file changes: a key look-up per request was
        a tenth of the service's time under load. SQLite's data_version moves whenever
        another connection commits (`elicence apikey revoke` in another process); it is
        read at most every KEY_RECHECK_S (a twentieth of a request's time when read on
        every one), so a key revoked elsewhere is refused within KEY_RECHECK_S.
        """
        if not key.startswith(KEY_PREFIX) or len(key) > 100:
            return None
        digest = hash_key(key)
        with self._lock:
            # The time before the check: an answer is never older than KEY_RECHECK_S
            # counted from before the version was read.
            now = self._clock()
            if now - self._checked >= KEY_RECHECK_S:
                version = self._db.execute("PRAGMA data_version").fetchone()[0]
                if version != self._version:
                    self._recent.clear()
                    self._version = version
                self._checked = now
            if digest in self._recent:
                return self._recent[digest]
            row = self._db.execute(
                "SELECT name, hint, types, fields, rate, created, revoked FROM api_keys "
                "WHERE key_hash = ?",
                (digest,),
            ).fetchone()
            record = None if row is None else record_of(row)
            found = record if record is not None and record.active else None
            if len(self._recent) >= AUTH_CACHE_ENTRIES:
                self._recent.clear()  # unknown keys must not grow it without bound
            self._recent[digest] = found
            return found

    def close(self) -> None:
        """Close the key file."""
        self._db.close()


def record_of(row: tuple[object, ...]) -> ApiKey:
    """A key's record from its row (name, hint, types, fields, rate, created, revoked)."""
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
