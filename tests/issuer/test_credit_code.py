from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from issuer.catalogue import catalogue
from issuer.credit_code import ALPHABET, check_character, problem_with
from issuer.validation import RowsCheck
from tests.samples import REAL_CREDIT_CODES, business_licence

BUSINESS_CHECK = RowsCheck(catalogue().get("business-licence"))


def compiled_check_accepts(code: str) -> bool:
    # The row check issuing runs (issuer/_wrap.c) on a licence that differs only here.
    return BUSINESS_CHECK.refused([business_licence(1, unifiedSocialCreditCode=code)]) == []


@pytest.mark.parametrize("code", REAL_CREDIT_CODES)
def test_published_codes_have_the_check_character_we_compute(code):
    assert check_character(code[:17]) == code[17]
    assert problem_with(code) is None
    assert compiled_check_accepts(code)


@pytest.mark.parametrize("code", REAL_CREDIT_CODES)
def test_any_other_check_character_is_refused(code):
    wrong = "0" if code[17] != "0" else "1"
    reason = problem_with(code[:17] + wrong)
    assert reason is not None and "check character" in reason
    assert not compiled_check_accepts(code[:17] + wrong)


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


_stems = st.text(st.sampled_from(ALPHABET), min_size=17, max_size=17)


@given(st.one_of(_stems.map(lambda s: s + check_character(s)), _stems.map(lambda s: s + "0")))
def test_compiled_check_agrees_with_the_reasoned_one_on_well_formed_codes(code):
    assert compiled_check_accepts(code) == (problem_with(code) is None)


@given(st.text(st.sampled_from(ALPHABET + "IOSVZq0 中"), max_size=20))
def test_compiled_check_agrees_with_the_reasoned_one_on_any_text(code):
    assert compiled_check_accepts(code) == (problem_with(code) is None)
