"""The audit writer of the fast path (verifier.service.audit.AuditWriter): one thread of
its own writes every record handed over, in groups; no request is answered before its
record is stored, none waits for ever whatever the store does, and a caller that goes
away still has its record written."""

from __future__ import annotations

import asyncio
import threading

import pytest

from verifier.service.audit import AuditLog, AuditRecord, AuditWriter, now
from verifier.service.errors import CouldNotAudit

WAIT_S = 30


def record(client: str, purpose: str | None = None) -> AuditRecord:
    return AuditRecord(now(), client, purpose, "0x00", "business-licence", "VALID", 1, "verify")


@pytest.fixture
def log(tmp_path):
    opened = AuditLog(tmp_path / "audit.sqlite")
    yield opened
    opened.close()


def test_concurrent_requests_are_all_stored_before_they_are_answered(log):
    set_aside: list[int] = []
    backlog: list[int] = []
    writer = AuditWriter(log, set_aside.append, backlog.append)

    async def one(i: int) -> list[str]:
        await writer.write([record(f"c{i}")])
        # Answered: the record is in the file.
        return [r.client for r in log.query(client=f"c{i}")]

    async def many() -> list[list[str]]:
        return await asyncio.gather(*(one(i) for i in range(300)))

    try:
        assert asyncio.run(many()) == [[f"c{i}"] for i in range(300)]
    finally:
        writer.close()
    assert len(log.query()) == 300
    assert set_aside == []
    assert sum(backlog) == 0  # every record counted in was counted out


def test_more_records_than_one_statement_holds_are_stored_together(log):
    writer = AuditWriter(log, lambda n: None)
    try:
        asyncio.run(writer.write([record(f"c{i}") for i in range(1_234)]))
    finally:
        writer.close()
    assert len(log.query()) == 1_234


def test_a_refused_record_fails_only_its_own_request(log):
    log._db.execute(
        "CREATE TRIGGER poison BEFORE INSERT ON audit WHEN NEW.purpose = 'poisoned' "
        "BEGIN SELECT RAISE(ABORT, 'refused'); END"
    )
    set_aside: list[int] = []
    writer = AuditWriter(log, set_aside.append)

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


def test_a_store_that_breaks_answers_every_waiting_request_and_the_writer_goes_on(log):
    original = log.record_groups
    calls = 0

    def broken(groups):
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("a bug in the store")
        return original(groups)

    log.record_groups = broken  # type: ignore[method-assign]
    writer = AuditWriter(log, lambda n: None)

    async def first_then_second() -> None:
        with pytest.raises(CouldNotAudit):
            await writer.write([record("first")])
        await writer.write([record("second")])

    try:
        asyncio.run(first_then_second())
    finally:
        writer.close()
    assert [r.client for r in log.query()] == ["second"]
    assert "first" in log.dead_letter_path.read_text()


def test_a_caller_that_goes_away_still_has_its_record_written(log):
    release = threading.Event()
    writing = threading.Event()
    original = log.record_groups

    def slow_disk(groups):
        writing.set()
        release.wait(WAIT_S)
        return original(groups)

    log.record_groups = slow_disk  # type: ignore[method-assign]
    writer = AuditWriter(log, lambda n: None)

    async def hang_up() -> None:
        task = asyncio.create_task(writer.write([record("gone")]))
        while not writing.is_set():
            await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        release.set()
        await writer.write([record("next")])

    try:
        asyncio.run(hang_up())
    finally:
        release.set()
        writer.close()
    assert [r.client for r in log.query()] == ["gone", "next"]


def test_after_close_what_was_handed_over_is_stored_and_new_records_are_refused(log):
    writer = AuditWriter(log, lambda n: None)

    async def write_then_close() -> None:
        waiting = asyncio.ensure_future(writer.write([record("before")]))
        await asyncio.sleep(0)  # handed over
        await asyncio.get_running_loop().run_in_executor(None, writer.close)
        await waiting
        with pytest.raises(CouldNotAudit):
            await writer.write([record("after")])

    asyncio.run(write_then_close())
    assert [r.client for r in log.query()] == ["before"]
