"""`elicence catalogue`, `catalogue show TYPE` and `catalogue check FILE [--against OLD]`,
run as the real command: on an 80-column terminal and into a pipe."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from rich.cells import cell_len

from licence.catalogue import catalogue
from tests.cli.test_columns import WIDTH, in_terminal
from tests.conftest import run_elicence

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
