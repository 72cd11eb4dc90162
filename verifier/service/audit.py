"""The audit log: who verified which licence, when, for what, and what they were told.

One row per verified licence, in HOME/service/audit.sqlite or, with a database setting,
in PostgreSQL shared by every replica (verifier.service.stores), moved there from the
processes' spools (verifier.service.spool): time (UTC), client (the API key's name, or
`anonymous`), purpose (the matter or case number the caller gave), licence id, licence
type, verdict (or COULD_NOT_CHECK), the block height the answer reflected, and the
operation. No field of the licence is ever written, nor the caller's
address or key: the licence id is a hash that identifies the licence without saying what
it says.
"""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import io
import json
import logging
import os
import sqlite3
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator, Sequence
from functools import lru_cache
from pathlib import Path
from typing import NamedTuple

from ledger.private import private_database
from verifier.service.errors import FieldError, InvalidRequest

COULD_NOT_CHECK = "COULD_NOT_CHECK"
# The licence id of a record whose document did not prove to be that licence (its
# integrity or anchor check failed, or nothing could be checked): the id it claims
# follows, but it is filed under no licence, so nobody can write another's history.
UNPROVEN = "unproven:"

log = logging.getLogger("elicence.service")
# What the caller is told; the reason goes to the service log, not to the client.
NOT_STORED = (
    "the audit record of this request could not be stored, so no answer is given; retry later"
)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS audit (
    id INTEGER PRIMARY KEY,
    time TEXT NOT NULL,
    client TEXT NOT NULL,
    purpose TEXT,
    licence_id TEXT NOT NULL,
    licence_type TEXT NOT NULL,
    verdict TEXT NOT NULL,
    block_height INTEGER,
    operation TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS audit_licence ON audit (licence_id, time);
CREATE INDEX IF NOT EXISTS audit_client ON audit (client, time);
CREATE INDEX IF NOT EXISTS audit_time ON audit (time);
CREATE TABLE IF NOT EXISTS audit_spools (name TEXT PRIMARY KEY, moved INTEGER NOT NULL);
"""


class AuditRecord(NamedTuple):
    """One verification, as the log keeps it: a tuple in the columns' order, so that it
    is its own row for the stores (one object a request, nothing converted)."""

    time: str
    client: str
    purpose: str | None
    licence_id: str
    licence_type: str
    verdict: str
    block_height: int | None
    operation: str

    def to_json(self) -> dict[str, object]:
        """camelCase, as the API and the JSONL export write it."""
        return {
            "time": self.time,
            "client": self.client,
            "purpose": self.purpose,
            "licenceId": self.licence_id,
            "licenceType": self.licence_type,
            "verdict": self.verdict,
            "blockHeight": self.block_height,
            "operation": self.operation,
        }


def now() -> str:
    """The time as the log writes it: UTC, microseconds, so that rows sort by time."""
    return dt.datetime.now(dt.UTC).isoformat(timespec="microseconds")


class RecordSink(ABC):
    """Where audit records are appended: a spool, or the log they are moved into. A
    record that cannot be appended is set aside in the dead-letter file
    (`dead_letter_path`, local to this process's home) rather than blocking the others.
    Subclasses say which failures are the store's as a whole."""

    dead_letter_path: Path

    def __init__(self, dead_letter_path: Path) -> None:
        self.dead_letter_path = dead_letter_path
        self._lock = threading.Lock()  # the connection, and the order of writes

    @abstractmethod
    def _store_failed(self, error: Exception) -> bool:
        """Whether `error` is the store's as a whole (no record could be written), not a
        record's."""

    def set_aside(
        self, records: Sequence[AuditRecord], error: BaseException, *, answered: bool = False
    ) -> None:
        """Keep refused records in the dead-letter file (JSON lines, mode 0600), with the
        reason, and say so in the service log (`answered`: their requests were answered,
        the spool having stored them; otherwise they were answered 503)."""
        lines = "".join(
            # ASCII escapes: a record refused for its text (a lone surrogate) still fits.
            json.dumps({"error": repr(error), "record": r.to_json()}, ensure_ascii=True) + "\n"
            for r in records
        )
        try:
            fd = os.open(self.dead_letter_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            with os.fdopen(fd, "a", encoding="ascii") as out:
                out.write(lines)
            where = str(self.dead_letter_path)
        except OSError as exc:
            where = f"nowhere ({exc})"
        log.error(
            "%d audit record(s) could not be written (%r); their requests were answered %s; "
            "set aside in %s",
            len(records),
            error,
            "from the spool" if answered else "503 could-not-audit",
            where,
        )


class AppendingLog(RecordSink):
    """An audit store: records come from the processes' spools (verifier.service.spool),
    moved in with each spool's progress, and are read back in time order."""

    @abstractmethod
    def moved_upto(self, spool: str) -> int:
        """The id of the last record moved in from the spool named `spool` (0: none)."""

    @abstractmethod
    def _append_moved(
        self, spool: str, records: Sequence[tuple[int, AuditRecord]], upto: int
    ) -> None:
        """In one transaction: append those of `records` (id, record) that come after
        the spool's progress, and move its progress to `upto` (when further)."""

    def append_moved(self, spool: str, records: Sequence[tuple[int, AuditRecord]]) -> int:
        """Append records moved in from a spool, in order, each at most once; the number
        set aside (refused by the log, for themselves).

        Raises:
            Exception: whatever the store raises when it fails as a whole (nothing of
                the batch is appended; the records stay in the spool).
        """
        upto = records[-1][0]
        with self._lock:
            try:
                self._append_moved(spool, records, upto)
                return 0
            except Exception as exc:
                if self._store_failed(exc):
                    raise
        set_aside = 0
        for one in records:  # a record refused: each on its own, the others go in
            with self._lock:
                try:
                    self._append_moved(spool, [one], one[0])
                    continue
                except Exception as exc:
                    if self._store_failed(exc):
                        raise
                    refusal = exc
            # Kept before the spool's progress passes it: a crash between the two can
            # set it aside twice, never lose it.
            self.set_aside([one[1]], refusal, answered=True)
            with self._lock:
                self._append_moved(spool, [], one[0])
            set_aside += 1
        return set_aside

    def append_spool_file(self, spool: str, path: Path, batch: int) -> int | None:
        """Append the records of the spool file at `path` (named `spool`) that come after
        its progress, `batch` at most a transaction, without making an AuditRecord of
        each; the spool's progress after. None when the spool cannot be read, a record
        is refused (`append_moved`, record by record, then tells which), or the store
        has no such way.

        Raises:
            Exception: whatever the store raises when it fails as a whole (nothing of the
                current batch is appended).
        """
        return None

    def query(
        self,
        *,
        licence_id: str | None = None,
        client: str | None = None,
        since: str | None = None,
        limit: int | None = None,
    ) -> list[AuditRecord]:
        """Records matching every filter given, oldest first (`since`: an ISO time or
        date, as normalise_since makes it), the spools' too: they are moved in first.

        Raises:
            Exception: the store's, when the spooled records cannot be moved in (a
                partial answer would look complete).
        """
        from verifier.service.spool import move_spools  # the spool builds on this module

        move_spools(self, everything=True)
        return self._select(licence_id=licence_id, client=client, since=since, limit=limit)

    @abstractmethod
    def _select(
        self,
        *,
        licence_id: str | None,
        client: str | None,
        since: str | None,
        limit: int | None,
    ) -> list[AuditRecord]:
        """The log's records matching every filter given, oldest first."""

    @abstractmethod
    def close(self) -> None:
        """Release the store."""


class AuditLog(AppendingLog):
    """The log file (SQLite, the default store): HOME/service/audit.sqlite."""

    def __init__(self, path: Path) -> None:
        private_database(path)  # 0600 in a 0700 folder (ledger.private)
        super().__init__(path.with_name(path.stem + "-dead-letter.jsonl"))
        # A URI (escaped: '#', '?' and '%' in the home's path are not its parts), so that
        # a spool is attached with mode=rw: one deleted meanwhile is not made again.
        self._db = sqlite3.connect(
            path.absolute().as_uri(), uri=True, isolation_level=None, check_same_thread=False
        )
        self._db.execute("PRAGMA journal_mode=WAL")
        # WAL with synchronous=NORMAL survives a process crash; only a power cut can take
        # the last commits, which is the price of not waiting for the disk per request.
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)

    def _store_failed(self, error: Exception) -> bool:
        # Locked past the busy timeout, read-only, full: the file, not a record.
        return isinstance(error, sqlite3.OperationalError)

    def moved_upto(self, spool: str) -> int:
        with self._lock:
            return self._moved_upto(spool)

    def _moved_upto(self, spool: str) -> int:
        row = self._db.execute("SELECT moved FROM audit_spools WHERE name = ?", (spool,)).fetchone()
        return 0 if row is None else int(row[0])

    def _append_moved(
        self, spool: str, records: Sequence[tuple[int, AuditRecord]], upto: int
    ) -> None:
        with _write_transaction(self._db):
            done = self._moved_upto(spool)
            _insert_chunks(self._db, [record for id_, record in records if id_ > done])
            if upto > done:
                self._db.execute(
                    "INSERT INTO audit_spools (name, moved) VALUES (?, ?) "
                    "ON CONFLICT (name) DO UPDATE SET moved = excluded.moved",
                    (spool, upto),
                )

    def append_spool_file(self, spool: str, path: Path, batch: int) -> int | None:
        """`AppendingLog.append_spool_file`, with SQLite reading the spool itself: no row
        passes through Python.

        Raises:
            sqlite3.OperationalError: the log failed as a whole (locked past the busy
                timeout, read-only, full); nothing of the current batch is appended.
        """
        with self._lock:
            try:
                self._db.execute("ATTACH DATABASE ? AS spool", (spool_uri(path),))
            except sqlite3.Error:  # deleted meanwhile, or not a database
                return None
            try:
                return in_batches(lambda: self._append_from_attached(spool, batch), batch)
            finally:
                self._db.execute("DETACH DATABASE spool")

    def _append_from_attached(self, spool: str, batch: int) -> tuple[int, int] | None:
        """One transaction of `append_spool_file`: the progress after, and the number of
        records appended."""
        db = self._db
        # A deferred transaction whose first statement writes the log: BEGIN IMMEDIATE
        # would take the spool's write lock too, and its writer, which never waits,
        # would answer 503.
        db.execute("BEGIN")
        try:
            db.execute(
                "INSERT INTO main.audit_spools (name, moved) VALUES (?, 0) "
                "ON CONFLICT (name) DO NOTHING",
                (spool,),
            )
            # Read once the log's write lock is held: no other mover moves meanwhile.
            done = self._moved_upto(spool)
            try:
                upto = db.execute(
                    "SELECT max(id) FROM "
                    "(SELECT id FROM spool.audit WHERE id > ? ORDER BY id LIMIT ?)",
                    (done, batch),
                ).fetchone()[0]
            except sqlite3.Error:  # not a spool (yet): no table, or not a database
                db.execute("ROLLBACK")
                return None
            if upto is None:
                db.execute("COMMIT")
                return done, 0
            try:
                count = db.execute(
                    f"INSERT INTO main.audit ({AUDIT_COLUMNS}) SELECT {AUDIT_COLUMNS} "
                    "FROM spool.audit WHERE id > ? AND id <= ? ORDER BY id",
                    (done, upto),
                ).rowcount
            except sqlite3.Error as exc:
                if self._store_failed(exc):
                    raise
                db.execute("ROLLBACK")
                return None
            db.execute("UPDATE main.audit_spools SET moved = ? WHERE name = ?", (upto, spool))
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise
        return upto, count

    def _select(
        self,
        *,
        licence_id: str | None,
        client: str | None,
        since: str | None,
        limit: int | None,
    ) -> list[AuditRecord]:
        sql, args = query_sql("?", licence_id=licence_id, client=client, since=since, limit=limit)
        with self._lock:
            rows = self._db.execute(sql, args).fetchall()
        return [AuditRecord(*row) for row in rows]

    def close(self) -> None:
        """Close the log file."""
        with self._lock:
            self._db.close()


AUDIT_COLUMNS = "time, client, purpose, licence_id, licence_type, verdict, block_height, operation"


def in_batches(transaction: Callable[[], tuple[int, int] | None], batch: int) -> int | None:
    """Run `transaction` (one batch of a spool moved in: the progress after it and the
    number of records appended, or None when they could not be) until a batch comes
    short of `batch`; the progress then, or None."""
    while True:
        moved = transaction()
        if moved is None:
            return None
        progress, count = moved
        if count < batch:
            return progress


def spool_uri(path: Path) -> str:
    """The URI SQLite opens a spool file by: mode=rw, so that a spool deleted meanwhile
    is not made again, empty; escaped, so that '#', '?' and '%' in the home's path are
    text, not the URI's parts."""
    return path.absolute().as_uri() + "?mode=rw"


# Rows an INSERT statement of the SQLite log holds at most (8 values each, below SQLite's
# 32,766 variables): more than a group of requests usually holds. One prepared statement
# per count, kept by the connection (group sizes cluster, so few are made).
_ROWS_A_STATEMENT = 500


def insert_records(db: sqlite3.Connection, records: Sequence[AuditRecord]) -> int | None:
    """Append `records` to the table `audit` of a SQLite file in one transaction; the
    id of the last one (None: no records)."""
    if not records:
        return None
    if len(records) <= _ROWS_A_STATEMENT:
        # One statement, its own transaction (all its rows or none): a plain INSERT
        # takes the write lock as it starts, waiting for it as BEGIN IMMEDIATE does.
        return db.execute(_insert_sql(len(records)), [v for r in records for v in r]).lastrowid
    with _write_transaction(db):
        return _insert_chunks(db, records)


@contextlib.contextmanager
def _write_transaction(db: sqlite3.Connection) -> Iterator[None]:
    """A transaction holding the write lock from its start, committed when the block
    ends, rolled back when it raises."""
    db.execute("BEGIN IMMEDIATE")
    try:
        yield
        db.execute("COMMIT")
    except BaseException:
        # Also after a failed COMMIT (a full disk): a transaction left open would make
        # every later BEGIN fail.
        if db.in_transaction:
            db.execute("ROLLBACK")
        raise


def _insert_chunks(db: sqlite3.Connection, records: Sequence[AuditRecord]) -> int | None:
    last = None
    for start in range(0, len(records), _ROWS_A_STATEMENT):
        chunk = records[start : start + _ROWS_A_STATEMENT]
        last = db.execute(_insert_sql(len(chunk)), [v for r in chunk for v in r]).lastrowid
    return last


@lru_cache(maxsize=64)
def _insert_sql(rows: int) -> str:
    return f"INSERT INTO audit ({AUDIT_COLUMNS}) VALUES " + ",".join(
        ["(?, ?, ?, ?, ?, ?, ?, ?)"] * rows
    )


def query_sql(
    placeholder: str,
    *,
    licence_id: str | None,
    client: str | None,
    since: str | None,
    limit: int | None,
) -> tuple[str, list[object]]:
    """The audit query for the filters given (each one ANDed), oldest first, and its
    arguments; `placeholder` is the driver's ("?" for SQLite, "%s" for psycopg)."""
    where: list[str] = []
    args: list[object] = []
    for condition, value in (
        ("licence_id =", None if licence_id is None else licence_id.lower()),
        ("client =", client),
        ("time >=", since),
    ):
        if value is not None:
            where.append(f"{condition} {placeholder}")
            args.append(value)
    sql = f"SELECT {AUDIT_COLUMNS} FROM audit"
    if where:
        sql += " WHERE " + " AND ".join(where)
    sql += " ORDER BY time, id"
    if limit is not None:
        sql += f" LIMIT {placeholder}"
        args.append(int(limit))
    return sql, args


def to_csv(records: Iterable[AuditRecord]) -> str:
    """Records as CSV with a header row (snake_case columns)."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=AuditRecord._fields, lineterminator="\n")
    writer.writeheader()
    for record in records:
        writer.writerow(record._asdict())
    return out.getvalue()


def to_jsonl(records: Iterable[AuditRecord]) -> str:
    """Records as JSON lines."""
    return "".join(json.dumps(r.to_json(), ensure_ascii=False) + "\n" for r in records)


def normalise_since(value: str) -> str:
    """An ISO date or time as the log's UTC text, for `time >= since` comparisons.

    A date or a time without a zone is taken in China Standard Time (UTC+8).
    """
    try:
        moment = dt.datetime.fromisoformat(value)
    except ValueError as exc:
        raise InvalidRequest(
            "not a time", [FieldError("since", f"{value!r} is not an ISO date or time")]
        ) from exc
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.timezone(dt.timedelta(hours=8)))
    return moment.astimezone(dt.UTC).isoformat(timespec="microseconds")
