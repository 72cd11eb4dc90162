"""Where the service keeps the state its replicas share: API keys, rate limits, the
audit log.

Two backends behind the same interfaces (apikeys.KeyStore, audit.AppendingLog,
ratelimit.Limiter):

- SQLite (the default, nothing to set up): HOME/service/apikeys.sqlite and audit.sqlite,
  shared by the worker processes of one `elicence serve`; rate limits are counted per
  process.
- PostgreSQL (`--database postgresql://...`, ELICENCE_DATABASE, or "database" in the
  home's config.json): shared by any number of `elicence serve` processes on any number
  of machines; rate limits of API keys are counted across all of them
  (verifier.service.stores.postgres).

A database URL is never printed or logged with its password (`redact`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from verifier.service.apikeys import ApiKeyStore, KeyStore
from verifier.service.audit import AppendingLog, AuditLog
from verifier.service.errors import StoreError
from verifier.service.ratelimit import Limiter, RateLimiter
from verifier.service.settings import Settings

if TYPE_CHECKING:
    from verifier.service.stores.postgres import PostgresStore

SCHEMES = ("postgresql", "postgres")
_HIDDEN = "***"


def redact(url: str) -> str:
    """`url` with its password (in the authority or as ?password=) replaced by ***."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "(a database URL that cannot be read)"
    netloc = parts.netloc
    if "@" in netloc:
        user, _, host = netloc.rpartition("@")
        if ":" in user:
            user = user.split(":", 1)[0] + ":" + _HIDDEN
        netloc = f"{user}@{host}"
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        query = urlencode(
            [(k, _HIDDEN if k.lower() == "password" else v) for k, v in pairs], safe="*"
        )
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def checked_url(url: str) -> str:
    """`url` when it is a PostgreSQL URL; StoreError otherwise."""
    scheme = url.split("://", 1)[0].lower() if "://" in url else ""
    if scheme not in SCHEMES:
        raise StoreError(
            f"the database setting {redact(url)!r} is not a postgresql:// URL "
            "(leave it unset for SQLite files in the home)"
        )
    return url


@dataclass
class Stores:
    """The shared state of one service process, opened together and closed together."""

    keys: KeyStore
    audit: AppendingLog
    # API keys' limits: per process (SQLite) or across replicas (PostgreSQL). Anonymous
    # callers are limited per process and address in either case.
    key_limiter: Limiter
    database: PostgresStore | None = None

    def close(self) -> None:
        """Close every store."""
        self.keys.close()
        self.audit.close()
        if self.database is not None:
            self.database.close()


def open_stores(settings: Settings) -> Stores:
    """The key store, audit log and key limiter the settings choose (migrating a
    PostgreSQL database to this version's schema first).

    Raises:
        StoreError: the database setting is not a PostgreSQL URL.
        StoreUnavailable: the database cannot be reached.
        SchemaTooNew: the database was migrated by a newer elicence.
        ConfigError: the home's config.json cannot be read.
    """
    url = settings.database_url()
    if url is None:
        service = settings.service_dir
        return Stores(
            ApiKeyStore(service / "apikeys.sqlite"),
            AuditLog(service / "audit.sqlite"),
            RateLimiter(),
        )
    from verifier.service.stores.postgres import PostgresStore

    database = PostgresStore.open(checked_url(url), settings.service_dir)
    return Stores(
        database.keys(),
        database.audit_log(),
        database.limiter(),
        database,
    )


def open_key_store(settings: Settings) -> KeyStore:
    """The key store alone (the `elicence apikey` commands); closing it releases
    everything it opened."""
    url = settings.database_url()
    if url is None:
        return ApiKeyStore(settings.service_dir / "apikeys.sqlite")
    from verifier.service.stores.postgres import PostgresStore

    store = PostgresStore.open(checked_url(url), settings.service_dir, pool=1, command=True)
    return store.keys(owns=True)


def open_audit_log(settings: Settings) -> AppendingLog:
    """The audit log alone (`elicence audit`); closing it releases everything it opened."""
    url = settings.database_url()
    if url is None:
        return AuditLog(settings.service_dir / "audit.sqlite")
    from verifier.service.stores.postgres import PostgresStore

    store = PostgresStore.open(checked_url(url), settings.service_dir, pool=1, command=True)
    return store.audit_log(owns=True)


def dead_letter_file(service_dir: Path) -> Path:
    """Where a process sets aside the audit records its store refused: always a local
    file (the store is what failed), as beside the SQLite log."""
    return service_dir / "audit-dead-letter.jsonl"
