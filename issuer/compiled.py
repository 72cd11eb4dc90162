"""Whether issuing uses its optional compiled part, issuer/_wrap.c.

Every step the extension speeds up also has a Python path built on the standard library
and well-kept libraries (hashlib, orjson, csv, os), and both give the same bytes (tests
compare them on arbitrary text). The extension is kept only for the steps where it is
measured at least 2x faster (docs/architecture.md, scripts/bench_compiled). An install
without a C compiler gets no extension and issues through the Python paths; setting
ELICENCE_PURE_PYTHON=1 chooses them even where it is built (the test suite runs once so).
Callers import issuer._wrap only after `available()` says yes, so that its functions
keep their types (issuer/_wrap.pyi).
"""

from __future__ import annotations

import os
from functools import cache

PURE_PYTHON_VARIABLE = "ELICENCE_PURE_PYTHON"


@cache
def available() -> bool:
    """True when issuer._wrap is built and ELICENCE_PURE_PYTHON does not turn it off."""
    if os.environ.get(PURE_PYTHON_VARIABLE, "").strip() not in ("", "0"):
        return False
    try:
        from issuer import _wrap  # noqa: F401
    except ImportError:
        return False
    return True
