"""An agency issues a licence type, or a version of one, that the registry publishes
but its installation does not ship: a new type is added without a release (#20).

Real `elicence` processes on a real node: the governor publishes a definition file,
the agency issues under it, and a verifier that never had the definition checks the
licences, loading it from the chain.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from issuer.staging import Job, stage_batch
from ledger import connect
from ledger.config import HomeConfig
from licence.catalogue import catalogue
from licence.catalogue_rules import check_successor, parse_definition_text
from tests.agency.conftest import NodeAgency, write_csv
from tests.conftest import ELICENCE
from tests.samples import AUTHORITY, business_licence, credit_code, with_remarks

pytestmark = pytest.mark.slow

TYPES = Path(__file__).parents[2] / "licence" / "licence_types"
LABEL = {"zh": "示例许可证", "en": "Demo permit"}


def _field(name: str, zh: str, en: str, kind: str = "text", **more: object) -> dict[str, object]:
    return {
        "name": name,
        "label": {"zh": zh, "en": en},
        "kind": kind,
        "required": True,
        "personal": False,
        **more,
    }


DEMO_PERMIT = {
    "id": "demo-permit",
    "code": 21,
    "version": 1,
    "name": LABEL,
    "owners": [{"zh": "示例局", "en": "Demo bureau"}],
    "mandatoryDisclosure": ["licenceNumber", "holderName", "validFrom", "issuingAuthority"],
    "fields": [
        _field("licenceNumber", "许可证编号", "Permit number", maxLength=64,
               pattern="^DP[0-9]{6,20}$", example="DP000001"),
        _field("holderName", "持证单位", "Holder", maxLength=200, example="示例有限公司"),
        _field("unifiedSocialCreditCode", "统一社会信用代码", "Unified social credit code",
               kind="credit_code", example="91440106MA59ABCD1M"),
        _field("validFrom", "有效期自", "Valid from", kind="date", example="2026-01-01"),
        {**_field("validUntil", "有效期至", "Valid until", kind="date"), "required": False},
        _field("issuingAuthority", "发证机关", "Issuing authority", maxLength=200,
               example="示例局"),
    ],
}  # fmt: skip


def _business_v2(folder: Path) -> Path:
    path = folder / "business-licence-v2.json"
    path.write_text(json.dumps(with_remarks("business-licence"), ensure_ascii=False), "utf-8")
    return path


def _demo_permit(folder: Path) -> Path:
    path = folder / "demo-permit.json"
    path.write_text(json.dumps(DEMO_PERMIT, ensure_ascii=False, indent=2), "utf-8")
    return path


def _permit(index: int) -> dict[str, str]:
    return {
        "licenceNumber": f"DP{index:08d}",
        "holderName": f"深圳福田第{index}号示例有限公司",
        "unifiedSocialCreditCode": credit_code(index),
        "validFrom": "2026-01-01",
        "validUntil": "2031-12-31",
        "issuingAuthority": AUTHORITY,
    }


def _document(path: Path) -> dict[str, object]:
    return json.loads(path.read_text("utf-8"))


def _verifier_home(node_agency: NodeAgency, folder: Path) -> Path:
    """A home that trusts the agency's registry and has never seen a definition file."""
    chain = connect(node_agency.node.url)
    HomeConfig(node_agency.node.url, chain.chain_id, node_agency.registry.address).save(folder)
    return folder


def _verify(home: Path, document: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "ELICENCE_HOME": str(home), "COLUMNS": "200", "NO_COLOR": "1"}
    return subprocess.run(
        [str(ELICENCE), "verify", str(document), "--json"],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )


def _published(node_agency: NodeAgency, tmp_path: Path) -> None:
    """The governor publishes demo-permit (code 21) and business-licence version 2 with
    `elicence catalogue publish`, and authorises agency 1 for both types with `elicence
    agency types`."""
    definitions = tmp_path / "definitions"
    definitions.mkdir()
    v2 = _business_v2(definitions)
    check_successor(
        catalogue().get("business-licence", 1),
        parse_definition_text(v2.read_text("utf-8"), str(v2)),
    )
    for file in (_demo_permit(definitions), v2):
        published = node_agency.run(
            "catalogue", "publish", str(file), ELICENCE_HOME=str(node_agency.governor_home)
        )
        assert published.returncode == 0, published.stderr
    # A type this installation does not ship is named by its code.
    authorised = node_agency.run(
        "agency", "types", "--id", "1", "--types", "business-licence,21",
        ELICENCE_HOME=str(node_agency.governor_home),
    )  # fmt: skip
    assert authorised.returncode == 0, authorised.stderr
    assert node_agency.registry.agency(1).licence_types == {1, 21}


def test_a_type_and_a_version_published_after_the_release_are_issued_and_verify(
    node_agency, tmp_path
):
    assert not catalogue().has("demo-permit", 1)  # not shipped: the point of the test
    assert not catalogue().has("business-licence", 2)
    before = node_agency.run(
        "issue",
        str(write_csv(tmp_path / "v1.csv", [business_licence(i) for i in range(2)])),
        "--type", "business-licence", "--out", str(tmp_path / "v1"), "--no-qr",
    )  # fmt: skip
    assert before.returncode == 0, before.stderr

    _published(node_agency, tmp_path)

    permits = write_csv(tmp_path / "permits.csv", [_permit(i) for i in range(1, 4)])
    checked = node_agency.run("issue", str(permits), "--type", "demo-permit", "--check")
    assert checked.returncode == 0, checked.stderr
    assert "all 3 row(s) are valid 示例许可证 (demo-permit version 1)" in checked.stdout
    issued = node_agency.run(
        "issue", str(permits), "--type", "demo-permit", "--out", str(tmp_path / "permits"),
    )  # fmt: skip
    assert issued.returncode == 0, issued.stderr
    assert "3 示例许可证 in 1 batch(es)" in issued.stdout
    permit = tmp_path / "permits" / "DP00000001.json"
    document = json.loads(permit.read_text("utf-8"))
    assert (document["type"], document["typeVersion"]) == ("demo-permit", 1)
    assert (tmp_path / "permits" / "DP00000002.png").exists()

    # The latest published version by default; batches of 2 staged by 2 worker processes.
    rows = [business_licence(i, remarks=f"第{i}号") for i in range(10, 15)]
    rows[0].pop("remarks")
    v2 = write_csv(tmp_path / "v2.csv", rows)
    checked = node_agency.run("issue", str(v2), "--type", "business-licence", "--check")
    assert "all 5 row(s) are valid 营业执照 (business-licence version 2)" in checked.stdout
    second = node_agency.run(
        "issue", str(v2), "--type", "business-licence",
        "--out", str(tmp_path / "v2"), "--workers", "2", "--batch-size", "2",
    )  # fmt: skip
    assert second.returncode == 0, second.stderr
    assert "5 营业执照 in 3 batch(es)" in second.stdout
    for path in sorted((tmp_path / "v2").glob("110108*.json")):
        assert json.loads(path.read_text("utf-8"))["typeVersion"] == 2, path.name
    assert _document(tmp_path / "v2" / "110108000000000011.json")["fields"] == {
        **business_licence(11),
        "remarks": "第11号",
    }

    # The QR code's text names the type by code, a JSON document by id: the verifier
    # finds the code from the document's anchor, then loads the definition of code 21
    # version 1 from the chain, either way.
    verifier = _verifier_home(node_agency, tmp_path / "verifier-home")
    for document_path in (
        tmp_path / "permits" / "DP00000001.json",
        tmp_path / "permits" / "DP00000001.el1",
        tmp_path / "permits" / "DP00000003.el1",
        tmp_path / "v2" / "110108000000000010.json",
        tmp_path / "v2" / "110108000000000014.json",
        tmp_path / "v1" / "110108000000000001.json",
    ):
        verdict = _verify(verifier, document_path)
        assert verdict.returncode == 0, (document_path.name, verdict.stdout, verdict.stderr)
        assert json.loads(verdict.stdout)["status"] == "VALID"
    assert _document(tmp_path / "v1" / "110108000000000001.json")["typeVersion"] == 1


def test_a_version_not_published_is_refused_in_one_line_and_nothing_is_sent(node_agency, tmp_path):
    _published(node_agency, tmp_path)
    chain = connect(node_agency.node.url)
    nonce = chain.w3.eth.get_transaction_count(node_agency.key.address)
    source = write_csv(tmp_path / "in.csv", [business_licence(1)])
    out = tmp_path / "out"
    refused = node_agency.run(
        "issue", str(source), "--type", "business-licence", "--type-version", "3",
        "--out", str(out),
    )  # fmt: skip
    assert refused.returncode == 1
    assert len(refused.stderr.strip().splitlines()) == 1, refused.stderr
    assert "business-licence version 3 is not published" in refused.stderr
    assert "latest is version 2" in refused.stderr
    assert chain.w3.eth.get_transaction_count(node_agency.key.address) == nonce
    assert not out.exists()

    # A type this installation does not ship can be named by its code too.
    permits = write_csv(tmp_path / "permits.csv", [_permit(1)])
    by_code = node_agency.run("issue", str(permits), "--type", "21", "--check")
    assert by_code.returncode == 0, by_code.stderr
    assert "valid 示例许可证 (demo-permit version 1)" in by_code.stdout

    # An older published version can still be named.
    older = node_agency.run(
        "issue", str(source), "--type", "business-licence", "--type-version", "1",
        "--out", str(out), "--no-qr",
    )  # fmt: skip
    assert older.returncode == 0, older.stderr
    assert json.loads((out / "110108000000000001.json").read_text("utf-8"))["typeVersion"] == 1


def test_a_type_the_registry_never_published_names_the_registry(node_agency, tmp_path):
    source = write_csv(tmp_path / "in.csv", [_permit(1)])
    refused = node_agency.run(
        "issue", str(source), "--type", "demo-permit", "--out", str(tmp_path / "out")
    )
    assert refused.returncode == 2
    assert len(refused.stderr.strip().splitlines()) == 1, refused.stderr
    assert "demo-permit" in refused.stderr and node_agency.registry.address in refused.stderr


def test_a_staging_job_carries_its_type_version_to_a_process_that_lacks_it(tmp_path):
    """A worker stages under the very version the job names, never the one its own
    catalogue calls current."""
    v2 = parse_definition_text(_business_v2(tmp_path).read_text("utf-8"), "v2")
    assert not catalogue().has("business-licence", 2)
    rows = [business_licence(1, remarks="备注一"), business_licence(2)]
    job = Job(
        index=0,
        licence_type=v2,
        positions=[0, 1],
        secrets=None,
        chain_id=1337,
        registry="0x" + "11" * 20,
        staging=str(tmp_path / ".staging"),
        qr=False,
    )
    staged = stage_batch(job, rows)
    document = json.loads((tmp_path / ".staging" / staged.files[0]).read_bytes())
    assert (document["type"], document["typeVersion"]) == ("business-licence", 2)
    assert document["fields"]["remarks"] == "备注一"
    assert not catalogue().has("business-licence", 2)  # nothing leaks into the process


def test_a_run_killed_after_anchoring_is_finished_under_the_version_it_was_anchored_under(
    node_agency, tmp_path
):
    """Version 2 published between a killed run and its re-run: the re-run, which now
    defaults to version 2, must not publish documents naming version 2 for a batch
    anchored under version 1 (verifiers would find them TAMPERED)."""
    source = write_csv(tmp_path / "in.csv", [business_licence(i) for i in range(3)])
    out = tmp_path / "out"
    args = ["issue", str(source), "--type", "business-licence", "--out", str(out), "--no-qr"]
    killed = node_agency.run(*args, fault="after-send")
    assert killed.returncode < 0, killed.stderr
    # Only a label changed: the same field list, so the same rows hash the same.
    raw = json.loads((TYPES / "business-licence.json").read_text("utf-8"))
    raw["version"] = 2
    raw["fields"][-1]["label"]["en"] = "Registration authority"
    relabelled = tmp_path / "business-licence-v2.json"
    relabelled.write_text(json.dumps(raw, ensure_ascii=False), "utf-8")
    published = node_agency.run(
        "catalogue", "publish", str(relabelled), ELICENCE_HOME=str(node_agency.governor_home)
    )
    assert published.returncode == 0, published.stderr

    again = node_agency.run(*args)
    assert again.returncode == 1
    assert "with --type-version 1, the version it was anchored under" in again.stderr
    assert not list(out.glob("110108*.json"))

    finished = node_agency.run(*args, "--type-version", "1")
    assert finished.returncode == 0, finished.stderr
    assert "already anchored" in finished.stdout
    assert _document(out / "110108000000000001.json")["typeVersion"] == 1
    verifier = _verifier_home(node_agency, tmp_path / "verifier-home")
    verdict = _verify(verifier, out / "110108000000000001.json")
    assert verdict.returncode == 0, verdict.stdout + verdict.stderr
