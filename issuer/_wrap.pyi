# Types of the C module issuer/_wrap.c (built by setup.py).
from collections.abc import Callable, Mapping, Sequence

_FieldPlan = tuple[str, bytes, bytes, bytes, bytes]

def encode(
    rows: Sequence[Mapping[str, str]],
    secrets: bytes,
    plan: tuple[tuple[_FieldPlan, ...], tuple[int, ...], bytes],
    /,
) -> tuple[list[bytes], list[bytes]]: ...

_Rule = tuple[str, bool, int, int, Callable[..., object] | None]

def check(
    rows: Sequence[Mapping[str, object]],
    plan: tuple[tuple[_Rule, ...], tuple[int, int], Callable[..., bool]],
    /,
) -> list[int]: ...
def record_bounds(data: bytes, start: int, every: int, /) -> tuple[list[int], int] | None: ...
def write_files(folder: int, names: list[str], contents: list[bytes], mode: int, /) -> None: ...
def rename_files(source: int, target: int, names: list[str], /) -> None: ...
def documents(
    head: bytes,
    fields: list[bytes],
    secrets: bytes,
    anchor: bytes,
    levels: Sequence[Sequence[bytes]],
    /,
) -> list[bytes]: ...
