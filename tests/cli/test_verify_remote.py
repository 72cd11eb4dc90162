"""`elicence verify --verifier URL`: the same verdicts, asked of a running service."""

from __future__ import annotations

import json

import pytest

from issuer.qr import qr_png
from issuer.status import revoke
from licence.payload import encode_payload
from licence.presentation import present
from licence.reasons import Reason
from tests.conftest import free_port
from tests.conftest import run_elicence as run
from tests.service.conftest import ServiceProcess, issued_on_node


@pytest.fixture
def service(node_process, tmp_path):
    registry, agency, batch = issued_on_node(node_process.url, tmp_path / "licences", "remote", 2)
    revoke(registry, agency, batch.documents[1], Reason.COURT_ORDER)
    process = ServiceProcess(tmp_path / "service-home", node_process.url, registry.address)
    process.start()
    try:
        yield process.url, batch
    finally:
        process.stop()


def test_document_payload_and_image_get_the_service_s_verdicts(service, tmp_path):
    url, batch = service
    assert run("verify", str(batch.paths[0]), "--verifier", url).returncode == 0
    revoked = run("verify", str(batch.paths[1]), "--verifier", url)
    assert revoked.returncode == 1 and "REVOKED" in revoked.stdout
    payload = encode_payload(present(batch.documents[0], []))
    (tmp_path / "qr.txt").write_text(payload)
    answer = run("verify", str(tmp_path / "qr.txt"), "--verifier", url, "--json")
    assert answer.returncode == 0 and json.loads(answer.stdout)["status"] == "VALID"
    qr_png(payload, tmp_path / "qr.png")
    assert run("verify", str(tmp_path / "qr.png"), "--verifier", url).returncode == 0


def test_input_the_service_refuses_exits_2(service, tmp_path):
    url, _ = service
    (tmp_path / "bad.txt").write_text("EL1:NOT-BASE45!!")
    result = run("verify", str(tmp_path / "bad.txt"), "--verifier", url)
    assert result.returncode == 2
    assert "refused" in result.stderr and "Traceback" not in result.stderr


def test_no_service_at_the_url_exits_3(tmp_path, isolated_home):
    (tmp_path / "doc.json").write_text("{}")
    result = run(
        "verify", str(tmp_path / "doc.json"), "--verifier", f"http://127.0.0.1:{free_port()}"
    )
    assert result.returncode == 3
    assert "could not check" in result.stderr or "no verifier answers" in result.stderr
