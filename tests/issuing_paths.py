"""Running a test on each of issuing's paths: the compiled one and the Python one.

Every step issuer/_wrap.c does has a Python path with the same output
(issuer/compiled.py); tests of those steps run on both. In the suite's second pass
(ELICENCE_PURE_PYTHON=1, see scripts/test) or where the extension is not built, the
compiled case is skipped and the Python one still runs.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from issuer import compiled

PATHS = [
    pytest.param(
        "compiled",
        marks=pytest.mark.skipif(
            not compiled.available(), reason="issuer/_wrap.c is not built or is turned off"
        ),
    ),
    "python",
]


@contextmanager
def issuing_path(path: str) -> Iterator[None]:
    """Inside: issuing takes `path` ("compiled" or "python")."""
    saved = os.environ.get(compiled.PURE_PYTHON_VARIABLE)
    os.environ[compiled.PURE_PYTHON_VARIABLE] = "1" if path == "python" else "0"
    compiled.available.cache_clear()
    try:
        yield
    finally:
        if saved is None:
            del os.environ[compiled.PURE_PYTHON_VARIABLE]
        else:
            os.environ[compiled.PURE_PYTHON_VARIABLE] = saved
        compiled.available.cache_clear()
