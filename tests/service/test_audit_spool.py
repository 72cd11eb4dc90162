"""The audit spool (verifier.service.spool): a request is answered only once its record
is committed to its process's spool; the records move on into the audit log, none lost
when a process is killed, none moved twice whoever moves them, and a record refused on
the way costs only itself."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sqlite3
import stat
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from tests.service.conftest import move_all_at_once
from verifier.service import spool
from verifier.service.audit import AuditLog, AuditRecord, now
from verifier.service.errors import CouldNotAudit
from verifier.service.spool import AuditWriter, SpoolFile, move_spools, spool_folder

WAIT_S = 30


def record(client: str, purpose: str | None = None) -> AuditRecord:
    return AuditRecord(now(), client, purpose, "0x00", "business-licence", "VALID", 1, "verify")


@pytest.fixture
def log(tmp_path):
    opened = AuditLog(tmp_path / "audit.sqlite")
    yield opened
    opened.close()


def spooled(path) -> list[str]:
    """The clients of the records in a spool file, read as another process would."""
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return [row[0] for row in db.execute("SELECT client FROM audit ORDER BY id")]
    finally:
        db.close()


def spools(log) -> list:
    return sorted(spool_folder(log.dead_letter_path.parent).glob("*.sqlite"))


def test_every_request_is_answered_only_once_its_record_is_in_the_spool(log):
    set_aside: list[int] = []
    backlog: list[int] = []
    writer = AuditWriter(log, set_aside.append, backlog.append)

    async def one(i: int) -> bool:
        await writer.write([record(f"c{i}")])
        return f"c{i}" in spooled(writer.spool_path())

    async def many() -> list[bool]:
        return await asyncio.gather(*(one(i) for i in range(300)))

    try:
        assert all(asyncio.run(many()))
    finally:
        writer.close()
    assert sorted(r.client for r in log.query()) == sorted(f"c{i}" for i in range(300))
    assert set_aside == []
    assert backlog[-1] == 0  # the mover's last count: nothing waits for the log
    assert spools(log) == []  # moved, so deleted


def test_more_records_than_one_statement_holds_are_stored_together(log):
    writer = AuditWriter(log, lambda n: None)
    try:
        asyncio.run(writer.write([record(f"c{i}") for i in range(1_234)]))
    finally:
        writer.close()
    assert len(log.query()) == 1_234


def test_a_record_the_spool_refuses_fails_only_its_own_request(log):
    set_aside: list[int] = []
    writer = AuditWriter(log, set_aside.append)
    db = sqlite3.connect(writer.spool_path(), isolation_level=None)
    db.execute(
        "CREATE TRIGGER poison BEFORE INSERT ON audit WHEN NEW.purpose = 'poisoned' "
        "BEGIN SELECT RAISE(ABORT, 'refused'); END"
    )
    db.close()

    async def one(purpose: str) -> str:
        try:
            await writer.write([record("x", purpose)])
        except CouldNotAudit:
            return "503"
        return "200"

    async def many() -> list[str]:
        return await asyncio.gather(*(one(p) for p in ["a", "poisoned", "b", "poisoned", "c"]))

    try:
        assert asyncio.run(many()) == ["200", "503", "200", "503", "200"]
    finally:
        writer.close()
    assert sorted(r.purpose for r in log.query()) == ["a", "b", "c"]
    assert sum(set_aside) == 2
    assert log.dead_letter_path.read_text().count("poisoned") == 2


def test_a_spool_that_cannot_be_made_costs_503s_and_the_writer_recovers(log):
    folder = spool_folder(log.dead_letter_path.parent)
    folder.write_text("not a folder")  # where the spool folder should be
    writer = AuditWriter(log, lambda n: None)

    async def first() -> None:
        with pytest.raises(CouldNotAudit):
            await writer.write([record("first")])

    async def second() -> None:
        await writer.write([record("second")])

    try:
        asyncio.run(first())
        folder.unlink()
        asyncio.run(second())
    finally:
        writer.close()
    assert [r.client for r in log.query()] == ["second"]
    assert "first" in log.dead_letter_path.read_text()


def test_a_caller_that_goes_away_still_has_its_record_written(log):
    writer = AuditWriter(log, lambda n: None)

    async def hang_up() -> None:
        task = asyncio.create_task(writer.write([record("gone")]))
        await asyncio.sleep(0)  # handed over
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await writer.write([record("next")])

    try:
        asyncio.run(hang_up())
    finally:
        writer.close()
    assert [r.client for r in log.query()] == ["gone", "next"]


def test_after_close_what_was_handed_over_is_stored_and_new_records_are_refused(log):
    writer = AuditWriter(log, lambda n: None)

    async def write_then_close() -> None:
        waiting = asyncio.ensure_future(writer.write([record("before")]))
        await asyncio.sleep(0)  # handed over
        writer.close()
        await waiting
        with pytest.raises(CouldNotAudit):
            await writer.write([record("after")])

    asyncio.run(write_then_close())
    assert [r.client for r in log.query()] == ["before"]


def test_the_mover_brings_records_into_the_log_without_a_reader(log):
    writer = AuditWriter(log, lambda n: None)
    try:
        asyncio.run(writer.write([record("moved")]))
        deadline = time.monotonic() + WAIT_S
        # _select reads the log alone, as it is, without moving anything first.
        while not log._select(licence_id=None, client=None, since=None, limit=None):
            assert time.monotonic() < deadline, "the mover never moved the record"
            time.sleep(0.01)
    finally:
        writer.close()


KILLED_WRITER = textwrap.dedent(
    """
    import asyncio, sys
    from pathlib import Path
    from verifier.service.audit import AuditLog, AuditRecord, now
    from verifier.service.spool import AuditWriter

    writer = AuditWriter(AuditLog(Path(sys.argv[1])), lambda n: None)

    async def answer(i):
        record = AuditRecord(now(), f"c{i}", None, "0x00", "business-licence", "VALID", 1, "verify")
        await writer.write([record])
        return i

    async def main():
        i = 0
        while True:  # answers requests until it is killed
            for done in await asyncio.gather(*(answer(i + n) for n in range(20))):
                print(done, flush=True)
            i += 20

    asyncio.run(main())
    """
)


def test_a_process_killed_with_9_loses_no_answered_record_and_moves_none_twice(tmp_path):
    path = tmp_path / "audit.sqlite"
    process = subprocess.Popen(
        [sys.executable, "-c", KILLED_WRITER, str(path)], stdout=subprocess.PIPE, text=True
    )
    answered: list[str] = []
    assert process.stdout is not None
    for line in process.stdout:
        answered.append(f"c{line.strip()}")
        if len(answered) == 2_000:
            process.send_signal(signal.SIGKILL)
            break
    assert process.wait(timeout=WAIT_S) == -signal.SIGKILL
    answered.extend(f"c{line.strip()}" for line in process.stdout)
    log = AuditLog(path)
    try:
        stored = [r.client for r in log.query()]  # the orphan spool is moved first
        assert set(answered) <= set(stored)
        assert len(stored) == len(set(stored))
        assert spools(log) == []  # its writer gone and all of it moved: deleted
        assert [r.client for r in log.query()] == stored  # and nothing moved again
    finally:
        log.close()


def test_movers_racing_over_one_spool_move_each_record_once(tmp_path):
    first = AuditLog(tmp_path / "audit.sqlite")
    file = SpoolFile(spool_folder(tmp_path))
    file.record_groups([[record(f"c{i}") for i in range(5_000)]])
    file.close()  # an orphan: every mover may move it
    logs = [AuditLog(tmp_path / "audit.sqlite") for _ in range(4)]
    move_all_at_once(logs)
    try:
        clients = [r.client for r in first.query()]
        assert sorted(clients) == sorted(f"c{i}" for i in range(5_000))
    finally:
        for each in [first, *logs]:
            each.close()


def test_a_record_the_log_refuses_is_set_aside_and_the_rest_move_on(log):
    log._db.execute(
        "CREATE TRIGGER poison BEFORE INSERT ON audit WHEN NEW.client = 'bad' "
        "BEGIN SELECT RAISE(ABORT, 'refused by the log'); END"
    )
    set_aside: list[int] = []
    file = SpoolFile(spool_folder(log.dead_letter_path.parent))
    file.record_groups([[record("a"), record("bad"), record("b")]])
    file.close()
    move_spools(log, on_set_aside=set_aside.append)
    assert [r.client for r in log.query()] == ["a", "b"]
    assert set_aside == [1]
    assert "refused by the log" in log.dead_letter_path.read_text()
    assert spools(log) == []  # moved past the refused record: the spool is done


def test_moving_a_live_spool_never_makes_its_writer_wait(log):
    # The writer never waits (timeout 0): a mover holding the spool's write lock would
    # cost requests 503s. A trigger on the log has the writer write while SQLite copies
    # the spool's records into the log.
    file = SpoolFile(spool_folder(log.dead_letter_path.parent))
    file.record_groups([[record("before")]])
    during: list[Exception | None] = []

    def write_meanwhile() -> None:
        if not during:
            during.extend(file.record_groups([[record("during")]]))

    log._db.create_function("write_meanwhile", 0, write_meanwhile)
    log._db.execute(
        "CREATE TEMP TRIGGER writer_meanwhile BEFORE INSERT ON main.audit "
        "BEGIN SELECT write_meanwhile(); END"
    )
    try:
        move_spools(log, own=file.path)
        assert during == [None]
        assert [r.client for r in log.query()] == ["before", "during"]
    finally:
        file.close()


def test_a_live_spool_is_checkpointed_while_its_writer_lives(log, monkeypatch):
    # Its writer leaves checkpoints to the mover: without them its WAL would hold every
    # record until the spool is left, 30 MB or more.
    monkeypatch.setattr(spool, "CHECKPOINT_INTERVAL_S", 0.05)
    writer = AuditWriter(log, lambda n: None)
    try:
        asyncio.run(writer.write([record("x")]))
        path = writer.spool_path()
        header_only = path.stat().st_size  # its table and record are in the WAL so far
        deadline = time.monotonic() + WAIT_S
        while path.stat().st_size <= header_only:
            assert time.monotonic() < deadline, "the spool was never checkpointed"
            time.sleep(0.01)
    finally:
        writer.close()


def test_a_full_spool_is_left_for_a_new_one_and_every_record_arrives(log, monkeypatch):
    monkeypatch.setattr(spool, "ROTATE_RECORDS", 10)
    writer = AuditWriter(log, lambda n: None)

    async def many() -> None:
        for i in range(35):
            await writer.write([record(f"c{i}")])

    try:
        asyncio.run(many())
        live = writer.spool_path()
        move_spools(log)  # orphans (the full ones) are moved and deleted
        assert spools(log) == [live]
    finally:
        writer.close()
    assert [r.client for r in log.query()] == [f"c{i}" for i in range(35)]


def test_a_spool_whose_wal_grows_past_its_bound_is_left_for_a_new_one(log, monkeypatch):
    monkeypatch.setattr(spool, "ROTATE_WAL_BYTES", 64 * 1024)
    monkeypatch.setattr(spool, "WAL_LOOK_RECORDS", 5)
    writer = AuditWriter(log, lambda n: None)
    first = writer.spool_path()

    async def many() -> None:
        for i in range(100):  # one commit each: a page or two of WAL each
            await writer.write([record(f"c{i}")])

    try:
        asyncio.run(many())
        assert writer.spool_path() != first
        wal = Path(f"{writer.spool_path()}-wal")
        assert wal.stat().st_size < 64 * 1024 + 5 * 2 * 4200  # a look's worth past the bound
    finally:
        writer.close()
    assert [r.client for r in log.query()] == [f"c{i}" for i in range(100)]


def test_spool_files_are_private_whatever_the_umask(log):
    previous = os.umask(0o022)  # a program using elicence as a library
    try:
        file = SpoolFile(spool_folder(log.dead_letter_path.parent))
        file.record_groups([[record("x")]])
    finally:
        os.umask(previous)
    try:
        for path in [file.path.parent, *file.path.parent.iterdir()]:
            assert stat.S_IMODE(path.stat().st_mode) & 0o077 == 0, path
    finally:
        file.close()


def test_a_home_whose_path_holds_uri_characters_moves_its_spools(tmp_path):
    # SQLite reads the spool by URI: '#', '?' and '%' in an operator's path are text.
    home = tmp_path / "elicence #1 ?x=%41"
    home.mkdir()
    log = AuditLog(home / "audit.sqlite")
    writer = AuditWriter(log, lambda n: None)
    try:
        asyncio.run(writer.write([record("odd-path")]))
    finally:
        writer.close()
    try:
        assert [r.client for r in log.query()] == ["odd-path"]
        assert spools(log) == []
    finally:
        log.close()


def test_an_unreadable_spool_is_kept_and_reported_and_the_others_still_move(log, caplog):
    folder = spool_folder(log.dead_letter_path.parent)
    folder.mkdir(parents=True)
    broken = folder / "0000broken.sqlite"
    broken.write_bytes(b"not a database, but evidence " * 100)
    (folder / "0000broken.lock").write_bytes(b"")
    file = SpoolFile(folder)
    file.record_groups([[record("readable")]])
    file.close()
    with caplog.at_level(logging.ERROR, logger="elicence.service"):
        assert [r.client for r in log.query()] == ["readable"]
        assert [r.client for r in log.query()] == ["readable"]
    assert broken.exists()  # never deleted: it may hold answered records
    assert spools(log) == [broken]
    assert caplog.text.count("cannot be read") == 1  # reported once, not every pass


def test_a_new_spool_that_cannot_be_made_at_rotation_costs_503s_until_it_can(log, monkeypatch):
    # A full disk just as the spool is full: faked, since this suite runs as root (no
    # permission fault to cause) and cannot fill a disk.
    monkeypatch.setattr(spool, "ROTATE_RECORDS", 2)
    writer = AuditWriter(log, lambda n: None)
    real = spool.SpoolFile
    failing = {"now": False}

    def made(folder):
        if failing["now"]:
            raise OSError(28, "No space left on device")
        return real(folder)

    monkeypatch.setattr(spool, "SpoolFile", made)

    async def answer(client: str) -> str:
        try:
            await writer.write([record(client)])
        except CouldNotAudit:
            return "503"
        return "200"

    async def run() -> list[str]:
        answers = [await answer("a"), await answer("b")]
        failing["now"] = True
        answers += [await answer("c"), await answer("d")]
        failing["now"] = False
        answers += [await answer("e")]
        return answers

    try:
        assert asyncio.run(run()) == ["200", "200", "503", "503", "200"]
    finally:
        writer.close()
    assert [r.client for r in log.query()] == ["a", "b", "e"]
