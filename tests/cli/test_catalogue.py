"""`elicence catalogue`, `catalogue show TYPE` and `catalogue check FILE [--against OLD]`,
run as the real command: on an 80-column terminal and into a pipe."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
from rich.cells import cell_len

from licence.catalogue import catalogue
from licence.catalogue_rules import parse_definition
from tests.cli.test_columns import WIDTH, in_terminal
from tests.conftest import ELICENCE, run_elicence
from tests.samples import REMARKS_FIELD

TYPES = Path(__file__).parents[2] / "licence" / "licence_types"


def _definition(tmp_path: Path, name: str, change=None, type_id="food-business-licence") -> Path:
    raw = json.loads((TYPES / f"{type_id}.json").read_text("utf-8"))
    if change is not None:
        change(raw)
    path = tmp_path / name
    path.write_text(json.dumps(raw, ensure_ascii=False), "utf-8")
    return path


def _table_rows(shown: str) -> list[list[str]]:
    """The rows of a boxed table, each cell's wrapped lines joined."""
    rows: list[list[str]] = []
    for line in shown.splitlines():
        if not line.startswith("│"):
            continue
        cells = [cell.strip() for cell in line.strip("│").split("│")]
        if cells[0]:  # a row starts where its first (typed, never wrapped) cell is
            rows.append(cells)
        else:
            rows[-1] = [a + b for a, b in zip(rows[-1], cells, strict=True)]
    return rows


def test_catalogue_at_80_columns_lists_every_type_with_code_version_and_owners_whole():
    shown = in_terminal("catalogue")
    assert "…" not in shown
    assert max(cell_len(line) for line in shown.splitlines()) <= WIDTH
    expected = [
        [str(t.code), t.id, str(t.version), t.name.zh, "；".join(o.zh for o in t.owners)]
        for t in catalogue()
    ]
    assert _table_rows(shown) == expected


def test_catalogue_through_a_pipe_is_one_tab_separated_line_per_type():
    result = run_elicence("catalogue")
    header, *lines = result.stdout.splitlines()
    assert header.split("\t") == ["code", "id", "version", "名称", "owners"]
    expected = [(str(t.code), t.id, str(t.version), t.name.zh) for t in catalogue()]
    assert [tuple(line.split("\t")[:4]) for line in lines] == expected
    assert len(lines) >= 20


def test_show_at_80_columns_shows_every_field_name_label_and_pattern_whole():
    licence_type = catalogue().get("physician-certificate")
    shown = in_terminal("catalogue", "show", licence_type.id)
    assert "…" not in shown
    assert licence_type.name.zh in shown and licence_type.owners[0].zh in shown
    flat = "".join(shown.split())
    for spec in licence_type.fields:
        assert spec.name in shown and spec.label.zh in shown
        if spec.pattern is not None:
            assert spec.pattern.pattern in flat


def test_show_through_a_pipe_has_kind_required_personal_and_pattern_per_field():
    result = run_elicence("catalogue", "show", "17")  # by code, too
    header, *lines = result.stdout.splitlines()
    assert header.split("\t") == [
        "field",
        "标签",
        "label",
        "kind",
        "required",
        "personal",
        "pattern",
    ]
    rows = {line.split("\t")[0]: line.split("\t") for line in lines}
    assert rows["idNumber"][3:6] == ["text", "yes", "yes"]
    assert rows["idNumber"][6].startswith("^[1-9][0-9]{5}")
    assert rows["practiceInstitution"][3:6] == ["text", "yes", "no"]


def test_show_of_an_unknown_type_names_the_known_ones():
    result = run_elicence("catalogue", "show", "driving-licence")
    assert result.returncode == 2
    assert "unknown licence type 'driving-licence'" in result.stderr
    assert "business-licence" in result.stderr


def test_check_passes_a_valid_definition():
    result = run_elicence("catalogue", "check", str(TYPES / "marriage-certificate.json"))
    assert result.returncode == 0, result.stderr
    assert "marriage-certificate" in result.stdout and "valid" in result.stdout


def test_check_names_every_member_at_fault(tmp_path):
    def spoil(raw):
        raw["fields"][3]["pattern"] = "(("
        raw["fields"][1]["colour"] = "red"

    result = run_elicence("catalogue", "check", str(_definition(tmp_path, "bad.json", spoil)))
    assert result.returncode == 1
    assert "fields[3].pattern: not a valid regular expression" in result.stderr
    assert "fields[1].colour: unknown member" in result.stderr


def test_check_refuses_a_code_another_type_has(tmp_path):
    def clash(raw):
        raw["id"] = "street-food-licence"
        raw["code"] = 1

    result = run_elicence("catalogue", "check", str(_definition(tmp_path, "new.json", clash)))
    assert result.returncode == 1
    assert "code: 1 is already the code of business-licence" in result.stderr


def test_check_refuses_a_changed_definition_under_a_version_already_shipped(tmp_path):
    def relabel(raw):
        raw["fields"][4]["label"]["en"] = "Domicile"

    result = run_elicence("catalogue", "check", str(_definition(tmp_path, "v1.json", relabel)))
    assert result.returncode == 1
    assert "food-business-licence version 1 is already defined otherwise" in result.stderr
    assert "new version (2)" in result.stderr


def test_check_against_an_older_version_passes_a_field_added_at_the_end(tmp_path):
    def next_version(raw):
        raw["version"] = 2
        raw["fields"].append(
            {"name": "remarks", "label": {"zh": "备注", "en": "Remarks"}, "kind": "text",
             "required": False, "personal": False}
        )  # fmt: skip

    new = _definition(tmp_path, "v2.json", next_version)
    result = run_elicence(
        "catalogue", "check", str(new), "--against", str(TYPES / "food-business-licence.json")
    )
    assert result.returncode == 0, result.stderr
    assert "may follow version 1" in result.stdout


@pytest.mark.parametrize(
    ("change", "rule"),
    [
        (lambda raw: raw["fields"].pop(8), "no-removed-field"),
        (lambda raw: raw["fields"][3].update(personal=False), "stays-personal"),
    ],
    ids=["field removed", "personal dropped"],
)
def test_check_against_an_older_version_names_the_rule_broken(tmp_path, change, rule):
    def next_version(raw):
        raw["version"] = 2
        change(raw)

    new = _definition(tmp_path, "v2.json", next_version)
    old = str(TYPES / "food-business-licence.json")
    result = run_elicence("catalogue", "check", str(new), "--against", old)
    assert result.returncode == 1
    assert f"rule {rule}" in result.stderr


def test_check_of_a_missing_file_is_unusable_input(tmp_path):
    result = run_elicence("catalogue", "check", str(tmp_path / "none.json"))
    assert result.returncode == 2
    assert "cannot read" in result.stderr


REMARKS = REMARKS_FIELD
# A test fixture: the passphrase of the keystores these tests make, never a real key's.
SECRET = "correct horse battery staple"


def _governor(home, *args):
    env = {**os.environ, "ELICENCE_HOME": str(home), "ELICENCE_PASSPHRASE": SECRET}
    env |= {"COLUMNS": "200", "NO_COLOR": "1"}
    return subprocess.run(
        [str(ELICENCE), *args], capture_output=True, text=True, env=env, timeout=300, check=False
    )


def _next_version(version=2, label="备注", remove=False):
    def change(raw):
        raw["version"] = version
        if remove:
            raw["fields"].pop(8)
        raw["fields"].append({**REMARKS, "label": {"zh": label, "en": "Remarks"}})

    return change


def test_publish_refuses_an_invalid_definition_before_reaching_any_chain(tmp_path):
    def spoil(raw):
        raw["fields"][3]["pattern"] = "(["

    bad = _definition(tmp_path, "bad.json", spoil)
    result = run_elicence("catalogue", "publish", str(bad), "--chain", "http://127.0.0.1:9")
    assert result.returncode == 1
    assert "fields[3].pattern" in result.stderr


@pytest.mark.slow  # real processes, scrypt keystores
def test_publish_then_list_show_and_refuse_what_would_change_a_published_version(
    embedded_node_url, tmp_path
):
    home = tmp_path / "governor"
    deployed = _governor(home, "registry", "deploy", "--chain", embedded_node_url)
    assert deployed.returncode == 0, deployed.stderr

    listed = _governor(home, "catalogue")
    assert listed.returncode == 0, listed.stderr
    header, *lines = listed.stdout.splitlines()
    assert header.split("\t")[-1] == "registry"
    assert all("\tpublished at block " in line for line in lines), listed.stdout

    v2 = _definition(tmp_path, "food-v2.json", _next_version())
    published = _governor(home, "catalogue", "publish", str(v2))
    assert published.returncode == 0, published.stderr
    expected_hash = parse_definition(json.loads(v2.read_text("utf-8"))).definition_hash.hex()
    line = published.stdout.strip()
    assert line.startswith("2 food-business-licence version 2: published")
    assert f"sha256 {expected_hash}" in line and ", gas " in line

    again = _governor(home, "catalogue", "publish", str(v2))
    assert again.returncode == 0 and "published already" in again.stdout

    listed = _governor(home, "catalogue").stdout.splitlines()
    food_v2 = [ln.split("\t") for ln in listed if ln.startswith("2\tfood-business-licence\t2\t")]
    assert len(food_v2) == 1 and food_v2[0][-1].startswith("published at block ")

    shown = _governor(home, "catalogue", "show", "food-business-licence", "--version", "2")
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.splitlines()[-1].split("\t")[0] == "remarks"

    other = _definition(tmp_path, "food-v2-other.json", _next_version(label="附注"))
    refused = _governor(home, "catalogue", "publish", str(other))
    assert refused.returncode == 1
    assert f"0x{expected_hash}" in refused.stderr and "nothing was sent" in refused.stderr

    gap = _definition(tmp_path, "food-v4.json", _next_version(version=4))
    refused = _governor(home, "catalogue", "publish", str(gap))
    assert refused.returncode == 1 and "the next is 3" in refused.stderr

    broken = _definition(tmp_path, "food-v3.json", _next_version(version=3, remove=True))
    refused = _governor(home, "catalogue", "publish", str(broken))
    assert refused.returncode == 1
    assert "rule no-removed-field" in refused.stderr


def test_catalogue_is_listed_when_the_named_registry_cannot_be_read():
    result = run_elicence(
        "catalogue", "--chain", "http://127.0.0.1:9", "--registry", "0x" + "11" * 20
    )
    assert result.returncode == 0, result.stderr
    assert "registry could not be read" in result.stderr
    header, *lines = result.stdout.splitlines()
    assert header.split("\t") == ["code", "id", "version", "名称", "owners"]
    assert len(lines) == len(catalogue().every_version())
