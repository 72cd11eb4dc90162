"""Running a sheet again after changing it: rows issued before with the same fields are
skipped as already issued; only a row whose fields really changed is refused."""

from __future__ import annotations

import pytest

from issuer.errors import LicenceValidationError
from issuer.issuing import IssueOptions, issue_file
from issuer.spreadsheet import read_input
from licence.catalogue import catalogue
from tests.agency.conftest import write_csv
from tests.samples import business_licence

BUSINESS = catalogue().get("business-licence")


def _issue(agency, tmp_path, rows, **options):
    source = read_input(write_csv(tmp_path / "in.csv", rows), BUSINESS)
    options.setdefault("qr", False)
    return issue_file(agency, BUSINESS, source, tmp_path / "out", options=IssueOptions(**options))


def test_a_sheet_run_again_with_a_new_row_issues_it_and_skips_the_issued_rows(agency, tmp_path):
    rows = [business_licence(i) for i in range(1, 5)]
    first = _issue(agency, tmp_path, rows)
    issued_before = (tmp_path / "out" / "110108000000000001.json").read_bytes()

    second = _issue(agency, tmp_path, [*rows, business_licence(5)])

    assert second.count == 1
    assert [b.count for b in second.batches] == [1]
    assert second.batches[0].root != first.batches[0].root
    assert [(s.row, s.number) for s in second.already_issued] == [
        (2, "110108000000000001"),
        (3, "110108000000000002"),
        (4, "110108000000000003"),
        (5, "110108000000000004"),
    ]
    assert all(s.root == first.batches[0].root for s in second.already_issued)
    assert (tmp_path / "out" / "110108000000000005.json").exists()
    assert (tmp_path / "out" / "110108000000000001.json").read_bytes() == issued_before
    assert len(agency.records.batches()) == 2


def test_a_sheet_whose_rows_were_all_issued_in_other_batches_issues_nothing(agency, tmp_path):
    rows = [business_licence(i) for i in range(1, 4)]
    _issue(agency, tmp_path, rows[:2])
    _issue(agency, tmp_path, rows[2:])
    block = agency.registry.chain.block_number()

    again = _issue(agency, tmp_path, rows)

    assert again.count == 0 and again.batches == ()
    assert len(again.already_issued) == 3
    assert agency.registry.chain.block_number() == block


def test_a_changed_field_of_an_issued_row_is_refused_naming_the_field(agency, tmp_path):
    rows = [business_licence(i) for i in range(1, 4)]
    _issue(agency, tmp_path, rows)
    changed = [rows[0], business_licence(2, registeredCapital="200万元人民币"), rows[2]]

    with pytest.raises(LicenceValidationError) as refused:
        _issue(agency, tmp_path, [*changed, business_licence(4)])

    assert [(p.row, p.path, p.value) for p in refused.value.problems] == [
        (3, "registeredCapital", "200万元人民币")
    ]
    assert "100万元人民币" in refused.value.problems[0].reason
    assert "supersede" in refused.value.problems[0].reason
    assert not (tmp_path / "out" / "110108000000000004.json").exists()


def test_a_changed_row_whose_document_is_gone_is_still_refused(agency, tmp_path):
    _issue(agency, tmp_path, [business_licence(1)])
    (tmp_path / "out" / "110108000000000001.json").unlink()

    with pytest.raises(LicenceValidationError) as refused:
        _issue(agency, tmp_path, [business_licence(1, legalRepresentative="李四")])

    [problem] = refused.value.problems
    assert (problem.row, problem.path) == (2, "licenceNumber")
    assert "different fields" in problem.reason


def test_with_workers_the_issued_rows_of_a_longer_sheet_are_skipped(agency, tmp_path):
    rows = [business_licence(i) for i in range(1, 8)]
    _issue(agency, tmp_path, rows[:5], batch_size=2, workers=2)

    again = _issue(agency, tmp_path, [rows[6], *rows[:5], rows[5]], batch_size=2, workers=2)

    assert again.count == 2
    assert sorted(s.row for s in again.already_issued) == [3, 4, 5, 6, 7]
    assert {p.name for p in (tmp_path / "out").glob("1101*.json")} == {
        f"{r['licenceNumber']}.json" for r in rows
    }


@pytest.mark.slow
def test_the_command_reports_the_skipped_rows_and_names_a_changed_field(node_agency, tmp_path):
    rows = [business_licence(i) for i in range(1, 4)]
    out = tmp_path / "out"

    def issue(sheet_rows):
        sheet = write_csv(tmp_path / "in.csv", sheet_rows)
        return node_agency.run("issue", str(sheet), "--type", "business-licence", "--out", str(out))

    assert issue(rows).returncode == 0
    again = issue([*rows, business_licence(4)])
    assert again.returncode == 0, again.stderr
    assert (
        "already issued with the same fields, skipped: row 2 (110108000000000001), "
        "row 3 (110108000000000002), row 4 (110108000000000003)"
    ) in again.stdout
    assert "1 营业执照 in 1 batch(es)" in again.stdout

    issued_name = business_licence(1)["holderName"]
    changed = issue([business_licence(1, holderName=issued_name + "（变更）")])
    assert changed.returncode == 1
    assert (
        "row 2: holderName: differs from licence 110108000000000001 already issued in batch 0x"
    ) in changed.stderr
    assert f"'{issued_name}'" in changed.stderr


def test_rows_issued_in_another_hash_suite_are_skipped_when_their_fields_are_the_same(
    agency, tmp_path
):
    rows = [business_licence(i) for i in range(1, 3)]
    _issue(agency, tmp_path, rows, suite="sm3-128")

    again = _issue(agency, tmp_path, [*rows, business_licence(3)])

    assert again.count == 1
    assert [s.number for s in again.already_issued] == ["110108000000000001", "110108000000000002"]
