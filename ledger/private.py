"""Private files and folders: what elicence writes is readable by its own account only.

Issued documents and QR images hold licence secrets and personal fields; keystores hold
keys; the service's audit, API keys and index say who verified what. So every file
elicence writes is mode 0600, in folders of mode 0700. Two layers hold this, because
either alone leaves gaps:

- every process entry (the `elicence` command, and the processes it starts) sets the
  umask to 0o077, so whatever is created later, by elicence or by a library it calls
  (SQLite's -wal and -shm files, uvicorn, prometheus' multiprocess files), is private;
- each place that creates a file or folder asks for it to be private here, so library
  use in a process with an open umask, and files an older version left open, are
  private too.

Folders are made private only where elicence creates them or owns them (a home, its
subfolders); a folder the user already had elsewhere (an `--out` folder, /tmp) keeps
its mode, since the files elicence puts in it are private anyway.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

PRIVATE_FILE = 0o600
PRIVATE_FOLDER = 0o700
PRIVATE_UMASK = 0o077
_OTHERS = 0o077  # the group's and everyone else's permission bits
# SQLite's side files hold recent pages of the database; SQLite gives new ones the
# database file's mode, but one left by an older version keeps its own.
_SQLITE_SIDE_FILES = ("-wal", "-shm", "-journal")


def restrict_umask() -> None:
    """Make everything this process (and its children) creates private by default."""
    os.umask(PRIVATE_UMASK)


def private_folder(path: Path, *, tighten: bool = True) -> Path:
    """`path` as a folder of mode 0700, created with any missing parents (each 0700).

    With `tighten`, an existing folder loses its group and other permissions too,
    unless it is not this account's or is a shared sticky folder such as /tmp.
    """
    missing = []
    probe = path
    while not probe.exists() and probe != probe.parent:
        missing.append(probe)
        probe = probe.parent
    path.mkdir(mode=PRIVATE_FOLDER, parents=True, exist_ok=True)
    # mkdir's mode passes through the umask, and parents get the default mode.
    for folder in missing:
        os.chmod(folder, PRIVATE_FOLDER)
    if tighten and not missing:
        _tighten(path, folders=True)
    return path


def private_file(path: Path) -> Path:
    """`path` as a file of mode 0600: created empty when missing (in a private folder when
    the folder is missing too), its group and other permissions removed when present."""
    private_folder(path.parent, tighten=False)
    fd = os.open(path, os.O_RDONLY | os.O_CREAT | os.O_CLOEXEC, PRIVATE_FILE)
    try:
        info = os.fstat(fd)
        mode = stat.S_IMODE(info.st_mode)
        if mode & _OTHERS and info.st_uid == os.geteuid():
            os.fchmod(fd, mode & ~_OTHERS)
    finally:
        os.close(fd)
    return path


def private_database(path: Path) -> Path:
    """`path` made ready for sqlite3.connect as a private file, its side files private too."""
    private_file(path)
    for suffix in _SQLITE_SIDE_FILES:
        side = path.with_name(path.name + suffix)
        if side.exists():
            _tighten(side, folders=False)
    return path


def _tighten(path: Path, *, folders: bool) -> None:
    info = path.stat()
    mode = stat.S_IMODE(info.st_mode)
    if not mode & _OTHERS or info.st_uid != os.geteuid():
        return
    if folders and mode & stat.S_ISVTX:
        return  # a shared folder such as /tmp: never elicence's to close
    os.chmod(path, mode & ~_OTHERS)
