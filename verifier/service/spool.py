"""The audit spool: where a worker stores each request's audit record before answering.

Waiting for the shared, indexed audit log cost a replica about a third of its
throughput (docs/benchmarks.md, 2026-12-03 afternoon): a writer thread that takes the
GIL from the busy event loop, and for each group three indexes to update, or a
round trip to PostgreSQL. So each process appends its records to a spool file of its
own (HOME/service/audit-spool/NAME.sqlite: SQLite, one table, no index), on the event
loop itself, once per loop step for every request of that step; a request is answered
only once its record is committed there. A mover moves the spools' records into the
audit log (audit.AppendingLog: the SQLite file or PostgreSQL) in large batches, in the
background, every MOVE_INTERVAL_S, and before every read of the log, so that a reader
sees every answered request.

- No record is moved twice: the log keeps, per spool, the id of the last record moved,
  and moves the records after it and that id in one transaction (any number of movers,
  in any process, can race).
- No answered record is lost: the spool is committed (WAL, synchronous=NORMAL) before
  the answer, so it survives the process being killed; a spool whose writer is gone (its
  lock file is free) is an orphan, moved by any other process's mover or reader, and
  deleted once all of it is moved. A process spools into a new file when it starts and
  every ROTATE_RECORDS records, or sooner once its WAL passes ROTATE_WAL_BYTES.
- A record that the spool refuses costs its own request a 503 could-not-audit, as the
  log's refusal did before; one that the log refuses when it is moved is set aside in
  the dead-letter file, with the reason, and the records after it move on.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from ledger.private import private_database, private_folder
from verifier.service.audit import (
    AUDIT_COLUMNS,
    NOT_STORED,
    AppendingLog,
    AuditRecord,
    RecordSink,
    insert_records,
    spool_uri,
)
from verifier.service.errors import CouldNotAudit

log = logging.getLogger("elicence.service")

SPOOL_FOLDER = "audit-spool"
# A process leaves its spool for a new one after this many records, or once the spool's
# WAL passes ROTATE_WAL_BYTES (looked at every WAL_LOOK_RECORDS records): under steady
# load its writer never pauses long enough for a checkpoint to finish, so the WAL is
# never started again and grew to 110-130 MB a spool (2026-12-03 night).
ROTATE_RECORDS = 200_000
ROTATE_WAL_BYTES = 32 * 1024 * 1024
WAL_LOOK_RECORDS = 1_000
MOVE_INTERVAL_S = 0.25
# Records one move transaction takes at most: enough to keep up with a busy replica at
# MOVE_INTERVAL_S, few enough that a transaction stays short.
MOVE_BATCH = 20_000
# How often the mover copies a live spool's WAL back into it (a checkpoint syncs the
# file, twice: at every pass, that was half the mover's CPU). Orphans are not
# checkpointed: they are deleted once moved.
CHECKPOINT_INTERVAL_S = 1.0

_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS audit (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    {AUDIT_COLUMNS}
);
"""


def spool_folder(service_dir: Path) -> Path:
    """Where the processes of a home spool their audit records."""
    return service_dir / SPOOL_FOLDER


class SpoolFile(RecordSink):
    """One process's spool file, written by that process only, while it holds the lock
    file beside it (NAME.lock): the lock tells movers that the writer is alive."""

    def __init__(self, folder: Path) -> None:
        private_folder(folder)
        self.name = uuid.uuid4().hex
        self.path = folder / f"{self.name}.sqlite"
        super().__init__(folder.parent / "audit-dead-letter.jsonl")
        self._lock_fd = os.open(folder / f"{self.name}.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX)
            self._db = self._open()
        except BaseException:
            os.close(self._lock_fd)  # an empty orphan, for the movers to delete
            raise
        self.records = 0
        self.last_id = 0  # of the last record committed
        self._wal_looked_at = 0  # self.records when the WAL's size was last looked at

    def _open(self) -> sqlite3.Connection:
        private_database(self.path)  # 0600, as every file of the home (ledger.private)
        # timeout=0: nobody else writes this file, so a lock held on it is a fault to
        # report at once (503), not to wait out on the event loop.
        db = sqlite3.connect(self.path, isolation_level=None, timeout=0, check_same_thread=False)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            # The mover checkpoints, in its thread: copying the WAL back is not the loop's
            # work.
            db.execute("PRAGMA wal_autocheckpoint=0")
            db.executescript(_SCHEMA)
        except BaseException:
            db.close()
            raise
        return db

    def _store_failed(self, error: Exception) -> bool:
        return isinstance(error, sqlite3.OperationalError)

    def record_groups(self, groups: Sequence[Sequence[AuditRecord]]) -> list[Exception | None]:
        """Append several requests' records in one transaction; for each group, None
        once written, or why it could not be.

        When the transaction fails for a record (a value it cannot hold, a constraint
        or trigger refusing it), each group is tried on its own, so that the record
        costs only its own request; when the file itself fails (locked by someone else,
        read-only or full), every group fails at once rather than once per group. A group
        that is not written is set aside.
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

    def _write(self, records: Sequence[AuditRecord]) -> None:
        last = insert_records(self._db, records)
        self.records += len(records)
        if last is not None:
            self.last_id = last

    def full(self) -> bool:
        """Whether it is time to leave this spool for a new one."""
        if self.records >= ROTATE_RECORDS:
            return True
        if self.records - self._wal_looked_at < WAL_LOOK_RECORDS:
            return False
        self._wal_looked_at = self.records
        try:
            return Path(f"{self.path}-wal").stat().st_size >= ROTATE_WAL_BYTES
        except OSError:
            return False

    def close(self) -> None:
        """Close the file and free its lock: from now on it is an orphan to move."""
        with self._lock:
            self._db.close()
            os.close(self._lock_fd)


class AuditWriter:
    """Stores each request's records in this process's spool before the request is
    answered: requests hand their records over, and once per event-loop step all the
    records handed over are committed in one statement, on the loop (no thread: waking
    one and handing the outcome back cost more than the write). A background mover
    moves them on into the audit log."""

    def __init__(
        self,
        audit: AppendingLog,
        on_set_aside: Callable[[int], None],
        backlog: Callable[[float], None] | None = None,
    ) -> None:
        """`on_set_aside(n)`: n records were set aside; `backlog(n)`: n records of this
        process's spool are not in the log yet (told after each move)."""
        self._audit = audit
        self._on_set_aside = on_set_aside
        self._backlog = backlog
        self._pending: list[tuple[Sequence[AuditRecord], asyncio.Future[None]]] = []
        self._spool: SpoolFile | None = None
        self._mover: SpoolMover | None = None
        self._closed = False
        # The loop a flush is scheduled on (None: none is): an app run on one loop after
        # another (tests) must not wait for a flush the closed loop will never run.
        self._flush_loop: asyncio.AbstractEventLoop | None = None

    async def write(self, records: Sequence[AuditRecord]) -> None:
        """Return once `records` are stored; CouldNotAudit when they cannot be."""
        if not records:
            return
        if self._closed:
            raise CouldNotAudit(NOT_STORED)
        loop = asyncio.get_running_loop()
        done: asyncio.Future[None] = loop.create_future()
        if self._flush_loop is not loop:
            self._flush_loop = loop
            loop.call_soon(self._flush)
        self._pending.append((records, done))
        await done

    def _flush(self) -> None:
        self._flush_loop = None
        batch, self._pending = self._pending, []
        if not batch:
            return
        groups = [records for records, _ in batch]
        try:
            errors = self._spool_file().record_groups(groups)
        except Exception as exc:  # the spool could not even be made
            errors = [exc] * len(batch)
            for group in groups:
                self._audit.set_aside(group, exc)
        refused = sum(len(g) for g, e in zip(groups, errors, strict=True) if e is not None)
        if refused:
            self._on_set_aside(refused)
        for (_, done), error in zip(batch, errors, strict=True):
            if done.done():  # its caller went away; its records are stored all the same
                continue
            with contextlib.suppress(RuntimeError):  # its loop is closed: nobody waits
                if error is None:
                    done.set_result(None)
                else:
                    done.set_exception(CouldNotAudit(NOT_STORED))

    def spool_path(self) -> Path:
        """The spool file this process writes now (made if there is none yet)."""
        return self._spool_file().path

    def _spool_file(self) -> SpoolFile:
        spool = self._spool
        if spool is not None and spool.full():
            spool.close()  # an orphan now: the mover moves the rest and deletes it
            spool = self._spool = None
        if spool is None:
            spool = self._spool = SpoolFile(spool_folder_of(self._audit))
            self.start_mover().own = spool
        return spool

    def start_mover(self) -> SpoolMover:
        """The mover of this process's spool, and of orphans, started if it is not."""
        if self._mover is None:
            self._mover = SpoolMover(self._audit, self._on_set_aside, self._backlog)
        return self._mover

    def close(self) -> None:
        """Store what was handed over, stop the mover once it has moved this process's
        spool, and refuse later writes (CouldNotAudit)."""
        self._closed = True
        self._flush()
        if self._spool is not None:
            self._spool.close()
            self._spool = None
        if self._mover is not None:
            self._mover.stop()
            self._mover = None


def spool_folder_of(audit: AppendingLog) -> Path:
    return spool_folder(audit.dead_letter_path.parent)


class SpoolMover:
    """A thread that moves this process's spool, and every orphan, into the audit log
    every MOVE_INTERVAL_S (most of the work is SQLite's or psycopg's, which let the GIL
    go)."""

    def __init__(
        self,
        audit: AppendingLog,
        on_set_aside: Callable[[int], None],
        backlog: Callable[[float], None] | None = None,
    ) -> None:
        self._audit = audit
        self._on_set_aside = on_set_aside
        self._backlog = backlog
        self.own: SpoolFile | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="elicence-audit-mover", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        failing = False
        # Each spool's progress as this mover last knew it: a round trip to the log saved
        # per spool and pass (the transaction checks it again).
        progress: dict[str, int] = {}
        checkpointed = time.monotonic()
        while True:
            stopping = self._stop.wait(MOVE_INTERVAL_S)
            own = self.own
            if own is not None and time.monotonic() - checkpointed >= CHECKPOINT_INTERVAL_S:
                _checkpoint(own.path)
                checkpointed = time.monotonic()
            try:
                move_spools(
                    self._audit,
                    own=None if own is None else own.path,
                    on_set_aside=self._on_set_aside,
                    progress=progress,
                    own_last=None if own is None else own.last_id,
                )
            except Exception as exc:  # the log cannot take them now: they wait in the spool
                if not failing:
                    log.warning("audit records wait in the spool: the log refused them (%r)", exc)
                failing = True
            else:
                if failing:
                    log.warning("audit records move from the spool again")
                failing = False
            if own is not None and self._backlog is not None:
                moved = progress.get(own.name)
                if moved is None:  # none moved yet, or all of it moved and the file deleted
                    moved = 0 if own.path.exists() else own.last_id
                self._backlog(own.last_id - moved)
            if stopping:
                return

    def stop(self) -> None:
        """Move once more, then stop."""
        self._stop.set()
        self._thread.join()


def move_spools(
    audit: AppendingLog,
    *,
    own: Path | None = None,
    everything: bool = False,
    on_set_aside: Callable[[int], None] | None = None,
    progress: dict[str, int] | None = None,
    own_last: int | None = None,
) -> None:
    """Move spooled records into `audit`: the spool `own`, every orphan, and with
    `everything` the live spools of other processes too.

    `progress`: each spool's progress as the caller last knew it, kept up to date
    (None: asked of the log); `own_last`: the id of `own`'s last record, when known, so
    that a spool with nothing new is not even opened.

    Raises whatever the log raises when it cannot take records (they stay spooled).
    """
    if progress is None:
        progress = {}
    folder = spool_folder_of(audit)
    if not folder.is_dir():
        return
    for path in sorted(folder.glob("*.sqlite")):
        if path == own and own_last is not None and own_last <= progress.get(path.stem, -1):
            continue
        with _orphan_lock(path) as orphan:
            if orphan or everything or path == own:
                _move(audit, path, on_set_aside, progress)
                if orphan:
                    _delete_if_moved(audit, path)
                    if not path.exists():  # a spool is never made again under its name
                        progress.pop(path.stem, None)
    for lock in folder.glob("*.lock"):
        # A mover stopped between deleting a spool and its lock file.
        if not lock.with_suffix(".sqlite").exists():
            with _orphan_lock(lock.with_suffix(".sqlite")) as orphan:
                if orphan:
                    lock.unlink(missing_ok=True)


@contextlib.contextmanager
def _orphan_lock(path: Path) -> Iterator[bool]:
    """Yields whether `path`'s writer is gone (holding its lock meanwhile)."""
    try:
        fd = os.open(path.with_suffix(".lock"), os.O_RDWR)
    except FileNotFoundError:
        yield False
        return
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
        else:
            yield True
    finally:
        os.close(fd)


def _checkpoint(path: Path) -> None:
    """Copy what a spool's WAL holds back into it, as far as its writer lets (PASSIVE:
    never waiting for it, nor making it wait)."""
    spool = _open(path)
    if spool is None:
        return
    try:
        spool.execute("PRAGMA wal_checkpoint(PASSIVE)")
    except sqlite3.DatabaseError:
        pass  # not made yet, or unreadable: the move reports that
    finally:
        spool.close()


def _open(path: Path) -> sqlite3.Connection | None:
    try:
        return sqlite3.connect(spool_uri(path), uri=True, isolation_level=None)
    except sqlite3.OperationalError:
        return None


# Spools that could not be read, reported once each (the mover comes back every pass).
_unreadable: set[Path] = set()


def _report_unreadable(path: Path, error: sqlite3.DatabaseError) -> None:
    if path not in _unreadable:
        _unreadable.add(path)
        log.error(
            "the audit spool %s cannot be read (%r); it is kept as it is, with any "
            "records it holds, for the operator to recover",
            path,
            error,
        )


def _not_made_yet(path: Path) -> bool:
    """Whether a spool that cannot be read is one whose writer stopped before making its
    table (nothing in the file, nothing in its WAL)."""
    return all(
        not Path(f"{path}{suffix}").exists() or Path(f"{path}{suffix}").stat().st_size == 0
        for suffix in ("", "-wal")
    )


def _move(
    audit: AppendingLog,
    path: Path,
    on_set_aside: Callable[[int], None] | None,
    progress: dict[str, int],
) -> None:
    name = path.stem
    upto = audit.append_spool_file(name, path, MOVE_BATCH)
    if upto is not None:
        progress[name] = upto
        return
    # Unreadable, or a record refused: row by row below, which says which.
    spool = _open(path)
    if spool is None:
        return
    try:
        after = progress.get(name)
        if after is None:
            after = progress[name] = audit.moved_upto(name)
        while True:
            try:
                rows = spool.execute(
                    f"SELECT id, {AUDIT_COLUMNS} FROM audit WHERE id > ? ORDER BY id LIMIT ?",
                    (after, MOVE_BATCH),
                ).fetchall()
            except sqlite3.DatabaseError as exc:
                if not _not_made_yet(path) and path.exists():  # not merely being made
                    _report_unreadable(path, exc)
                return
            if not rows:
                return
            batch = [(row[0], AuditRecord(*row[1:])) for row in rows]
            set_aside = audit.append_moved(name, batch)
            if set_aside and on_set_aside is not None:
                on_set_aside(set_aside)
            after = progress[name] = batch[-1][0]
    finally:
        spool.close()


def _delete_if_moved(audit: AppendingLog, path: Path) -> None:
    """Delete an orphan spool (its lock held by the caller) once all of it is moved.

    The log keeps the spool's progress row: a mover that read the spool before it was
    deleted then moves nothing twice."""
    spool = _open(path)
    if spool is None:
        return
    try:
        last = spool.execute("SELECT max(id) FROM audit").fetchone()[0] or 0
    except sqlite3.DatabaseError as exc:
        if not _not_made_yet(path):
            _report_unreadable(path, exc)
            return  # kept: it may hold answered records
        last = 0
    finally:
        spool.close()
    if audit.moved_upto(path.stem) < last:
        return
    for suffix in ("-wal", "-shm", ""):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    path.with_suffix(".lock").unlink(missing_ok=True)
