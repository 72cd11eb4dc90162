"""The audit log: who verified which licence, when, for what, and what they were told.

One row per verified licence, in HOME/service/audit.sqlite or, with a database setting,
in PostgreSQL shared by every replica (verifier.service.stores): time (UTC), client (the API
key's name, or `anonymous`), purpose (the matter or case number the caller gave),
licence id, licence type, verdict (or COULD_NOT_CHECK), the block height the answer
reflected, and the operation. No field of the licence is ever written, nor the caller's
address or key: the licence id is a hash that identifies the licence without saying what
it says.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import datetime as dt
import io
import json
import logging
import os
import queue
import sqlite3
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Sequence
from functools import lru_cache
from pathlib import Path
from typing import NamedTuple

from ledger.private import private_database
from verifier.service.errors import CouldNotAudit, FieldError, InvalidRequest

COULD_NOT_CHECK = "COULD_NOT_CHECK"
# The licence id of a record whose document did not prove to be that licence (its
# integrity or anchor check failed, or nothing could be checked): the id it claims
# follows, but it is filed under no licence, so nobody can write another's history.
UNPROVEN = "unproven:"

log = logging.getLogger("elicence.service")
# What the caller is told; the reason goes to the service log, not to the client.
_NOT_STORED = (
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


class AppendingLog(ABC):
    """What every audit store shares: records are appended in transactions, several
    requests' records at a time (group commit, see AuditWriter); a record that cannot be
    written is set aside in the dead-letter file (`dead_letter_path`, local to this
    process's home) rather than blocking the others. Subclasses say how a transaction is
    written, which failures are the store's as a whole, and how records are read back."""

    dead_letter_path: Path

    def __init__(self, dead_letter_path: Path) -> None:
        self.dead_letter_path = dead_letter_path
        self._lock = threading.Lock()  # the connection, and the order of writes

    @abstractmethod
    def _write(self, records: Sequence[AuditRecord]) -> None:
        """Append `records` in one transaction, or raise and append none."""

    @abstractmethod
    def _store_failed(self, error: Exception) -> bool:
        """Whether `error` is the store's as a whole (no record could be written), not a
        record's."""

    @abstractmethod
    def query(
        self,
        *,
        licence_id: str | None = None,
        client: str | None = None,
        since: str | None = None,
        limit: int | None = None,
    ) -> list[AuditRecord]:
        """Records matching every filter given, oldest first (`since`: an ISO time or
        date, as normalise_since makes it)."""

    @abstractmethod
    def close(self) -> None:
        """Release the store."""

    def record_groups(self, groups: Sequence[Sequence[AuditRecord]]) -> list[Exception | None]:
        """Append several requests' records in one transaction (from any thread); for
        each group, None once written, or why it could not be.

        When the transaction fails for a record (a value it cannot hold, a constraint
        or trigger refusing it), each group is tried on its own, so that the record
        costs only its own request; when the store itself fails (a file locked past the
        busy timeout, read-only or full; a database that cannot be reached), every group
        fails at once rather than waiting out the failure once per group. A group that is
        not written is set aside.
        """
        with self._lock:
            try:
                self._write([r for group in groups for r in group])
            except Exception as exc:  # whatever the cause, the records go unwritten
                first: Exception = exc
            else:
                return [None] * len(groups)
            results: list[Exception | None] = []
            for group in groups:
                if len(groups) == 1 or self._store_failed(first):
                    error: Exception | None = first
                else:
                    try:
                        self._write(group)
                        error = None
                    except Exception as exc:
                        error = exc
                results.append(error)
        for group, error in zip(groups, results, strict=True):
            if error is not None:
                self.set_aside(group, error)
        return results

    def set_aside(self, records: Sequence[AuditRecord], error: BaseException) -> None:
        """Keep records the log refused in the dead-letter file (JSON lines, mode 0600),
        with the reason, and say so in the service log."""
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
            "%d audit record(s) could not be written (%r); their requests were answered "
            "503 could-not-audit; set aside in %s",
            len(records),
            error,
            where,
        )


class AuditLog(AppendingLog):
    """The log file (SQLite, the default store): HOME/service/audit.sqlite."""

    def __init__(self, path: Path) -> None:
        private_database(path)  # 0600 in a 0700 folder (ledger.private)
        super().__init__(path.with_name(path.stem + "-dead-letter.jsonl"))
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        # WAL with synchronous=NORMAL survives a process crash; only a power cut can take
        # the last commits, which is the price of not waiting for the disk per request.
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)

    def _store_failed(self, error: Exception) -> bool:
        # Locked past the busy timeout, read-only, full: the file, not a record.
        return isinstance(error, sqlite3.OperationalError)

    def _write(self, records: Sequence[AuditRecord]) -> None:
        if not records:
            return
        if len(records) <= _ROWS_A_STATEMENT:
            # One statement, its own transaction (all its rows or none): the writer
            # thread takes the GIL back once a group, where it did once a row and for
            # BEGIN and COMMIT, each time waiting for the busy event loop to let it go
            # (docs/benchmarks.md, issue 17). A plain INSERT takes the write lock as it
            # starts, waiting for it as BEGIN IMMEDIATE does.
            self._db.execute(_insert_sql(len(records)), [v for r in records for v in r])
            return
        self._db.execute("BEGIN IMMEDIATE")
        try:
            for start in range(0, len(records), _ROWS_A_STATEMENT):
                chunk = records[start : start + _ROWS_A_STATEMENT]
                self._db.execute(_insert_sql(len(chunk)), [v for r in chunk for v in r])
            self._db.execute("COMMIT")
        except BaseException:
            # Also after a failed COMMIT (a full disk): a transaction left open would
            # make every later BEGIN fail.
            if self._db.in_transaction:
                self._db.execute("ROLLBACK")
            raise

    def query(
        self,
        *,
        licence_id: str | None = None,
        client: str | None = None,
        since: str | None = None,
        limit: int | None = None,
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
# Rows an INSERT statement of the SQLite log holds at most (8 values each, below SQLite's
# 32,766 variables): more than a group of requests usually holds. One prepared statement
# per count, kept by the connection (group sizes cluster, so few are made).
_ROWS_A_STATEMENT = 500


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


class AuditWriter:
    """Group commit: each request hands its records over and waits until they are
    written; one thread of its own writes them, one transaction at a time, each taking
    every record handed over meanwhile.

    A commit per request cost 20 to 200 µs here, a large share of a verification; with
    the group commit a request waits for about one write, and the event loop never waits
    on the disk. No verdict leaves before its record is stored: a request whose records
    cannot be written gets CouldNotAudit instead (503), and only that request.

    The writer thread lives as long as the writer (started by the first write, stopped
    by `close`): per group, the loop is woken once (call_soon_threadsafe) with every
    outcome of the group, where a hand-off to the loop's executor cost a task, an
    executor future and its chaining per group, and `asyncio.shield` a future more per
    request (issue 17's profile: 13.8 % of the samples in that hand-off).
    """

    def __init__(
        self,
        log: AppendingLog,
        on_set_aside: Callable[[int], None],
        backlog: Callable[[int], None] | None = None,
    ) -> None:
        """`on_set_aside(n)`: n records were set aside; `backlog(n)`: n records more
        (or fewer, when negative) wait to be stored."""
        self._log = log
        self._on_set_aside = on_set_aside
        self._backlog = backlog
        self._lock = threading.Lock()  # _pending, _idle, _thread
        self._pending: list[tuple[Sequence[AuditRecord], asyncio.Future[None]]] = []
        self._idle = True  # the thread waits for a wake-up (none is on its way)
        self._wake: queue.SimpleQueue[bool] = queue.SimpleQueue()  # True: go on; False: stop
        self._thread: threading.Thread | None = None
        self._closed = False

    async def write(self, records: Sequence[AuditRecord]) -> None:
        """Return once `records` are stored; CouldNotAudit when they cannot be."""
        if not records:
            return
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        with self._lock:
            if self._closed:
                raise CouldNotAudit(_NOT_STORED)
            if self._backlog is not None:
                self._backlog(len(records))
            self._pending.append((records, done))
            wake, self._idle = self._idle, False
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="elicence-audit-writer", daemon=True
                )
                self._thread.start()
        if wake:
            self._wake.put(True)
        # A caller that goes away cancels `done`; its records are written all the same.
        await done

    def close(self) -> None:
        """Write what was handed over, then stop the thread (a later write gets
        CouldNotAudit)."""
        with self._lock:
            self._closed = True
            thread = self._thread
        if thread is not None:
            self._wake.put(False)
            thread.join()

    def _run(self) -> None:
        while True:
            going_on = self._wake.get()
            while True:
                with self._lock:
                    batch, self._pending = self._pending, []
                    if not batch:
                        self._idle = True
                        break
                self._write(batch)
            if not going_on:
                return

    def _write(self, batch: list[tuple[Sequence[AuditRecord], asyncio.Future[None]]]) -> None:
        groups = [records for records, _ in batch]
        errors: list[Exception | None] = [CouldNotAudit(_NOT_STORED)] * len(batch)
        try:
            try:
                errors = self._log.record_groups(groups)
            except Exception as exc:  # a bug in the store: no record is known written
                errors = [exc] * len(batch)
                for group in groups:
                    self._log.set_aside(group, exc)
            refused = sum(len(g) for g, e in zip(groups, errors, strict=True) if e is not None)
            if refused:
                self._on_set_aside(refused)
        except BaseException:
            # Whatever happened, the thread goes on and every request of the batch is
            # answered (never a request waiting for ever).
            log.exception("the audit writer failed")
        finally:
            if self._backlog is not None:
                self._backlog(-sum(len(g) for g in groups))
            _answer(batch, [None if e is None else CouldNotAudit(_NOT_STORED) for e in errors])


def _answer(
    batch: list[tuple[Sequence[AuditRecord], asyncio.Future[None]]],
    outcomes: list[CouldNotAudit | None],
) -> None:
    """Settle each request's future on its own loop, with one call a loop (usually one
    loop; tests may run the app on several, one after another)."""
    by_loop: dict[asyncio.AbstractEventLoop, list[int]] = {}
    for position, (_, done) in enumerate(batch):
        by_loop.setdefault(done.get_loop(), []).append(position)
    for loop, positions in by_loop.items():
        with contextlib.suppress(RuntimeError):  # a loop closed meanwhile: nobody waits
            loop.call_soon_threadsafe(
                _settle, [batch[i][1] for i in positions], [outcomes[i] for i in positions]
            )


def _settle(futures: list[asyncio.Future[None]], outcomes: Sequence[CouldNotAudit | None]) -> None:
    for done, error in zip(futures, outcomes, strict=True):
        if done.done():  # its caller went away
            continue
        if error is None:
            done.set_result(None)
        else:
            done.set_exception(error)


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
