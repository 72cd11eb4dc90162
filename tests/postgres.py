"""A real PostgreSQL server for the tests, started by the tests themselves.

Debian's `postgresql` package (scripts/_setup.sh installs it) gives the server binaries;
`initdb` makes a throw-away cluster in a temporary folder, trusted only on loopback, and
`pg_ctl` starts it on a random free port of 127.0.0.1 (and on a Unix socket in the same
folder, so no other server's socket is touched). The server refuses to run as root: as
root, the folder is handed to the `postgres` user and the binaries run as that user
through runuser. The server is stopped at the end of the session, also when tests fail;
each test gets a database of its own.
"""

from __future__ import annotations

import itertools
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

SUPERUSER = "elicence"
_counter = itertools.count()


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now (tests.conftest has the
    same; not imported from there, which imports this module)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def server_binaries() -> Path | None:
    """The folder of initdb and pg_ctl: Debian's newest /usr/lib/postgresql/N/bin, else
    wherever PATH finds them."""
    debian = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"),
        key=lambda p: int(p.parent.parent.name) if p.parent.parent.name.isdigit() else 0,
    )
    if debian:
        return debian[-1].parent
    found = shutil.which("pg_ctl")
    return Path(found).parent if found else None


@dataclass
class PostgresServer:
    """A running throw-away server."""

    folder: Path
    port: int
    binaries: Path
    as_user: list[str]

    def url(self, database: str = "postgres") -> str:
        """A libpq URL for `database` as the superuser (trusted, no password)."""
        return f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/{database}"

    def create_database(self) -> str:
        """A new, empty database; its URL."""
        import psycopg

        name = f"test_{os.getpid()}_{next(_counter)}"
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def _ctl(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*self.as_user, str(self.binaries / "pg_ctl"), "-D", str(self.folder / "data"), *args],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    def start(self) -> None:
        options = f"-k {self.folder} -h 127.0.0.1 -p {self.port} -c fsync=off"
        done = self._ctl("-o", options, "-l", str(self.folder / "log"), "-w", "start")
        if done.returncode != 0:
            log_file = self.folder / "log"
            log = log_file.read_text(errors="replace") if log_file.exists() else ""
            raise RuntimeError(f"PostgreSQL did not start: {done.stdout}{done.stderr}{log}")

    def stop(self) -> None:
        self._ctl("-m", "immediate", "stop")


def start_server(base: Path) -> PostgresServer:
    """initdb and start a server under `base` (a new folder)."""
    binaries = server_binaries()
    if binaries is None:
        # Not a skip: a clean machine gets the package from scripts/_setup.sh, so a
        # missing server is a broken set-up, which must show.
        raise RuntimeError("PostgreSQL's server is not installed: apt-get install postgresql")
    as_user: list[str] = []
    if os.geteuid() == 0:
        # The server refuses to run as root.
        shutil.chown(base, "postgres")
        base.chmod(0o700)
        as_user = ["runuser", "-u", "postgres", "--"]
    done = subprocess.run(
        [
            *as_user,
            str(binaries / "initdb"),
            "-D",
            str(base / "data"),
            "-A",
            "trust",
            "-U",
            SUPERUSER,
            "--no-sync",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"initdb failed: {done.stdout}{done.stderr}")
    server = PostgresServer(base, free_port(), binaries, as_user)
    server.start()
    return server


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """One real PostgreSQL server for the session, on loopback."""
    base = Path(tempfile.mkdtemp(prefix="elicence-pg-"))
    try:
        server = start_server(base)
        try:
            yield server
        finally:
            server.stop()
    finally:
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def postgres_url(postgres_server: PostgresServer) -> str:
    """The URL of a fresh, empty database on the session's server."""
    return postgres_server.create_database()
