"""A test-only hook that kills the process at a named point, to test crash safety.

Crash tests run the real `elicence issue` with ELICENCE_FAULT=<point> and check that a
second run completes. The hook sends SIGKILL to its own process, like a power cut or
`kill -9`: no finally blocks, no atexit, no buffered writes flushed. Unset (always in
production), it costs one dictionary look-up per point.
"""

from __future__ import annotations

import os
import signal

FAULT_VARIABLE = "ELICENCE_FAULT"
POINTS = frozenset({"after-plan", "after-send", "mid-write", "before-manifest", "mid-rekey"})


def fault_point(name: str) -> None:
    """Kill this process with SIGKILL if ELICENCE_FAULT names this point."""
    if os.environ.get(FAULT_VARIABLE) == name:
        os.kill(os.getpid(), signal.SIGKILL)
