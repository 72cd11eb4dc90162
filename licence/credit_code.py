"""The unified social credit code (统一社会信用代码) of GB 32100-2015.

A code has 18 characters from a 31-character alphabet (digits and capital letters
without I, O, S, V and Z, which are easily misread). The 18th character is a check
character: with each character's value being its index in the alphabet, and weights
W_i = 3^(i-1) mod 31 for positions i = 1..17, the check value is
31 - (sum of value_i * W_i mod 31), where 31 is written as 0.
"""

from __future__ import annotations

ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_VALUE = {char: index for index, char in enumerate(ALPHABET)}
_WEIGHTS = tuple(pow(3, i, 31) for i in range(17))
LENGTH = 18


def check_character(first17: str) -> str:
    """The check character for the first 17 characters of a code."""
    if len(first17) != LENGTH - 1 or any(c not in _VALUE for c in first17):
        raise ValueError("need 17 characters from the GB 32100 alphabet")
    total = sum(_VALUE[c] * w for c, w in zip(first17, _WEIGHTS, strict=True))
    return ALPHABET[(31 - total % 31) % 31]


def problem_with(code: str) -> str | None:
    """Why `code` is not a valid unified social credit code, or None when it is."""
    if len(code) != LENGTH:
        return f"must have {LENGTH} characters, has {len(code)}"
    bad = sorted({c for c in code if c not in _VALUE})
    if bad:
        return (
            f"character(s) {''.join(bad)!r} not allowed "
            "(digits and capital letters except I, O, S, V, Z)"
        )
    expected = check_character(code[:17])
    if code[17] != expected:
        return f"check character is {code[17]!r} but the first 17 characters give {expected!r}"
    return None
