"""Child processes end with the process that started them (Linux's parent-death signal).

elicence starts processes that must not outlive it: issuing's worker processes (after a
kill -9 of `elicence issue`, a worker left running would finish staging a batch with the
killed run's secrets, in the folder the next run stages the same batch in) and the
service's embedded node and workers (`elicence serve`). A kill -9 runs no code in the
parent, so the kernel has to do it: prctl(PR_SET_PDEATHSIG), called from the standard
library's ctypes. Elsewhere than Linux there is no such call and nothing is asked.
"""

from __future__ import annotations

import ctypes
import os
from collections.abc import Callable

_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def end_with_parent(parent: int, signum: int) -> bool:
    """Ask the kernel to send `signum` to this process when its parent ends.

    Returns False when `parent` (the pid of the process that started this one) is already
    gone, so that no signal will ever come: the caller decides what to do then.
    Raises OSError when Linux refuses the request.
    """
    prctl = _prctl()
    if prctl is not None and prctl(_PR_SET_PDEATHSIG, signum) != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, os.strerror(errno))
    # The parent may have died before the request: then this process was re-parented.
    return os.getppid() == parent


def _prctl() -> Callable[..., int] | None:
    # The process's own symbols, libc's among them (as verifier/service/memory.py finds
    # mallopt): None where there is no prctl.
    try:
        prctl: Callable[..., int] = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    return prctl
