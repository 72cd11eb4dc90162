"""Reading agency input: CSV with or without BOM, Chinese headers, JSON Lines."""

from __future__ import annotations

import json

import pytest

from issuer.spreadsheet import InputError, read_input
from licence.catalogue import catalogue
from tests.agency.conftest import write_csv
from tests.samples import business_licence

BUSINESS = catalogue().get("business-licence")


@pytest.mark.parametrize("bom", [True, False], ids=["bom", "no-bom"])
def test_csv_with_chinese_headers_reads_as_field_names(tmp_path, bom):
    row = business_licence(1)
    labelled = {BUSINESS.field(n).label.zh: v for n, v in row.items()}  # type: ignore[union-attr]
    read = read_input(write_csv(tmp_path / "in.csv", [labelled], bom=bom), BUSINESS)
    assert read.problems == []
    assert [(r.number, r.fields) for r in read.rows] == [(2, row)]


def test_empty_cell_means_the_field_is_absent(tmp_path):
    rows = [business_licence(1), business_licence(2, validUntil="")]
    read = read_input(write_csv(tmp_path / "in.csv", rows), BUSINESS)
    assert "validUntil" in read.rows[0].fields
    assert "validUntil" not in read.rows[1].fields


def test_unknown_column_is_unusable_input_naming_the_columns(tmp_path):
    path = tmp_path / "in.csv"
    path.write_text("证照编号,colour\n110108000000000001,red\n", encoding="utf-8")
    with pytest.raises(InputError, match="'colour' is not a field of 营业执照"):
        read_input(path, BUSINESS)


def test_text_that_is_not_utf8_is_unusable_input(tmp_path):
    path = tmp_path / "in.csv"
    path.write_bytes("证照编号\n1101080001\n".encode("gb18030"))
    with pytest.raises(InputError, match="not UTF-8"):
        read_input(path, BUSINESS)


def test_jsonl_reports_bad_lines_by_line_number_and_keeps_the_others(tmp_path):
    path = tmp_path / "in.jsonl"
    lines = [json.dumps(business_licence(1), ensure_ascii=False), "{not json", "[1, 2]"]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    read = read_input(path, BUSINESS)
    assert [r.number for r in read.rows] == [1]
    assert [(p.row, p.reason.split(" (")[0]) for p in read.problems] == [
        (2, "is not valid JSON"),
        (3, "is not a JSON object"),
    ]
