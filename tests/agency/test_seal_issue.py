"""Issuing sealed batches: every anchored root is sealed with the agency's SM2 seal key
(the one the registry names for the anchoring block), the seal is in every document, QR
text and manifest, on both issuing paths, and what was issued verifies VALID in
process, over the API and by the real commands; a home whose seal key is missing or not
the registered one issues nothing."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from issuer.agency import AgencyContext
from issuer.errors import IssuingError
from issuer.issuing import IssueOptions, issue_file
from issuer.keystore import SEAL_KEYSTORE, create_seal_key, keystore_path
from issuer.manifest import load_batch
from issuer.spreadsheet import read_input
from licence import seal
from licence.catalogue import catalogue
from licence.document import loads_document
from licence.payload import decode_payload
from tests.agency.conftest import PASSPHRASE, write_csv
from tests.conftest import AGENCY_ID
from tests.issuing_paths import PATHS, issuing_path
from tests.samples import business_licence
from tests.service.conftest import make_service
from verifier.chain_source import RegistrySource
from verifier.checks import verify
from verifier.verdict import CheckName, Status

BUSINESS = catalogue().get("business-licence")


def _issued(folder: Path) -> list[Path]:
    return sorted(p for p in folder.glob("*.json") if not p.name.startswith("batch-"))


def _register(agency: AgencyContext, governor, private: bytes) -> None:
    start = agency.registry.chain.block_number() + 1
    agency.registry.register_seal_key(governor, AGENCY_ID, seal.public_key(private), start)


def _issue(agency: AgencyContext, tmp_path: Path, n: int = 3, first: int = 0, **options):
    tmp_path.mkdir(parents=True, exist_ok=True)
    rows = [business_licence(i) for i in range(first, first + n)]
    source = read_input(write_csv(tmp_path / "in.csv", rows), BUSINESS)
    out = tmp_path / "out"
    report = issue_file(agency, BUSINESS, source, out, options=IssueOptions(**options))
    return report, out


def _seal_reason(verdict) -> str:
    (check,) = [c for c in verdict.checks if c.name is CheckName.SEAL]
    return check.wording.code


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("workers", [1, 2])
def test_every_document_qr_text_and_manifest_of_a_batch_carries_its_one_seal(
    agency, governor, tmp_path, path, workers
):
    key = seal.new_private_key()
    _register(agency, governor, key)
    sealing = dataclasses.replace(agency, seal_key=key)
    with issuing_path(path):
        report, _ = _issue(sealing, tmp_path, n=5, batch_size=3, workers=workers)
    assert len(report.batches) == 2
    source = RegistrySource(agency.registry)
    for batch in report.batches:
        loaded = load_batch(batch.manifest)
        assert loaded.seal is not None
        assert {d.anchor.seal for d in loaded.documents} == {loaded.seal}
        registry = bytes.fromhex(agency.registry.address[2:])
        seal.check_seal(
            seal.public_key(key), agency.registry.chain.chain_id, registry, batch.root, loaded.seal
        )
        for document, file in zip(loaded.documents, loaded.paths, strict=True):
            el1 = file.with_suffix(".el1").read_text().strip()
            anchor = document.anchor  # an EL2: payload is read with the verifier's own
            read = decode_payload(el1, chain_id=anchor.chain_id, registry=anchor.registry)
            assert read == document
            verdict = verify(document, source)
            assert verdict.status is Status.VALID
            assert _seal_reason(verdict) == "seal.ok"


def test_a_sealed_licence_verifies_valid_over_the_api_and_a_stripped_seal_is_tampered(
    agency, governor, registry, agency_key, tmp_path
):
    key = seal.new_private_key()
    _register(agency, governor, key)
    _, out = _issue(dataclasses.replace(agency, seal_key=key), tmp_path)
    service = make_service(tmp_path / "service", registry, agency_key)
    raw = json.loads(_issued(out)[0].read_bytes())
    stripped = json.loads(json.dumps(raw))
    del stripped["anchor"]["seal"]
    with service.client:
        for body, status, code in (
            (raw, "VALID", "seal.ok"),
            (stripped, "TAMPERED", "seal.missing"),
        ):
            answer = service.post("/v1/verifications", {"document": body})
            assert answer.status_code == 200, answer.text
            assert answer.json()["status"] == status
            (check,) = [c for c in answer.json()["checks"] if c["name"] == "seal"]
            assert check["code"] == code


def test_an_agency_without_a_registered_seal_key_issues_unsealed_as_before(agency, tmp_path):
    # A home with a seal key the governor has not registered yet: nothing to seal with.
    report, out = _issue(dataclasses.replace(agency, seal_key=seal.new_private_key()), tmp_path)
    document = loads_document(_issued(out)[0].read_bytes())
    assert document.anchor.seal is None
    assert "seal" not in json.loads(report.batches[0].manifest.read_bytes())
    verdict = verify(document, RegistrySource(agency.registry))
    assert verdict.status is Status.VALID
    assert _seal_reason(verdict) == "seal.not-required"


def test_a_home_without_the_registered_seal_key_issues_nothing(agency, governor, tmp_path):
    _register(agency, governor, seal.new_private_key())
    height = agency.registry.chain.block_number()
    with pytest.raises(IssuingError, match="no SM2 seal key"):
        _issue(agency, tmp_path)
    assert agency.registry.chain.block_number() == height
    assert not _issued(tmp_path / "out") if (tmp_path / "out").exists() else True


def test_a_home_with_another_seal_key_than_the_registered_one_issues_nothing(
    agency, governor, tmp_path
):
    _register(agency, governor, seal.new_private_key())
    height = agency.registry.chain.block_number()
    with pytest.raises(IssuingError, match="seals with seal key 1"):
        _issue(dataclasses.replace(agency, seal_key=seal.new_private_key()), tmp_path)
    assert agency.registry.chain.block_number() == height


def test_a_compromised_seal_key_issues_nothing(agency, governor, tmp_path):
    key = seal.new_private_key()
    _register(agency, governor, key)
    now = agency.registry.chain.block_number()
    agency.registry.mark_seal_key_compromised(governor, AGENCY_ID, 1, now)
    with pytest.raises(IssuingError, match="compromised"):
        _issue(dataclasses.replace(agency, seal_key=key), tmp_path)


def test_batches_issued_before_and_after_a_seal_key_rotation_each_verify(
    agency, governor, tmp_path
):
    old, new = seal.new_private_key(), seal.new_private_key()
    _register(agency, governor, old)
    _, first_out = _issue(dataclasses.replace(agency, seal_key=old), tmp_path / "a")
    _register(agency, governor, new)
    _, second_out = _issue(dataclasses.replace(agency, seal_key=new), tmp_path / "b", first=10)
    source = RegistrySource(agency.registry)
    for out, number in ((first_out, 1), (second_out, 2)):
        verdict = verify(loads_document(_issued(out)[0].read_bytes()), source)
        assert verdict.status is Status.VALID
        (check,) = [c for c in verdict.checks if c.name is CheckName.SEAL]
        assert check.wording.params == {"keyNumber": number}


# ---- the real commands ------------------------------------------------------------


@pytest.mark.slow
def test_official_issues_sealed_licences_and_the_clerk_verifies_them(node_agency, tmp_path):
    public = create_seal_key(keystore_path(node_agency.home, SEAL_KEYSTORE), PASSPHRASE)
    registered = node_agency.run(
        "agency",
        "seal-key",
        "register",
        "--id",
        str(AGENCY_ID),
        "--public-key",
        "0x" + public.hex(),
        "--home",
        str(node_agency.governor_home),
    )
    assert registered.returncode == 0, registered.stderr
    source = write_csv(tmp_path / "in.csv", [business_licence(i) for i in range(3)])
    out = tmp_path / "out"
    issued = node_agency.run("issue", str(source), "--type", "business-licence", "--out", str(out))
    assert issued.returncode == 0, issued.stderr
    licence = out / "110108000000000001.json"
    assert json.loads(licence.read_bytes())["anchor"]["seal"].startswith("0x")

    def verified(path: Path) -> tuple[int, str]:
        done = node_agency.run("verify", str(path), "--json")
        return done.returncode, done.stdout + done.stderr

    code, said = verified(licence)
    assert code == 0 and '"status": "VALID"' in said and "seal.ok" in said
    assert verified(out / "110108000000000001.el1")[0] == 0
    shown = tmp_path / "shown.json"
    presented = node_agency.run("present", str(licence), "--out", str(shown))
    assert presented.returncode == 0, presented.stderr
    assert (
        json.loads(shown.read_bytes())["anchor"]["seal"]
        == json.loads(licence.read_bytes())["anchor"]["seal"]
    )
    assert verified(shown)[0] == 0

    stripped = tmp_path / "stripped.json"
    raw = json.loads(licence.read_bytes())
    del raw["anchor"]["seal"]
    stripped.write_text(json.dumps(raw, ensure_ascii=False))
    code, said = verified(stripped)
    assert code == 1 and '"status": "TAMPERED"' in said and "seal.missing" in said

    # A home whose seal key is gone issues nothing.
    keystore_path(node_agency.home, SEAL_KEYSTORE).unlink()
    more = write_csv(tmp_path / "more.csv", [business_licence(i) for i in range(10, 12)])
    refused = node_agency.run(
        "issue", str(more), "--type", "business-licence", "--out", str(tmp_path / "more")
    )
    assert refused.returncode != 0 and "no SM2 seal key" in refused.stderr

    block = json.loads(licence.with_name(_manifest_name(out)).read_bytes())["block"]
    reported = node_agency.run(
        "agency",
        "seal-key",
        "compromised",
        "--id",
        str(AGENCY_ID),
        "--from-block",
        str(block),
        "--home",
        str(node_agency.governor_home),
    )
    assert reported.returncode == 0, reported.stderr
    code, said = verified(licence)
    assert code == 1 and '"status": "ISSUER_NOT_AUTHORISED"' in said
    assert "seal.key-compromised" in said


def _manifest_name(out: Path) -> str:
    (manifest,) = out.glob("batch-*.json")
    return manifest.name
