"""`elicence issue FILE --check`: a whole sheet checked with no chain, no key, no home."""

from __future__ import annotations

import pytest

from licence.catalogue import catalogue
from licence.fields import field_problems
from tests.agency.conftest import write_csv
from tests.conftest import run_elicence
from tests.samples import business_licence

BUSINESS = catalogue().get("business-licence")


def _in_chinese(row: dict[str, str]) -> dict[str, str]:
    return {BUSINESS.field(name).label.zh: value for name, value in row.items()}  # type: ignore[union-attr]


def test_a_clean_sheet_passes_with_no_chain_no_key_and_no_home(tmp_path, isolated_home):
    sheet = write_csv(
        tmp_path / "营业执照.csv", [_in_chinese(business_licence(i)) for i in range(5)]
    )
    home = isolated_home / "never-made"

    result = run_elicence(
        "issue", str(sheet), "--type", "business-licence", "--check", "--home", str(home)
    )

    assert result.returncode == 0, result.stderr
    assert "all 5 row(s) are valid 营业执照" in result.stdout
    assert "passphrase" not in (result.stdout + result.stderr).lower()
    assert not home.exists()


def test_every_problem_of_the_sheet_is_listed_with_row_column_value_and_reason(tmp_path):
    rows = [
        business_licence(1),
        business_licence(2, validFrom="2024-02-30"),
        business_licence(3, unifiedSocialCreditCode="91440106312345673A", validUntil="2020/1/1"),
        business_licence(4),
        business_licence(5, licenceNumber="110108000000000001"),
    ]
    sheet = write_csv(tmp_path / "营业执照.csv", [_in_chinese(row) for row in rows])

    result = run_elicence("issue", str(sheet), "--type", "business-licence", "--check")

    assert result.returncode == 2
    lines = [line.strip() for line in result.stderr.splitlines()]
    assert lines[0] == f"error: {sheet}: 4 problem(s) in 3 row(s); nothing was issued:"
    assert lines[1:] == [
        "row 3, 营业期限自 (validFrom): is a date that does not exist: 2024-02 has 29 days "
        "(value '2024-02-30')",
        "row 4, 统一社会信用代码 (unifiedSocialCreditCode): is not a valid unified social "
        "credit code: check character is 'A' but the first 17 characters give 'Q' "
        "(value '91440106312345673A')",
        "row 4, 营业期限至 (validUntil): is not a date written YYYY-MM-DD (value '2020/1/1')",
        "row 6, 证照编号 (licenceNumber): repeats row 2 (value '110108000000000001')",
    ]
    assert result.stdout == ""


def test_check_of_a_file_that_is_no_sheet_is_unusable_input(tmp_path):
    sheet = tmp_path / "x.csv"
    sheet.write_text("what,is,this\n1,2,3\n", encoding="utf-8")
    result = run_elicence("issue", str(sheet), "--type", "business-licence", "--check")
    assert result.returncode == 2
    assert "column 'what' is not a field of 营业执照" in result.stderr


def test_without_check_the_output_folder_must_be_named(tmp_path):
    sheet = write_csv(tmp_path / "in.csv", [business_licence(1)])
    result = run_elicence("issue", str(sheet), "--type", "business-licence")
    assert result.returncode == 2
    assert "--out" in result.stderr


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("2024-02-30", "is a date that does not exist: 2024-02 has 29 days"),
        ("2023-02-29", "is a date that does not exist: 2023-02 has 28 days"),
        ("2024-04-31", "is a date that does not exist: 2024-04 has 30 days"),
        ("2024-13-01", "is a date that does not exist: there is no month 13"),
        ("2024-00-10", "is a date that does not exist: there is no month 0"),
        ("2024/02/01", "is not a date written YYYY-MM-DD"),
        ("2024-2-1", "is not a date written YYYY-MM-DD"),
        ("２０２４-02-01", "is not a date written YYYY-MM-DD"),
    ],
)
def test_a_well_written_date_that_does_not_exist_is_named_as_such(value, reason):
    [problem] = field_problems(BUSINESS, business_licence(1, dateOfEstablishment=value))
    assert (problem.path, problem.reason) == ("dateOfEstablishment", reason)


@pytest.mark.slow
def test_a_refused_run_leaves_no_output_folder_and_keeps_one_that_was_there(node_agency, tmp_path):
    sheet = write_csv(tmp_path / "in.csv", [business_licence(1, validFrom="2024-02-30")])
    made_by_the_run = tmp_path / "new" / "issued"
    kept = tmp_path / "kept"
    kept.mkdir()
    (kept / "notes.txt").write_text("mine", encoding="utf-8")
    empty_before = tmp_path / "empty"
    empty_before.mkdir()

    for out in (made_by_the_run, kept, empty_before):
        refused = node_agency.run(
            "issue", str(sheet), "--type", "business-licence", "--out", str(out)
        )
        assert refused.returncode == 1, refused.stderr
        assert "does not exist" in refused.stderr

    assert not (tmp_path / "new").exists()
    assert [p.name for p in kept.iterdir()] == ["notes.txt"]
    assert empty_before.is_dir() and not list(empty_before.iterdir())
