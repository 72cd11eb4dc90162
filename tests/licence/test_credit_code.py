"""The unified social credit code's check character (GB 32100-2015)."""

from __future__ import annotations

import pytest

from licence.credit_code import check_character, problem_with
from tests.samples import REAL_CREDIT_CODES


@pytest.mark.parametrize("code", REAL_CREDIT_CODES)
def test_published_codes_have_the_check_character_we_compute(code):
    assert check_character(code[:17]) == code[17]
    assert problem_with(code) is None


@pytest.mark.parametrize("code", REAL_CREDIT_CODES)
def test_any_other_check_character_is_refused(code):
    wrong = "0" if code[17] != "0" else "1"
    reason = problem_with(code[:17] + wrong)
    assert reason is not None and "check character" in reason


@pytest.mark.parametrize(
    ("code", "words"),
    [
        ("91110108551385082", "18 characters"),
        ("91110108551385082QQ", "18 characters"),
        ("9111010855138508IQ", "'I'"),  # I is not in the alphabet
        ("91110108551385O82Q", "'O'"),
        ("91110108551385082q", "'q'"),
    ],
)
def test_malformed_codes_say_why(code, words):
    reason = problem_with(code)
    assert reason is not None and words in reason


def test_check_value_31_is_written_as_zero():
    # Find a 17-character stem whose weighted sum is 0 mod 31: its check must be "0".
    stem = "0" * 17
    assert check_character(stem) == "0"
