"""A process that asked to end with its parent ends when the parent is killed with -9."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

# The middle process starts a child that asks to end with it, prints the child's pid,
# and waits to be killed.
_MIDDLE = r"""
import subprocess, sys
child = subprocess.Popen([sys.executable, "-c", '''
import os, signal, sys, time
from ledger.lifetime import end_with_parent
ok = end_with_parent(int(sys.argv[1]), signal.SIGKILL)
print("asked" if ok else "orphan", flush=True)
time.sleep(120)
''', str(__import__("os").getpid())], stdout=subprocess.PIPE, text=True)
print(child.pid, child.stdout.readline().strip(), flush=True)
__import__("time").sleep(120)
"""


def _gone(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(") ")[1].startswith("Z")
    except FileNotFoundError:
        return True


def test_a_child_that_asked_ends_when_its_parent_is_killed():
    middle = subprocess.Popen([sys.executable, "-c", _MIDDLE], stdout=subprocess.PIPE, text=True)
    assert middle.stdout is not None
    pid_text, state = middle.stdout.readline().split()
    child = int(pid_text)
    try:
        assert state == "asked"
        assert not _gone(child)
        middle.send_signal(signal.SIGKILL)
        middle.wait()
        for _ in range(200):  # the kernel signals at once; allow a slow machine
            if _gone(child):
                break
            time.sleep(0.05)
        assert _gone(child), "the child outlived its parent"
    finally:
        if not _gone(child):
            os.kill(child, signal.SIGKILL)


def test_a_parent_already_gone_is_reported():
    ran = subprocess.run(
        [
            sys.executable,
            "-c",
            "import signal; from ledger.lifetime import end_with_parent; "
            "print(end_with_parent(1, signal.SIGTERM) if __import__('os').getppid() != 1 "
            "else 'skip')",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert ran.stdout.strip() == "False"
