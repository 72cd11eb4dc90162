"""Writing output files so that a crash never leaves a half-written one behind."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

from issuer import compiled
from ledger.private import PRIVATE_FILE, private_folder

PRIVATE = PRIVATE_FILE  # documents hold personal data: readable by the agency's account only


def write_atomically(path: Path, data: bytes, mode: int = PRIVATE) -> None:
    """Write `data` to `path` via a temporary file in the same folder and a rename."""
    private_folder(path.parent, tighten=False)
    fd, temp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temp_name, mode)
        os.replace(temp_name, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp_name)
        raise


def write_files(folder: int, names: list[str], contents: list[bytes], mode: int) -> None:
    """Create (or truncate) each named file in `folder`, a directory descriptor, and write it.

    Each file gets exactly `mode`: open's mode passes through the umask, and a file a
    killed run left behind keeps its old mode through O_TRUNC. OSError names the file.
    No fsync here: publishing syncs a whole batch at once. In C when it is built: its
    loop holds no GIL, where from Python each system call takes the GIL back and, with
    another thread running Python (the parent plans and anchors while it publishes),
    waits up to a switch interval for it (scripts/bench_compiled).
    """
    if len(names) != len(contents):
        raise ValueError("need one content per file name")
    if any("\0" in name for name in names):
        raise ValueError("a file name holds a NUL character")  # before any file is made
    if compiled.available():
        from issuer import _wrap

        _wrap.write_files(folder, names, contents, mode)
        return
    for name, content in zip(names, contents, strict=True):
        fd = os.open(
            name, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, mode, dir_fd=folder
        )
        try:
            os.fchmod(fd, mode)
            left = memoryview(content)
            while left:
                left = left[os.write(fd, left) :]
        finally:
            os.close(fd)


def rename_files(source: int, target: int, names: list[str]) -> None:
    """Move each named file from folder `source` to folder `target` (directory
    descriptors); in C when it is built, for the reason `write_files` gives."""
    if compiled.available():
        from issuer import _wrap

        _wrap.rename_files(source, target, names)
        return
    for name in names:
        os.rename(name, name, src_dir_fd=source, dst_dir_fd=target)
