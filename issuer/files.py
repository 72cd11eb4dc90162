"""Writing output files so that a crash never leaves a half-written one behind."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

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
