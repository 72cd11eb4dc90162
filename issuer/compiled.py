"""The compiled part of issuing (issuer/_wrap.c), imported only by what issues.

Verifying never needs it, so a source tree where it was never built still verifies;
issuing without it says how to build it. Callers import issuer._wrap after
`ensure_compiled()`, so that its functions keep their types (issuer/_wrap.pyi).
"""

from __future__ import annotations

from issuer.errors import IssuingError


def ensure_compiled() -> None:
    """IssuingError, saying how to build it, when issuer._wrap cannot be imported."""
    try:
        from issuer import _wrap  # noqa: F401
    except ImportError as exc:
        raise IssuingError(
            f"issuer/_wrap.c, the C part of issuing, is not compiled ({exc}): install "
            "elicence with `pip install -e .` (./scripts/run and ./scripts/test do) to issue"
        ) from None
