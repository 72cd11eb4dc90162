"""The agency's records of what it issued: HOME/records.sqlite.

Per batch: the digest of its input, its root, count, chain, registry, state (PLANNED ->
ANCHORED -> WRITTEN), transaction and block. Per licence: type, number, licence id
(leaf), batch, position in the batch, secret, holder credit code, status.

Nothing personal is kept here: holder personal fields live only in the documents
themselves. The credit code is the enterprise's public identifier. The secrets are kept
so that a re-run reproduces byte-identical documents (a secret alone reveals no field);
the file is nevertheless readable by its owner only (mode 0600, like the keystores),
because with a document's fields a secret allows presentations to be made.

Every write is one SQLite transaction in FULL synchronous mode, so a crash leaves
either the whole plan of a batch or none of it.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from enum import StrEnum
from itertools import repeat
from pathlib import Path

from issuer.errors import IssuerError
from ledger.private import private_database

RECORDS_FILE = "records.sqlite"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS batches (
    id INTEGER PRIMARY KEY,
    digest BLOB NOT NULL UNIQUE,
    licence_type TEXT NOT NULL,
    chain_id INTEGER NOT NULL,
    registry TEXT NOT NULL,
    root BLOB NOT NULL,
    count INTEGER NOT NULL,
    state TEXT NOT NULL,
    tx_hash TEXT,
    block INTEGER,
    out_dir TEXT
);
CREATE TABLE IF NOT EXISTS licences (
    licence_type TEXT NOT NULL,
    number TEXT NOT NULL,
    licence_id BLOB NOT NULL,
    batch_id INTEGER NOT NULL REFERENCES batches(id) ON DELETE CASCADE,
    position INTEGER NOT NULL,
    secret BLOB NOT NULL,
    holder_code TEXT,
    status TEXT NOT NULL DEFAULT 'ACTIVE',
    reason INTEGER,
    successor BLOB,
    status_tx TEXT,
    status_block INTEGER,
    PRIMARY KEY (licence_type, number)
);
CREATE INDEX IF NOT EXISTS licences_by_id ON licences(licence_id);
CREATE INDEX IF NOT EXISTS licences_by_holder ON licences(holder_code);
CREATE INDEX IF NOT EXISTS licences_by_batch ON licences(batch_id, position);
"""


class RecordsError(IssuerError, LookupError):
    """A licence or batch is not in the records (or the records are unusable)."""


class BatchState(StrEnum):
    """How far a batch got: planned (recorded), anchored (on chain), written (to disk)."""

    PLANNED = "PLANNED"
    ANCHORED = "ANCHORED"
    WRITTEN = "WRITTEN"


@dataclass(frozen=True)
class BatchRecord:
    """One batch as recorded."""

    id: int
    digest: bytes
    licence_type: str
    chain_id: int
    registry: str
    root: bytes
    count: int
    state: BatchState
    tx_hash: str | None
    block: int | None
    out_dir: str | None


@dataclass(frozen=True)
class LicenceRecord:
    """One licence as recorded."""

    licence_type: str
    number: str
    licence_id: bytes
    batch_id: int
    position: int
    holder_code: str | None
    status: str
    reason: int | None
    successor: bytes | None
    root: bytes
    tx_hash: str | None  # the batch's anchoring transaction
    block: int | None
    status_tx: str | None = None  # the transaction of the last status change, when known
    status_block: int | None = None


@dataclass(frozen=True)
class PlannedLicences:
    """The licences of a batch being planned, column by column, in batch order."""

    numbers: list[str]
    licence_ids: list[bytes]
    secrets: list[bytes]
    holder_codes: list[str | None]


_LICENCE_COLUMNS = (
    "l.licence_type, l.number, l.licence_id, l.batch_id, l.position, l.holder_code, l.status, "
    "l.reason, l.successor, b.root, b.tx_hash, b.block, l.status_tx, l.status_block"
)


class Records:
    """The records file of one agency home."""

    def __init__(self, path: Path) -> None:
        # Private before SQLite opens it; SQLite gives its journal the same mode.
        private_database(path)
        self.path = path
        try:
            self._db = sqlite3.connect(path, isolation_level=None)
            self._db.execute("PRAGMA foreign_keys = ON")
            self._db.execute("PRAGMA synchronous = FULL")
            self._db.executescript(_SCHEMA)
            self._add_status_transaction()
        except sqlite3.DatabaseError as exc:
            raise RecordsError(f"{path} is not a usable records file: {exc}") from None

    def _add_status_transaction(self) -> None:
        # Records written before status changes kept their transaction.
        columns = {str(r[1]) for r in self._db.execute("PRAGMA table_info(licences)")}
        for name, kind in (("status_tx", "TEXT"), ("status_block", "INTEGER")):
            if name not in columns:
                self._db.execute(f"ALTER TABLE licences ADD COLUMN {name} {kind}")

    @classmethod
    def of_home(cls, home: Path) -> Records:
        """HOME/records.sqlite."""
        return cls(home / RECORDS_FILE)

    def close(self) -> None:
        """Close the file."""
        self._db.close()

    def __enter__(self) -> Records:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield self._db
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    # ---- batches ---------------------------------------------------------------------

    def batch_by_digest(self, digest: bytes) -> BatchRecord | None:
        """The batch planned from this input digest, if any."""
        row = self._db.execute("SELECT * FROM batches WHERE digest = ?", (digest,)).fetchone()
        return _batch(row) if row else None

    def batch(self, batch_id: int) -> BatchRecord:
        """Batch `batch_id`."""
        row = self._db.execute("SELECT * FROM batches WHERE id = ?", (batch_id,)).fetchone()
        if row is None:
            raise RecordsError(f"no batch {batch_id} in the records")
        return _batch(row)

    def batches(self) -> list[BatchRecord]:
        """Every batch, oldest first."""
        return [_batch(r) for r in self._db.execute("SELECT * FROM batches ORDER BY id")]

    def secrets_of(self, batch_id: int) -> list[bytes]:
        """The secrets of a batch's licences, in batch order."""
        rows = self._db.execute(
            "SELECT secret FROM licences WHERE batch_id = ? ORDER BY position", (batch_id,)
        )
        return [bytes(r[0]) for r in rows]

    def plan(
        self,
        *,
        digest: bytes,
        licence_type: str,
        chain_id: int,
        registry: str,
        root: bytes,
        licences: PlannedLicences,
        out_dir: str,
    ) -> BatchRecord:
        """Record a batch and its licences before anything is sent (one transaction)."""
        with self._transaction() as db:
            cursor = db.execute(
                "INSERT INTO batches (digest, licence_type, chain_id, registry, root, count, "
                "state, out_dir) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    digest,
                    licence_type,
                    chain_id,
                    registry,
                    root,
                    len(licences.numbers),
                    BatchState.PLANNED.value,
                    out_dir,
                ),
            )
            batch_id = int(cursor.lastrowid or 0)
            count = len(licences.numbers)
            # The rows are zipped in C, without a Python frame per licence (a batch is
            # ten thousand rows, planned on the thread that anchors).
            db.executemany(
                "INSERT INTO licences (licence_type, number, licence_id, batch_id, position, "
                "secret, holder_code) VALUES (?, ?, ?, ?, ?, ?, ?)",
                zip(
                    repeat(licence_type, count),
                    licences.numbers,
                    licences.licence_ids,
                    repeat(batch_id, count),
                    range(count),
                    licences.secrets,
                    licences.holder_codes,
                    strict=True,
                ),
            )
        return self.batch(batch_id)

    def forget_batch(self, batch_id: int) -> None:
        """Delete a batch that was planned but never anchored, with its licences."""
        with self._transaction() as db:
            db.execute("DELETE FROM licences WHERE batch_id = ?", (batch_id,))
            db.execute("DELETE FROM batches WHERE id = ?", (batch_id,))

    def mark_anchored(self, batch_id: int, tx_hash: str, block: int) -> None:
        """The batch's anchoring transaction is on chain."""
        self._db.execute(
            "UPDATE batches SET state = ?, tx_hash = ?, block = ? WHERE id = ?",
            (BatchState.ANCHORED.value, tx_hash, block, batch_id),
        )

    def mark_written(self, batch_id: int, out_dir: str) -> None:
        """The batch's documents and manifest are on disk in `out_dir`."""
        self._db.execute(
            "UPDATE batches SET state = ?, out_dir = ? WHERE id = ?",
            (BatchState.WRITTEN.value, out_dir, batch_id),
        )

    # ---- licences --------------------------------------------------------------------

    def issued_numbers(self, licence_type: str, numbers: Iterable[str]) -> dict[str, int]:
        """Of `numbers`, those already recorded for `licence_type` -> their batch id."""
        found: dict[str, int] = {}
        wanted = list(numbers)
        for start in range(0, len(wanted), 500):  # SQLite's bound-parameter limit
            chunk = wanted[start : start + 500]
            marks = ",".join("?" * len(chunk))
            query = (
                f"SELECT number, batch_id FROM licences WHERE licence_type = ? "
                f"AND number IN ({marks})"
            )
            for number, batch_id in self._db.execute(query, (licence_type, *chunk)):
                found[str(number)] = int(batch_id)
        return found

    def find(self, reference: str) -> list[LicenceRecord]:
        """The licences with this number (any type) or this licence id (0x + 32 hex)."""
        text = reference.strip()
        if text.lower().startswith("0x"):
            try:
                licence_id = bytes.fromhex(text[2:])
            except ValueError:
                return []
            where, args = "l.licence_id = ?", (licence_id,)
        else:
            where, args = "l.number = ?", (text,)  # type: ignore[assignment]
        return self._licences(where, args)

    def licences(
        self,
        *,
        status: str | None = None,
        holder: str | None = None,
        number: str | None = None,
        batch_id: int | None = None,
    ) -> list[LicenceRecord]:
        """Licences matching every filter given, in issuing order."""
        clauses: list[str] = []
        args: list[object] = []
        for column, value in (
            ("l.status", status),
            ("l.holder_code", holder),
            ("l.number", number),
            ("l.batch_id", batch_id),
        ):
            if value is not None:
                clauses.append(f"{column} = ?")
                args.append(value)
        return self._licences(" AND ".join(clauses) or "1", tuple(args))

    def set_status(
        self,
        licence_ids: Iterable[bytes],
        status: str,
        reason: int,
        successor: bytes | None,
        *,
        tx_hash: str | None = None,
        block: int | None = None,
    ) -> None:
        """Record a status change the chain has confirmed, in transaction `tx_hash` of
        `block` (None: the chain showed it already; a licence that had this status keeps
        the transaction recorded then)."""
        with self._transaction() as db:
            db.executemany(
                "UPDATE licences SET "
                "status_tx = CASE WHEN :tx IS NULL AND status = :status THEN status_tx "
                "ELSE :tx END, "
                "status_block = CASE WHEN :tx IS NULL AND status = :status THEN status_block "
                "ELSE :block END, "
                "status = :status, reason = :reason, successor = :successor "
                "WHERE licence_id = :id",
                (
                    {
                        "tx": tx_hash,
                        "block": block,
                        "status": status,
                        "reason": reason,
                        "successor": successor,
                        "id": i,
                    }
                    for i in licence_ids
                ),
            )

    def _licences(self, where: str, args: tuple[object, ...]) -> list[LicenceRecord]:
        query = (
            f"SELECT {_LICENCE_COLUMNS} FROM licences l JOIN batches b ON b.id = l.batch_id "
            f"WHERE {where} ORDER BY l.batch_id, l.position"
        )
        return [
            LicenceRecord(
                licence_type=str(r[0]),
                number=str(r[1]),
                licence_id=bytes(r[2]),
                batch_id=int(r[3]),
                position=int(r[4]),
                holder_code=r[5],
                status=str(r[6]),
                reason=r[7],
                successor=bytes(r[8]) if r[8] is not None else None,
                root=bytes(r[9]),
                tx_hash=r[10],
                block=r[11],
                status_tx=r[12],
                status_block=r[13],
            )
            for r in self._db.execute(query, args)
        ]


def _batch(row: tuple[object, ...]) -> BatchRecord:
    (id_, digest, licence_type, chain_id, registry, root, count, state, tx, block, out) = row
    return BatchRecord(
        id=int(id_),  # type: ignore[call-overload]
        digest=bytes(digest),  # type: ignore[call-overload]
        licence_type=str(licence_type),
        chain_id=int(chain_id),  # type: ignore[call-overload]
        registry=str(registry),
        root=bytes(root),  # type: ignore[call-overload]
        count=int(count),  # type: ignore[call-overload]
        state=BatchState(str(state)),
        tx_hash=str(tx) if tx is not None else None,
        block=int(block) if block is not None else None,  # type: ignore[call-overload]
        out_dir=str(out) if out is not None else None,
    )
