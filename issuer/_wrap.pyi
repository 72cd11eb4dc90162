# Types of the C module issuer/_wrap.c (built by setup.py).
from collections.abc import Mapping, Sequence

_FieldPlan = tuple[str, bytes, bytes, bytes, bytes]

def encode(
    rows: Sequence[Mapping[str, str]],
    secrets: bytes,
    plan: tuple[tuple[_FieldPlan, ...], tuple[int, ...], bytes],
    /,
) -> tuple[list[bytes], list[bytes]]: ...
