"""Issuing's row check (issuer/_wrap.c) judges credit codes as licence.credit_code does."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from issuer.validation import RowsCheck
from licence.catalogue import catalogue
from licence.credit_code import ALPHABET, check_character, problem_with
from tests.samples import REAL_CREDIT_CODES, business_licence

BUSINESS_CHECK = RowsCheck(catalogue().get("business-licence"))


def compiled_check_accepts(code: str) -> bool:
    # The row check issuing runs (issuer/_wrap.c) on a licence that differs only here.
    return BUSINESS_CHECK.refused([business_licence(1, unifiedSocialCreditCode=code)]) == []


@pytest.mark.parametrize("code", REAL_CREDIT_CODES)
def test_compiled_check_accepts_published_codes_and_refuses_another_check_character(code):
    wrong = "0" if code[17] != "0" else "1"
    assert compiled_check_accepts(code)
    assert not compiled_check_accepts(code[:17] + wrong)


_stems = st.text(st.sampled_from(ALPHABET), min_size=17, max_size=17)


@given(st.one_of(_stems.map(lambda s: s + check_character(s)), _stems.map(lambda s: s + "0")))
def test_compiled_check_agrees_with_the_reasoned_one_on_well_formed_codes(code):
    assert compiled_check_accepts(code) == (problem_with(code) is None)


@given(st.text(st.sampled_from(ALPHABET + "IOSVZq0 中"), max_size=20))
def test_compiled_check_agrees_with_the_reasoned_one_on_any_text(code):
    assert compiled_check_accepts(code) == (problem_with(code) is None)
