"""The example sheets under examples/: valid, Chinese-headed, from Guangdong, issued end to
end by the real `elicence issue` of their agency, and what it writes verifies."""

from __future__ import annotations

import csv
import json
import subprocess
from pathlib import Path

import pytest

from issuer.keystore import AGENCY_KEYSTORE, create, keystore_path
from issuer.spreadsheet import read_input
from ledger import Registry, connect
from ledger.config import HomeConfig
from licence.catalogue import catalogue
from licence.credit_code import problem_with
from licence.document import loads_document
from licence.fields import field_problems
from tests.agency.conftest import PASSPHRASE, NodeAgency
from tests.conftest import ELICENCE, REPO_ROOT, key_for, publish_types

EXAMPLES = REPO_ROOT / "examples"
SHEETS = {
    "business-licence": EXAMPLES / "business-licences.csv",
    "food-business-licence": EXAMPLES / "food-business-licences.csv",
}
# The agency named in the sheets' issuing authority column (登记机关, 发证机关).
AGENCY_NAME = "广州市天河区市场监督管理局"
AGENCY_CODE = "11440106006954315L"


def _rows(type_id: str) -> list[dict[str, str]]:
    with SHEETS[type_id].open(encoding="utf-8-sig", newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.mark.parametrize("type_id", sorted(SHEETS))
def test_each_example_has_chinese_headers_and_about_twenty_valid_guangdong_rows(type_id):
    kind = catalogue().get(type_id)
    rows = _rows(type_id)
    assert list(rows[0]) == [spec.label.zh for spec in kind.fields]
    assert 15 <= len(rows) <= 30
    read = read_input(SHEETS[type_id], kind)
    assert read.problems == []
    for row in read.rows:
        assert field_problems(kind, row.fields, row=row.number) == []
        assert problem_with(str(row.fields["unifiedSocialCreditCode"])) is None
        assert row.fields["issuingAuthority"] == AGENCY_NAME
        assert all(
            str(row.fields[name]).startswith("广州市")
            for name in ("registeredAddress", "residence", "businessPremises")
            if name in row.fields
        )
    assert problem_with(AGENCY_CODE) is None


def test_readme_and_the_agency_guide_point_to_the_examples():
    for doc in (REPO_ROOT / "README.md", REPO_ROOT / "docs" / "agency.md"):
        text = doc.read_text(encoding="utf-8")
        for sheet in SHEETS.values():
            assert f"examples/{sheet.name}" in text, (doc.name, sheet.name)


@pytest.fixture
def tianhe(node_process, tmp_path) -> NodeAgency:
    """The agency of the examples, authorised for both licence types, on a real node."""
    chain = connect(node_process.url)
    governor, key = key_for("examples-governor"), key_for("examples-agency")
    registry = Registry.deploy(chain, governor)
    publish_types(registry, governor, [1, 2])
    registry.register_agency(governor, AGENCY_CODE, AGENCY_NAME, key.address, [1, 2])
    home = tmp_path / "tianhe-home"
    HomeConfig(node_process.url, chain.chain_id, registry.address).save(home)
    create(keystore_path(home, AGENCY_KEYSTORE), PASSPHRASE, key=key.key)
    return NodeAgency(node_process, registry, home, tmp_path / "unused", key)


def _verify(agency: NodeAgency, path: Path) -> subprocess.CompletedProcess[str]:
    return agency.run(
        "verify",
        str(path),
        "--chain",
        agency.node.url,
        "--registry",
        agency.registry.address,
        "--json",
    )


@pytest.mark.slow
@pytest.mark.parametrize("type_id", sorted(SHEETS))
def test_each_example_is_issued_whole_and_its_el1_and_json_files_verify(tianhe, tmp_path, type_id):
    kind = catalogue().get(type_id)
    out = tmp_path / "issued"
    checked = tianhe.run("issue", str(SHEETS[type_id]), "--type", type_id, "--check")
    assert checked.returncode == 0, checked.stderr

    issued = tianhe.run("issue", str(SHEETS[type_id]), "--type", type_id, "--out", str(out))

    assert issued.returncode == 0, issued.stderr
    rows = _rows(type_id)
    assert f"{len(rows)} {kind.name.zh} in 1 batch(es)" in issued.stdout
    labels = {spec.label.zh: spec.name for spec in kind.fields}
    for row in rows:
        number = row[kind.fields[0].label.zh]
        document = loads_document((out / f"{number}.json").read_bytes())
        assert document.fields == {labels[h]: v for h, v in row.items() if v}
        assert document.computed_root() == document.anchor.root
        assert tianhe.registry.anchor_of(document.anchor.root) is not None
        assert (out / f"{number}.png").exists()
        text = (out / f"{number}.el1").read_text(encoding="utf-8")
        assert text.startswith("EL2:") and text.endswith("\n")
    first, last = (row[kind.fields[0].label.zh] for row in (rows[0], rows[-1]))
    for path in (out / f"{first}.el1", out / f"{last}.json"):
        verdict = _verify(tianhe, path)
        assert verdict.returncode == 0, verdict.stdout + verdict.stderr
        assert json.loads(verdict.stdout)["status"] == "VALID"


@pytest.mark.slow
def test_with_no_qr_no_image_and_no_el1_is_written(tianhe, tmp_path):
    out = tmp_path / "issued"
    issued = tianhe.run(
        "issue",
        str(SHEETS["business-licence"]),
        "--type",
        "business-licence",
        "--out",
        str(out),
        "--no-qr",
    )
    assert issued.returncode == 0, issued.stderr
    assert not list(out.glob("*.png")) and not list(out.glob("*.el1"))
    assert len(list(out.glob("4401*.json"))) == len(_rows("business-licence"))


def test_elicence_is_the_command_the_tests_run():
    assert ELICENCE.exists()
