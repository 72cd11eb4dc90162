"""No verdict without its audit record (docs/api.md, "Access and accountability"): a
purpose the log cannot store is refused on every route; a record the spool refuses costs
only its own request (503 could-not-audit), is set aside and reported, and never stops
the records after it.

The faults are real ones in the service's audit spool file (verifier.service.spool): a
trigger that aborts inserts, and another connection holding the file locked."""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
import stat

import httpx
import pytest

from issuer.qr import qr_png
from licence.payload import encode_payload
from licence.presentation import present
from tests.samples import business_licence
from verifier.service.audit import AuditLog, AuditRecord, now
from verifier.service.spool import SpoolFile

PROBLEM = "application/problem+json"


def audit_file(service):
    return service.settings.service_dir / "audit.sqlite"


def records_of(service):
    log = AuditLog(audit_file(service))
    try:
        return log.query()
    finally:
        log.close()


def spool_file(service):
    """The spool the service writes its audit records to before answering."""
    return service.client.app.state.services.verification.writer.spool_path()


def poison(service, when: str) -> None:
    """A trigger in the spool that aborts the insert of any record matching `when`."""
    db = sqlite3.connect(spool_file(service), isolation_level=None)
    try:
        db.execute(
            f"CREATE TRIGGER poison BEFORE INSERT ON audit WHEN {when} "
            "BEGIN SELECT RAISE(ABORT, 'this record is refused'); END"
        )
    finally:
        db.close()


def cure(service) -> None:
    db = sqlite3.connect(spool_file(service), isolation_level=None)
    try:
        db.execute("DROP TRIGGER poison")
    finally:
        db.close()


def qr_form(document, tmp_path, purpose_part: bytes, boundary: str = "b0undary"):
    """A hand-made multipart body (so that its bytes and charset are exactly the attack's)."""
    path = tmp_path / "licence.png"
    qr_png(encode_payload(present(document, [])), path)
    b = boundary.encode()
    return (
        b"--" + b + b"\r\n"
        b'Content-Disposition: form-data; name="image"; filename="l.png"\r\n'
        b"Content-Type: image/png\r\n\r\n" + path.read_bytes() + b"\r\n"
        b"--" + b + b"\r\n"
        b'Content-Disposition: form-data; name="purpose"\r\n\r\n' + purpose_part + b"\r\n"
        b"--" + b + b"--\r\n"
    )


def assert_could_not_audit(answer) -> None:
    assert answer.status_code == 503, answer.text
    assert answer.headers["content-type"] == PROBLEM
    body = answer.json()
    assert body["type"].endswith("/could-not-audit")
    assert "status" in body and "checks" not in body and "VALID" not in answer.text
    assert answer.headers["retry-after"] == "1"  # a passing fault: clients may retry soon


def test_utf7_form_purpose_is_refused_and_the_audit_keeps_working(service, tmp_path):
    # The attack of issue 15.2: in UTF-7, "+2AA-" is a lone surrogate.
    batch = service.issue([business_licence(0)])
    document = batch.documents[0]
    body = qr_form(document, tmp_path, b"+2AA-")
    answer = service.client.post(
        "/v1/verifications/image",
        content=body,
        headers={"Content-Type": "multipart/form-data; boundary=b0undary; charset=utf-7"},
    )
    assert answer.status_code == 415
    assert answer.json()["type"].endswith("/unsupported-media-type")
    assert "utf-7" in answer.json()["detail"]
    # Later verifications are answered and audited; the holder's log answers.
    assert service.verify(document, purpose="after").json()["status"] == "VALID"
    assert [r.purpose for r in records_of(service)] == ["after"]
    holder = service.post("/v1/holder/verifications", {"document": document.to_json()})
    assert holder.status_code == 200


def test_utf8_form_purpose_is_recorded_as_sent(service, tmp_path):
    batch = service.issue([business_licence(1)])
    answer = service.client.post(
        "/v1/verifications/image",
        content=qr_form(batch.documents[0], tmp_path, "窗口核验".encode()),
        headers={"Content-Type": "multipart/form-data; boundary=b0undary; charset=UTF-8"},
    )
    assert answer.status_code == 200, answer.text
    assert [r.purpose for r in records_of(service)] == ["窗口核验"]


@pytest.mark.parametrize(
    "purpose",
    ["\ud800", "case\u0000-1", "line\nforged", "\u202egnp.exe", "x" * 201, "c1\u0085"],
    ids=["lone-surrogate", "nul", "newline", "bidi-override", "too-long", "c1-control"],
)
def test_purpose_that_is_not_plain_text_is_refused_on_every_route(service, tmp_path, purpose):
    batch = service.issue([business_licence(2)])
    document = batch.documents[0]
    qr = encode_payload(present(document, []))
    # ensure_ascii: a lone surrogate travels as the JSON escape \ud800, as an attacker sends it.
    single = service.post("/v1/verifications", json.dumps({"qr": qr, "purpose": purpose}).encode())
    many = service.post(
        "/v1/verifications/batch",
        json.dumps({"items": [{"qr": qr}], "purpose": purpose}).encode(),
    )
    for answer in (single, many):
        # A lone surrogate may be refused as unreadable JSON (400) before the schema.
        assert answer.status_code in (400, 422), answer.text
        if answer.status_code == 422:
            assert answer.json()["type"].endswith("/invalid-request")
            assert [e["path"] for e in answer.json()["errors"]] == ["purpose"]
    if purpose != "\ud800":  # a lone surrogate cannot be written as UTF-8 at all
        image = service.client.post(
            "/v1/verifications/image",
            content=qr_form(document, tmp_path, purpose.encode()),
            headers={"Content-Type": "multipart/form-data; boundary=b0undary"},
        )
        assert image.status_code == 422, image.text
        assert [e["path"] for e in image.json()["errors"]] == ["purpose"]
    assert records_of(service) == []
    assert service.verify(document).json()["status"] == "VALID"


def test_no_verdict_when_the_audit_log_refuses_every_record(service, tmp_path):
    batch = service.issue([business_licence(3), business_licence(4)])
    document = batch.documents[0]
    poison(service, "1")
    qr = encode_payload(present(document, []))
    assert_could_not_audit(service.verify(document))  # the fast path
    assert_could_not_audit(service.post("/v1/verifications/batch", {"items": [{"qr": qr}]}))
    path = tmp_path / "licence.png"
    qr_png(qr, path)
    assert_could_not_audit(
        service.client.post(
            "/v1/verifications/image", files={"image": ("l.png", path.read_bytes(), "image/png")}
        )
    )
    counted = [
        line
        for line in service.client.get("/metrics").text.splitlines()
        if line.startswith("elicence_http_requests_total{") and 'status="503"' in line
    ]
    assert len(counted) == 3, counted
    cure(service)
    assert service.verify(document).json()["status"] == "VALID"
    assert [r.verdict for r in records_of(service)] == ["VALID"]


def test_a_poisoned_record_is_set_aside_and_the_records_after_it_are_written(service, caplog):
    batch = service.issue([business_licence(5)])
    document = batch.documents[0]
    poison(service, "NEW.purpose = 'poisoned'")
    with caplog.at_level(logging.ERROR, logger="elicence.service"):
        assert_could_not_audit(service.verify(document, purpose="poisoned"))
    assert "could not be written" in caplog.text and "dead-letter" in caplog.text
    for purpose in ("case-1", "case-2"):
        assert service.verify(document, purpose=purpose).json()["status"] == "VALID"
    assert [r.purpose for r in records_of(service)] == ["case-1", "case-2"]
    dead = service.settings.service_dir / "audit-dead-letter.jsonl"
    assert stat.S_IMODE(dead.stat().st_mode) == 0o600
    [line] = dead.read_text().splitlines()
    assert json.loads(line)["record"]["purpose"] == "poisoned"
    assert "this record is refused" in json.loads(line)["error"]
    metrics = service.client.get("/metrics").text
    assert "elicence_audit_records_set_aside_total 1.0" in metrics


def test_requests_written_together_fail_only_where_their_own_record_is_refused(service):
    # Concurrent requests share one audit transaction; the poisoned one must not take
    # the others' verdicts (or records) down with it.
    batch = service.issue([business_licence(6)])
    qr = encode_payload(present(batch.documents[0], []))
    poison(service, "NEW.purpose = 'poisoned'")
    purposes = ["a", "poisoned", "b", "c", "poisoned", "d"]

    async def send_all() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=service.client.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
            return await asyncio.gather(
                *(client.post("/v1/verifications", json={"qr": qr, "purpose": p}) for p in purposes)
            )

    answers = asyncio.run(send_all())
    assert [a.status_code for a in answers] == [200, 503, 200, 200, 503, 200]
    assert sorted(r.purpose for r in records_of(service)) == ["a", "b", "c", "d"]


def test_group_write_sets_aside_only_the_refused_group(tmp_path):
    spool = SpoolFile(tmp_path / "audit-spool")
    try:
        spool._db.execute(
            "CREATE TRIGGER poison BEFORE INSERT ON audit WHEN NEW.client = 'bad' "
            "BEGIN SELECT RAISE(ABORT, 'refused'); END"
        )

        def record(client: str, purpose: str | None = None) -> AuditRecord:
            return AuditRecord(
                now(), client, purpose, "0x00", "business-licence", "VALID", 1, "verify"
            )

        results = spool.record_groups(
            [[record("x")], [record("y"), record("bad")], [record("z", "\ud800")], [record("w")]]
        )
        assert [None if e is None else type(e).__name__ for e in results] == [
            None,
            "IntegrityError",
            "UnicodeEncodeError",
            None,
        ]
        lines = [json.loads(x) for x in spool.dead_letter_path.read_text().splitlines()]
        assert [x["record"]["client"] for x in lines] == ["y", "bad", "z"]
        assert lines[2]["record"]["purpose"] == "\ud800"
    finally:
        spool.close()
    log = AuditLog(tmp_path / "audit.sqlite")
    try:
        assert [r.client for r in log.query()] == ["x", "w"]
    finally:
        log.close()


def test_a_locked_spool_gives_503_at_once_then_verdicts_again_once_free(service):
    # Nobody but its process writes a spool: a lock on it is a fault, not a wait.
    batch = service.issue([business_licence(7)])
    blocker = sqlite3.connect(spool_file(service), isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")
    try:
        assert_could_not_audit(service.verify(batch.documents[0], purpose="while-locked"))
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    assert service.verify(batch.documents[0], purpose="free").json()["status"] == "VALID"
    assert [r.purpose for r in records_of(service)] == ["free"]


def test_a_locked_audit_log_delays_its_records_not_the_answers(service):
    # Another process holding the indexed log (an export, a backup): answers go on, their
    # records wait in the spool and reach the log once it is free.
    batch = service.issue([business_licence(8)])
    blocker = sqlite3.connect(audit_file(service), isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")
    try:
        for purpose in ("locked-1", "locked-2"):
            answer = service.verify(batch.documents[0], purpose=purpose)
            assert answer.json()["status"] == "VALID"
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    assert [r.purpose for r in records_of(service)] == ["locked-1", "locked-2"]
