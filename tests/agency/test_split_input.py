"""A large CSV file split where its records end, and read in parts by worker processes.

The split must read exactly what reading the whole file reads (the whole read is the
definition), and any part it cannot read as expected must fall back to the whole read.
"""

from __future__ import annotations

import csv
import io
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from issuer import spreadsheet
from issuer.errors import LicenceValidationError
from issuer.issuing import IssueOptions, issue_file
from issuer.spreadsheet import CsvChunks, InputError, ReadInput, read_for_issuing, read_input
from licence.catalogue import catalogue
from licence.document import loads_document
from tests.agency.conftest import write_csv
from tests.issuing_paths import PATHS, issuing_path
from tests.samples import business_licence

BUSINESS = catalogue().get("business-licence")

_cells = st.text(st.sampled_from('ab,"\n\r 中'), max_size=5)


@pytest.mark.parametrize("path", PATHS)
@given(
    st.lists(st.lists(_cells, min_size=1, max_size=3), max_size=8),
    st.sampled_from(["\n", "\r\n", "\r"]),
    st.booleans(),
    st.integers(min_value=1, max_value=4),
)
def test_record_ends_are_where_csv_reader_ends_records(
    path, rows, terminator, last_line_end, every
):
    out = io.StringIO(newline="")
    csv.writer(out, lineterminator=terminator).writerows(rows)
    text = out.getvalue()
    if not last_line_end and text.endswith(terminator):
        text = text[: -len(terminator)]
    data = text.encode("utf-8")
    expected = list(csv.reader(io.StringIO(text, newline=""), strict=True))
    with issuing_path(path):
        scanned = spreadsheet.record_bounds(data, 0, every)
    assert scanned is not None
    ends, records = scanned
    assert records == len(expected)
    parts, start = [], 0
    for end in ends:
        parts += csv.reader(io.StringIO(data[start:end].decode("utf-8"), newline=""))
        start = end
    assert parts == expected
    assert ends[-1] == len(data)


@pytest.mark.parametrize("path", PATHS)
@given(st.text(st.sampled_from('a,"\n\r'), max_size=12))
def test_record_ends_of_any_text_match_csv_reader_or_are_refused(path, text):
    try:
        expected = list(csv.reader(io.StringIO(text, newline=""), strict=True))
    except csv.Error:
        expected = None
    with issuing_path(path):
        scanned = spreadsheet.record_bounds(text.encode(), 0, 1)
    if scanned is None:
        assert expected is None  # refused only what csv.reader refuses
    else:
        assert expected is not None and scanned[1] == len(expected)


_plain_cells = st.text(st.sampled_from('ab,"\n\r 中\x00'), max_size=4)


@given(
    st.lists(st.lists(_plain_cells, min_size=3, max_size=3), max_size=6),
    st.sampled_from(["\n", "\r\n", "\r"]),
    st.booleans(),
)
def test_plain_rows_are_what_csv_reader_reads_or_are_left_to_it(
    rows, terminator, last_line_end
):
    out = io.StringIO(newline="")
    csv.writer(out, lineterminator=terminator).writerows(rows)
    text = out.getvalue()
    if not last_line_end and text.endswith(terminator):
        text = text[: -len(terminator)]
    data = b"x" + text.encode("utf-8")  # read from an offset, as parts are
    fields = ("a", "b", "c")
    plain = spreadsheet.plain_rows(data, 1, len(data), fields)
    records = list(csv.reader(io.StringIO(text, newline=""), strict=True))
    if plain is not None:
        assert plain == [dict(zip(fields, cells, strict=True)) for cells in records]
        assert '"' not in text and all(all(cells) and len(cells) == 3 for cells in records)
    else:
        # Left to csv.reader only when a row is not plain (quoted, a lone \r line end).
        assert (
            '"' in text
            or re.search("\r(?!\n)", text)
            or any(len(cells) != 3 or not all(cells) for cells in records)
        )


@pytest.fixture
def split_small(monkeypatch):
    """Split even small files, so that tests stay small."""
    monkeypatch.setattr(spreadsheet, "SPLIT_FROM", 1)


def _rows(count, **changes):
    rows = [business_licence(i) for i in range(count)]
    for index, fields in changes.items():
        rows[int(index.removeprefix("row"))].update(fields)
    return rows


def test_a_split_file_is_issued_as_the_whole_file_and_a_whole_rerun_finds_every_batch(
    agency, tmp_path, split_small
):
    rows = _rows(7)
    rows[2]["businessScope"] = '软件开发,"技术服务",技术咨询'  # written quoted
    path = write_csv(tmp_path / "in.csv", rows)
    source = read_for_issuing(path, BUSINESS, 3)
    assert isinstance(source, CsvChunks) and source.count == 7
    options = IssueOptions(batch_size=3, workers=2, qr=False)
    report = issue_file(agency, BUSINESS, source, tmp_path / "out", options=options)
    assert [b.count for b in report.batches] == [3, 3, 1]
    for record in agency.records.licences():
        document = loads_document((tmp_path / "out" / f"{record.number}.json").read_bytes())
        assert document.licence_id == record.licence_id
        assert document.computed_root() == record.root
    third = loads_document((tmp_path / "out" / f"{rows[2]['licenceNumber']}.json").read_bytes())
    assert third.fields["businessScope"] == rows[2]["businessScope"]
    # The whole read gives the same batches (input digests): nothing is anchored again.
    again = issue_file(
        agency, BUSINESS, read_input(path, BUSINESS), tmp_path / "out", options=options
    )
    assert [b.root for b in again.batches] == [b.root for b in report.batches]
    assert not any(b.anchored_now for b in again.batches)


def test_bad_rows_of_a_split_file_are_reported_with_their_spreadsheet_rows(
    agency, tmp_path, split_small
):
    rows = _rows(8)
    rows[0]["businessScope"] = "第一行\n第二行"  # one record over two lines, refused
    rows[4]["validFrom"] = "2020-13-01"
    rows[7]["licenceNumber"] = rows[1]["licenceNumber"]
    source = read_for_issuing(write_csv(tmp_path / "in.csv", rows), BUSINESS, 3)
    assert isinstance(source, CsvChunks)
    with pytest.raises(LicenceValidationError) as raised:
        options = IssueOptions(batch_size=3, workers=2)
        issue_file(agency, BUSINESS, source, tmp_path / "out", options=options)
    assert [(p.row, p.path) for p in raised.value.problems] == [
        (2, "businessScope"),
        (6, "validFrom"),
        (9, "licenceNumber"),
    ]
    assert agency.records.batches() == []


def test_skip_invalid_on_a_split_file_regroups_the_valid_rows(agency, tmp_path, split_small):
    rows = _rows(7)
    rows[1]["unifiedSocialCreditCode"] = "91110108700000002X"
    source = read_for_issuing(write_csv(tmp_path / "in.csv", rows), BUSINESS, 3)
    options = IssueOptions(batch_size=3, workers=2, qr=False, skip_invalid=True)
    report = issue_file(agency, BUSINESS, source, tmp_path / "out", options=options)
    assert [p.row for p in report.skipped] == [3]
    assert [b.count for b in report.batches] == [3, 3]
    issued = {record.number for record in agency.records.licences()}
    assert issued == {row["licenceNumber"] for i, row in enumerate(rows) if i != 1}


def _csv_bytes(rows):
    out = io.StringIO(newline="")
    writer = csv.DictWriter(out, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue().encode("utf-8")


@pytest.mark.parametrize(
    ("damage", "outcome"),
    [
        (lambda data: data.replace(b"\r\n", b"\r\n\r\n", 3), "issued"),  # a blank line, part 1
        (lambda data: data.replace("某".encode(), b"\xff", 1), "not UTF-8"),
        (lambda data: data + b"x,y,z,1,2,3,4,5,6,7,8,9,10\r\n", "has 13 cells"),
    ],
    ids=["blank-line", "not-utf-8", "too-wide-row"],
)
def test_an_irregular_part_makes_the_whole_file_be_read(
    agency, tmp_path, split_small, damage, outcome
):
    rows = _rows(6)
    rows[4]["holderName"] = "某" + rows[4]["holderName"]
    path = tmp_path / "in.csv"
    path.write_bytes(damage(_csv_bytes(rows)))
    source = read_for_issuing(path, BUSINESS, 2)
    assert isinstance(source, CsvChunks)
    options = IssueOptions(batch_size=2, workers=2, qr=False)
    if outcome == "issued":
        report = issue_file(agency, BUSINESS, source, tmp_path / "out", options=options)
        assert report.count == 6
    elif outcome == "not UTF-8":
        with pytest.raises(InputError, match="is not UTF-8 text"):
            issue_file(agency, BUSINESS, source, tmp_path / "out", options=options)
    else:
        with pytest.raises(LicenceValidationError, match=outcome):
            issue_file(agency, BUSINESS, source, tmp_path / "out", options=options)
    assert outcome == "issued" or agency.records.batches() == []


def test_small_files_json_lines_and_unsplittable_files_are_read_whole(tmp_path, monkeypatch):
    small = write_csv(tmp_path / "small.csv", _rows(3))
    assert isinstance(read_for_issuing(small, BUSINESS, 2), ReadInput)  # under SPLIT_FROM
    monkeypatch.setattr(spreadsheet, "SPLIT_FROM", 1)
    assert isinstance(read_for_issuing(small, BUSINESS, 2), CsvChunks)
    lines = tmp_path / "in.jsonl"
    lines.write_text("\n".join('{"holderName": "x"}' for _ in range(3)) + "\n")
    assert isinstance(read_for_issuing(lines, BUSINESS, 2), ReadInput)
    open_quote = tmp_path / "open.csv"
    open_quote.write_bytes(_csv_bytes(_rows(3)) + b'"never closed,\r\n')
    with pytest.raises(InputError, match="not a well-formed CSV file"):
        read_for_issuing(open_quote, BUSINESS, 2)
    with pytest.raises(InputError, match="cannot read"):
        read_for_issuing(tmp_path / "missing.csv", BUSINESS, 2)


@pytest.mark.parametrize("tail", [b"\r\n\r\n", b"\r\n,,,\r\n"], ids=["blank-lines", "empty-cells"])
def test_blank_lines_at_the_end_keep_the_split(agency, tmp_path, split_small, monkeypatch, tail):
    path = tmp_path / "in.csv"
    path.write_bytes(_csv_bytes(_rows(5)) + tail)
    source = read_for_issuing(path, BUSINESS, 2)
    assert isinstance(source, CsvChunks)

    def no_whole_read(self, licence_type):
        raise AssertionError("the file was read whole")

    monkeypatch.setattr(CsvChunks, "read_whole", no_whole_read)
    options = IssueOptions(batch_size=2, workers=2, qr=False)
    report = issue_file(agency, BUSINESS, source, tmp_path / "out", options=options)
    assert [b.count for b in report.batches] == [2, 2, 1]
