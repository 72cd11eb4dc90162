"""Issuing with the sm3-128 suite (国密 SM3) and verifying what was issued: in process on
eth-tester over the verify API, and as an official and a clerk run the real commands.

A licence of either suite verifies the same way; a licence whose suite this verifier
cannot compute is reported as such (no verdict, never TAMPERED).
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from issuer.agency import issuing_suite
from issuer.issuing import IssueOptions, issue_file
from issuer.spreadsheet import read_input
from ledger.config import ConfigError, HomeConfig
from licence.catalogue import catalogue
from licence.document import loads_document
from licence.errors import UnsupportedHashSuite
from licence.payload import decode_payload, encode_payload
from licence.presentation import present
from tests.agency.conftest import write_csv
from tests.samples import business_licence
from tests.service.conftest import make_service
from verifier.checks import verify

BUSINESS = catalogue().get("business-licence")


def _issued(folder: Path) -> list[Path]:
    return sorted(p for p in folder.glob("*.json") if not p.name.startswith("batch-"))


def _tampered(document_path: Path) -> dict[str, object]:
    raw = json.loads(document_path.read_bytes())
    raw["fields"]["registeredCapital"] = "1亿元人民币"
    return raw


@pytest.fixture
def sm3_batch(agency, tmp_path):
    """Three business licences issued with --suite sm3 (documents, QR images, EL1 texts)."""
    source = read_input(
        write_csv(tmp_path / "in.csv", [business_licence(i) for i in range(3)]), BUSINESS
    )
    options = IssueOptions(qr=True, suite="sm3-128")
    report = issue_file(agency, BUSINESS, source, tmp_path / "out", options=options)
    return report, tmp_path / "out"


def test_an_sm3_batch_is_anchored_once_and_its_documents_name_sm3(agency, sm3_batch):
    report, out = sm3_batch
    assert len(report.batches) == 1 and report.count == 3
    documents = [loads_document(p.read_bytes()) for p in _issued(out)]
    assert {d.suite for d in documents} == {"sm3-128"}
    assert {d.computed_root() for d in documents} == {report.batches[0].root}
    assert agency.registry.anchor_of(report.batches[0].root) is not None
    # The QR's text carries the same licence, suite and all.
    el1 = (out / "110108000000000001.el1").read_text().strip()
    document = loads_document((out / "110108000000000001.json").read_bytes())
    deployment = {"chain_id": document.anchor.chain_id, "registry": document.anchor.registry}
    assert decode_payload(el1, **deployment) == document


def test_an_sm3_licence_verifies_valid_over_the_api_and_tampering_is_caught(
    sm3_batch, registry, agency_key, tmp_path
):
    _, out = sm3_batch
    service = make_service(tmp_path / "service", registry, agency_key)
    with service.client:
        path = out / "110108000000000001.json"
        document = loads_document(path.read_bytes())

        def status(body: dict[str, object]) -> str:
            answer = service.post("/v1/verifications", body)
            assert answer.status_code == 200, answer.text
            return str(answer.json()["status"])

        assert status({"document": document.to_json()}) == "VALID"
        assert status({"qr": (out / "110108000000000001.el1").read_text()}) == "VALID"
        hidden = present(document, [])
        assert hidden.hidden and status({"qr": encode_payload(hidden)}) == "VALID"
        assert status({"document": hidden.to_json()}) == "VALID"
        assert status({"document": _tampered(path)}) == "TAMPERED"
        image = (out / "110108000000000001.png").read_bytes()
        answer = service.client.post(
            "/v1/verifications/image", files={"image": ("qr.png", image, "image/png")}
        )
        assert answer.status_code == 200 and answer.json()["status"] == "VALID"


def test_a_suite_the_verifier_lacks_is_reported_as_such_over_the_api_not_as_tampered(
    sm3_batch, registry, agency_key, tmp_path
):
    _, out = sm3_batch
    raw = json.loads((out / "110108000000000001.json").read_bytes())
    raw["hashSuite"] = "sha3-256-128"
    service = make_service(tmp_path / "service", registry, agency_key)
    with service.client:
        answer = service.post("/v1/verifications", {"document": raw})
    assert answer.status_code == 422
    problem = answer.json()
    assert problem["type"].endswith("/unusable-licence")
    assert problem["reason"] == "unsupported-hash-suite"
    assert "unsupported hash suite 'sha3-256-128'" in problem["detail"]
    assert problem["status"] == 422 and "TAMPERED" not in answer.text  # no verdict


class _NoLedger:
    """A ledger that must not be read: the suite is refused before anything is asked."""

    def __getattr__(self, name: str) -> object:
        raise AssertionError(f"the ledger was asked {name}")


def test_the_in_process_verifier_never_calls_an_unknown_suite_tampered(sm3_batch):
    _, out = sm3_batch
    document = loads_document((out / "110108000000000001.json").read_bytes())
    with pytest.raises(UnsupportedHashSuite):
        verify(replace(document, suite="sha3-256-128"), _NoLedger())  # type: ignore[arg-type]


def test_the_agencys_config_chooses_the_suite_per_licence_type_and_survives_a_save(tmp_path):
    home = tmp_path / "home"
    HomeConfig("http://127.0.0.1:8545", 31337, "0x" + "11" * 20).save(home)
    assert issuing_suite(home, "business-licence") == "sha256-128"
    raw = json.loads((home / "config.json").read_text())
    raw["issuing"] = {"hashSuites": {"business-licence": "sm3", "food-business-licence": "sm3-128"}}
    (home / "config.json").write_text(json.dumps(raw))
    assert issuing_suite(home, "business-licence") == "sm3-128"
    assert issuing_suite(home, "food-business-licence") == "sm3-128"
    assert issuing_suite(home, "business-licence", "sha256") == "sha256-128"  # --suite wins
    # Saving where the chain is (registry deploy, agency new) keeps the agency's choice.
    HomeConfig.load(home).model_copy(update={"registry": "0x" + "22" * 20}).save(home)
    assert issuing_suite(home, "business-licence") == "sm3-128"


@pytest.mark.parametrize(
    ("issuing", "error"),
    [
        ({"hashSuites": {"business-licence": "md5"}}, UnsupportedHashSuite),
        ({"hashSuites": ["sm3"]}, ConfigError),
        ("sm3", ConfigError),
    ],
)
def test_a_bad_suite_in_the_config_is_a_named_error(tmp_path, issuing, error):
    home = tmp_path / "home"
    HomeConfig("http://127.0.0.1:8545", 31337, None).save(home)
    raw = json.loads((home / "config.json").read_text())
    (home / "config.json").write_text(json.dumps({**raw, "issuing": issuing}))
    with pytest.raises(error):
        issuing_suite(home, "business-licence")


@pytest.mark.slow
def test_official_issues_with_suite_sm3_and_the_clerk_verifies_it(node_agency, tmp_path):
    source = write_csv(tmp_path / "in.csv", [business_licence(i) for i in range(3)])
    out = tmp_path / "out"
    issued = node_agency.run(
        "issue", str(source), "--type", "business-licence", "--out", str(out), "--suite", "sm3"
    )
    assert issued.returncode == 0, issued.stderr
    licence = out / "110108000000000002.json"
    assert json.loads(licence.read_bytes())["hashSuite"] == "sm3-128"

    def verified(path: Path) -> tuple[int, str]:
        done = node_agency.run("verify", str(path), "--json")
        return done.returncode, done.stdout + done.stderr

    code, said = verified(licence)
    assert code == 0 and '"status": "VALID"' in said
    assert verified(out / "110108000000000002.el1")[0] == 0
    assert verified(out / "110108000000000002.png")[0] == 0

    shown = tmp_path / "shown.json"
    presented = node_agency.run("present", str(licence), "--out", str(shown))
    assert presented.returncode == 0, presented.stderr
    assert json.loads(shown.read_bytes())["hidden"]
    assert verified(shown)[0] == 0

    forged = tmp_path / "forged.json"
    forged.write_text(json.dumps(_tampered(licence), ensure_ascii=False))
    code, said = verified(forged)
    assert code == 1 and '"status": "TAMPERED"' in said

    unknown = tmp_path / "unknown-suite.json"
    unknown.write_text(
        json.dumps({**json.loads(licence.read_bytes()), "hashSuite": "sha3-256-128"})
    )
    code, said = verified(unknown)
    assert code == 3, said  # could not check: not 1, not TAMPERED
    assert "unsupported hash suite 'sha3-256-128'" in said and "TAMPERED" not in said


@pytest.mark.slow
def test_the_agencys_configured_suite_is_used_and_a_bad_one_issues_nothing(node_agency, tmp_path):
    raw = json.loads((node_agency.home / "config.json").read_text())
    raw["issuing"] = {"hashSuites": {"business-licence": "sm3"}}
    (node_agency.home / "config.json").write_text(json.dumps(raw))
    source = write_csv(tmp_path / "in.csv", [business_licence(i) for i in range(2)])
    out = tmp_path / "out"
    args = ("issue", str(source), "--type", "business-licence", "--out", str(out), "--no-qr")
    refused = node_agency.run(*args, "--suite", "md5")
    assert refused.returncode == 2 and "unsupported hash suite 'md5'" in refused.stderr
    assert not _issued(out) if out.exists() else True
    issued = node_agency.run(*args)
    assert issued.returncode == 0, issued.stderr
    assert {json.loads(p.read_bytes())["hashSuite"] for p in _issued(out)} == {"sm3-128"}
