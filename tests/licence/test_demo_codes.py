"""Every credit code the project ships as demo or sample data passes its own GB 32100
check, and the demo is Guangdong's: the data a new user sees first must be right."""

from __future__ import annotations

import csv
import re
from pathlib import Path

import pytest

from licence.credit_code import problem_with
from tests import samples
from verifier.demo import DEMO_AGENCY_CODE, DEMO_AGENCY_NAME, demo_rows
from verifier.service.demo import food_rows

REPO = Path(__file__).resolve().parents[2]
# Where a reader finds codes to copy: the docs, the README, the example spreadsheets.
DOCUMENTS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
EXAMPLES = sorted((REPO / "examples").rglob("*.csv")) if (REPO / "examples").is_dir() else []
# A credit code as the docs write one: after --code, as the credit code member of a
# licence, or after its Chinese name (a licence number has 18 digits too, so the context
# is what tells them apart).
_WRITTEN_CODE = re.compile(
    r"(?:--code[ =]|unifiedSocialCreditCode\"?\s*[:=,]\s*\"?|统一社会信用代码[：:\s]*)"
    r"([0-9A-Z]{18})(?![0-9A-Z])"
)
_CODE_COLUMNS = {"unifiedSocialCreditCode", "统一社会信用代码"}
GUANGDONG = ("广东省", "广州市", "深圳市")


def _shipped_codes() -> dict[str, str]:
    """code -> where it is shipped."""
    rows = demo_rows(30)
    codes = {DEMO_AGENCY_CODE: "verifier.demo.DEMO_AGENCY_CODE"}
    codes |= {r["unifiedSocialCreditCode"]: "verifier.demo.demo_rows" for r in rows}
    codes |= {
        r["unifiedSocialCreditCode"]: "verifier.service.demo.food_rows" for r in food_rows(rows)
    }
    codes |= {samples.credit_code(i): "tests.samples.credit_code" for i in range(30)}
    for path in DOCUMENTS:
        for code in _WRITTEN_CODE.findall(path.read_text("utf-8")):
            codes[code] = str(path.relative_to(REPO))
    for path in EXAMPLES:
        with path.open(encoding="utf-8-sig", newline="") as sheet:
            for row in csv.DictReader(sheet):
                for column in _CODE_COLUMNS & row.keys():
                    codes[row[column]] = str(path.relative_to(REPO))
    return codes


@pytest.mark.parametrize(("code", "where"), sorted(_shipped_codes().items()))
def test_every_shipped_demo_credit_code_passes_the_gb_32100_check(code: str, where: str) -> None:
    assert problem_with(code) is None, f"{code} in {where}: {problem_with(code)}"


def test_the_old_hangzhou_demo_agency_code_is_caught_by_the_check() -> None:
    # The code the demo used to ship: the check this file relies on does catch it.
    assert problem_with("11330106002494917W") is not None


def test_demo_agency_and_enterprises_are_in_guangdong() -> None:
    assert DEMO_AGENCY_NAME.startswith(GUANGDONG)
    assert DEMO_AGENCY_CODE[2:4] == "44"  # Guangdong's region codes start 44
    for row in demo_rows(10):
        assert row["issuingAuthority"] == DEMO_AGENCY_NAME
        assert row["registeredAddress"].startswith("广东省")
        assert row["unifiedSocialCreditCode"][2:4] == "44"
    for row in food_rows(demo_rows(3)):
        assert row["businessPremises"].startswith("广东省")


def test_no_demo_or_doc_names_hangzhou() -> None:
    for path in [
        REPO / "verifier" / "demo.py",
        REPO / "verifier" / "service" / "demo.py",
        *DOCUMENTS,
    ]:
        text = path.read_text("utf-8")
        assert "杭州" not in text and "浙江" not in text, path
