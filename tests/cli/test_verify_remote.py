"""`elicence verify --verifier URL`: the same verdicts, asked of a running service."""

from __future__ import annotations

import json

import pytest

from issuer.catalogue import catalogue
from issuer.presentation import present
from issuer.qr import encode_payload, qr_png
from issuer.reasons import Reason
from issuer.workflow import issue_batch, revoke
from ledger.chain import connect
from ledger.registry import Registry
from tests.conftest import AGENCY_CODE, AGENCY_NAME, free_port, key_for
from tests.conftest import run_elicence as run
from tests.samples import business_licence
from tests.service.conftest import ServiceProcess


@pytest.fixture
def service(node_process, tmp_path):
    chain = connect(node_process.url)
    governor, agency = key_for("remote-governor"), key_for("remote-agency")
    registry = Registry.deploy(chain, governor)
    registry.register_agency(governor, AGENCY_CODE, AGENCY_NAME, agency.address, [1])
    batch = issue_batch(
        registry,
        agency,
        catalogue().get("business-licence"),
        [business_licence(i) for i in range(2)],
        tmp_path / "licences",
    )
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
