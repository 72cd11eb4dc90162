"""The audit log: who verified which licence, when, for what, and what they were told.

One row per verified licence in HOME/service/audit.sqlite: time (UTC), client (the API
key's name, or `anonymous`), purpose (the matter or case number the caller gave),
licence id, licence type, verdict (or COULD_NOT_CHECK), the block height the answer
reflected, and the operation. No field of the licence is ever written, nor the caller's
address or key: the licence id is a hash that identifies the licence without saying what
it says.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import sqlite3
import threading
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from verifier.service.errors import FieldError, InvalidRequest

COULD_NOT_CHECK = "COULD_NOT_CHECK"
FLUSH_DELAY_S = 0.05

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


@dataclass(frozen=True)
class AuditRecord:
    """One verification, as the log keeps it."""

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


class AuditLog:
    """The log file. Records are written in one transaction per request, or, with
    `buffer()`, gathered for up to `FLUSH_DELAY_S` and written together (measured: a
    commit per request cost 20 to 200 µs here, a large share of a verification)."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        # WAL with synchronous=NORMAL survives a process crash; only a power cut can take
        # the last commits, which is the price of not waiting for the disk per request.
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)
        self._lock = threading.Lock()  # the connection, and the order of writes
        self._pending_lock = threading.Lock()
        self._pending: list[AuditRecord] = []

    def buffer(self, records: Sequence[AuditRecord]) -> bool:
        """Keep records for the next flush; True when a flush should be scheduled (the
        buffer was empty), so that one flush is pending at a time."""
        with self._pending_lock:
            first = not self._pending
            self._pending.extend(records)
        return first and bool(records)

    def flush(self) -> None:
        """Write the buffered records (from any thread).

        The buffer is taken while holding the write lock: a reader that flushes first
        (the holder's query) waits for a flush already under way, and so sees every
        record buffered before it asked.
        """
        with self._lock:
            with self._pending_lock:
                pending, self._pending = self._pending, []
            try:
                self._write(pending)
            except BaseException:
                # Kept, ahead of anything buffered meanwhile, for the next flush.
                with self._pending_lock:
                    self._pending[:0] = pending
                raise

    def record(self, records: Sequence[AuditRecord]) -> None:
        """Append records at once (one transaction)."""
        with self._lock:
            self._write(records)

    def _write(self, records: Sequence[AuditRecord]) -> None:
        if not records:
            return
        rows = [
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
            for r in records
        ]
        self._db.execute("BEGIN")
        try:
            self._db.executemany(
                "INSERT INTO audit (time, client, purpose, licence_id, licence_type, "
                "verdict, block_height, operation) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                rows,
            )
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def query(
        self,
        *,
        licence_id: str | None = None,
        client: str | None = None,
        since: str | None = None,
        limit: int | None = None,
    ) -> list[AuditRecord]:
        """Records matching every filter given, oldest first (`since`: an ISO time or date)."""
        self.flush()
        where, args = [], []
        if licence_id is not None:
            where.append("licence_id = ?")
            args.append(licence_id.lower())
        if client is not None:
            where.append("client = ?")
            args.append(client)
        if since is not None:
            where.append("time >= ?")
            args.append(since)
        sql = (
            "SELECT time, client, purpose, licence_id, licence_type, verdict, block_height, "
            "operation FROM audit"
        )
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY time, id"
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        with self._lock:
            rows = self._db.execute(sql, args).fetchall()
        return [AuditRecord(*row) for row in rows]

    def close(self) -> None:
        """Write what is buffered and close the log file."""
        self.flush()
        self._db.close()


def to_csv(records: Iterable[AuditRecord]) -> str:
    """Records as CSV with a header row (snake_case columns)."""
    out = io.StringIO()
    names = list(AuditRecord.__dataclass_fields__)
    writer = csv.DictWriter(out, fieldnames=names, lineterminator="\n")
    writer.writeheader()
    for record in records:
        writer.writerow(asdict(record))
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
