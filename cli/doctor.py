"""`elicence doctor`: checks a home and the deployment it points at, and says what to fix.

Each check prints OK, WARN or FAIL with what it found and, when not OK, what to do. The
exit code is the worst result: 0 all OK, 1 a warning (the home works, but something
wants attention: a stale index, no API key yet, little disk), 2 a failure (something
that stops issuing or verifying: the chain down, no registry code, private files
readable by others, a full disk). Nothing is changed: files are opened read-only, so a
loose permission is reported, not silently tightened (every other command would tighten
the files it opens, ledger/private.py).
"""

from __future__ import annotations

import contextlib
import enum
import os
import shutil
import sqlite3
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import typer

from cli.support import console, home_of
from ledger.errors import LedgerError
from verifier.service.errors import StoreError

INDEX_LAG_WARN_BLOCKS = 1_000
DISK_FAIL_BYTES = 512 * 1024**2
DISK_WARN_BYTES = 5 * 1024**3
_OTHERS = 0o077
_SHOWN = 5


class Level(enum.IntEnum):
    """A check's outcome, ordered so that the worst is the largest (and the exit code)."""

    OK = 0
    WARN = 1
    FAIL = 2


@dataclass(frozen=True)
class Check:
    """One line of the report."""

    name: str
    level: Level
    found: str
    fix: str = ""


@dataclass
class _Chain:
    head: int | None = None
    chain_id: int | None = None


def check_permissions(home: Path) -> Check:
    """Every file 0600 and every folder 0700 under the home (ledger/private.py's rule)."""
    loose: list[str] = []
    for folder, folders, files in os.walk(home):
        for name in [folder, *(os.path.join(folder, f) for f in files)]:
            try:
                info = os.lstat(name)
            except FileNotFoundError:
                continue  # a file the running service just removed
            if stat.S_ISLNK(info.st_mode):
                continue
            if stat.S_IMODE(info.st_mode) & _OTHERS:
                loose.append(f"{name} ({stat.S_IMODE(info.st_mode):o})")
        folders.sort()
    if not loose:
        return Check("file permissions", Level.OK, "every file 0600, every folder 0700")
    shown = ", ".join(loose[:_SHOWN]) + (
        f" and {len(loose) - _SHOWN} more" if len(loose) > _SHOWN else ""
    )
    return Check(
        "file permissions",
        Level.FAIL,
        f"{len(loose)} readable by others: {shown}",
        f"chmod -R go-rwx {home}  (keys, licences, audit and index are private)",
    )


def check_chain(home: Path, found: _Chain) -> Check:
    """The chain answers at the configured URL, with the configured chain id."""
    from ledger.chain import connect
    from ledger.config import HomeConfig
    from ledger.errors import LedgerError

    try:
        config = HomeConfig.read(home)
    except (LedgerError, ValueError) as exc:
        return Check("chain", Level.FAIL, f"the home's configuration: {exc}", "fix config.json")
    try:
        chain = connect(config.chain_url, expected_chain_id=config.chain_id, timeout=5)
        found.head, found.chain_id = chain.block_number(), chain.chain_id
    except LedgerError as exc:
        return Check(
            "chain",
            Level.FAIL,
            str(exc),
            f"start the node (elicence ledger serve --home {home}) or set the chain URL "
            "(ELICENCE_CHAIN, config.json chainUrl)",
        )
    return Check(
        "chain",
        Level.OK,
        f"{config.chain_url}: chain id {found.chain_id}, head block {found.head}",
    )


def check_registry(home: Path, found: _Chain) -> Check:
    """Registry code at the configured address."""
    from ledger.chain import connect
    from ledger.config import HomeConfig
    from ledger.errors import LedgerError
    from ledger.registry import Registry

    try:
        config = HomeConfig.read(home)
    except (LedgerError, ValueError) as exc:
        return Check("registry", Level.FAIL, str(exc), "fix config.json")
    if config.registry is None:
        return Check(
            "registry",
            Level.WARN,
            "no registry configured",
            "elicence registry deploy (governor), or set ELICENCE_REGISTRY / --registry",
        )
    if found.head is None:
        return Check("registry", Level.FAIL, f"{config.registry}: not checked, no chain", "")
    try:
        Registry.at(connect(config.chain_url, timeout=5), config.registry)
    except LedgerError as exc:
        return Check(
            "registry",
            Level.FAIL,
            str(exc),
            "check the registry address against the governor's, and that this is its chain",
        )
    return Check("registry", Level.OK, f"contract code at {config.registry}")


def check_index(home: Path, found: _Chain) -> Check:
    """How far the service's index is behind the chain's head."""
    paths = sorted(home.glob("index*.sqlite"))
    if not paths:
        return Check(
            "index",
            Level.WARN,
            "no index yet",
            "elicence serve builds it at start (or import a snapshot for a large registry)",
        )
    heights = []
    for path in paths:
        try:
            with _read_only(path) as db:
                row = db.execute("SELECT value FROM meta WHERE key = 'synced_block'").fetchone()
        except sqlite3.Error as exc:
            return Check(
                "index", Level.FAIL, f"{path.name}: {exc}", f"remove {path}; it is rebuilt"
            )
        heights.append(int(row[0]) if row else -1)
    synced = min(heights)
    if found.head is None:
        return Check("index", Level.WARN, f"synced to block {synced}; chain head unknown", "")
    lag = max(0, found.head - synced)
    text = f"{len(paths)} index file(s), synced to block {synced}, {lag} blocks behind the head"
    if lag > INDEX_LAG_WARN_BLOCKS:
        return Check(
            "index",
            Level.WARN,
            text,
            "the service catches up on its next request; start it, or import a snapshot",
        )
    return Check("index", Level.OK, text)


def check_keys(home: Path) -> Check:
    """API keys (active, operator, revoked) and agency keystores."""
    keystores = sorted(p.name for p in (home / "keys").glob("*") if p.is_file())
    try:
        counted = _count_keys(home)
    except (sqlite3.Error, StoreError, LedgerError) as exc:
        return Check("keys", Level.FAIL, f"API keys: {exc}", "restore it from a backup")
    active, operators, revoked = counted
    text = (
        f"{active} API key(s) active, {operators} operator key(s), {revoked} revoked; "
        f"{len(keystores)} keystore(s) in keys/"
        + (f" ({', '.join(keystores[:_SHOWN])})" if keystores else "")
    )
    if active == 0:
        return Check(
            "keys",
            Level.WARN,
            text,
            "approval systems call anonymously at the low rate until given a key: "
            "elicence apikey create --name NAME",
        )
    return Check("keys", Level.OK, text)


def _count_keys(home: Path) -> tuple[int, int, int]:
    """Active, operator and revoked keys, in the store the service would use."""
    from verifier.service.apikeys import OPERATOR_SCOPE
    from verifier.service.settings import Settings
    from verifier.service.stores import open_key_store

    kinds: list[tuple[frozenset[str] | None, bool]] = []
    if Settings(home=home).database_url() is not None:  # PostgreSQL: shared by replicas
        store = open_key_store(Settings(home=home))
        try:
            kinds = [(key.types, key.active) for key in store.list()]
        finally:
            store.close()
    elif (path := home / "service" / "apikeys.sqlite").exists():
        with _read_only(path) as db:  # read-only: the doctor changes nothing
            kinds = [
                (None if types is None else frozenset(str(types).split(",")), gone is None)
                for types, gone in db.execute("SELECT types, revoked FROM api_keys")
            ]
    operator = frozenset({OPERATOR_SCOPE})
    revoked = sum(1 for _, active in kinds if not active)
    operators = sum(1 for types, active in kinds if active and types == operator)
    return len(kinds) - revoked - operators, operators, revoked


def check_disk(home: Path) -> Check:
    """Free space where the home lives (audit log, index, issued licences grow there)."""
    usage = shutil.disk_usage(home)
    text = f"{usage.free / 1024**3:.1f} GiB free of {usage.total / 1024**3:.1f} GiB"
    if usage.free < DISK_FAIL_BYTES:
        return Check(
            "disk", Level.FAIL, text, "free space: the audit log refuses answers when full"
        )
    if usage.free < DISK_WARN_BYTES or usage.free < usage.total / 10:
        return Check("disk", Level.WARN, text, "plan more space (docs/deployment.md, capacity)")
    return Check("disk", Level.OK, text)


def _read_only(path: Path) -> contextlib.closing[sqlite3.Connection]:
    return contextlib.closing(sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True))


def run_checks(home: Path) -> list[Check]:
    """Every check, in the order a fix is best made."""
    if not home.is_dir():
        return [
            Check("home", Level.FAIL, f"{home} is not a folder", "pass --home or set ELICENCE_HOME")
        ]
    found = _Chain()
    return [
        check_permissions(home),
        check_chain(home, found),
        check_registry(home, found),
        check_index(home, found),
        check_keys(home),
        check_disk(home),
    ]


_STYLE = {Level.OK: "green", Level.WARN: "yellow", Level.FAIL: "bold red"}


def doctor(
    home: Annotated[
        Path | None,
        typer.Option(help="Home folder (default ELICENCE_HOME or ~/.elicence).", file_okay=False),
    ] = None,
) -> None:
    """Check a home and its deployment: chain, registry, index, permissions, keys, disk.

    Prints OK, WARN or FAIL for each, with what to fix. Exit code 0 when all are OK, 1
    when the worst is a warning, 2 when something failed.

    Example: [bold]elicence doctor --home /srv/elicence[/]
    """
    checks = run_checks(home_of(home))
    for check in checks:
        console.print(
            f"[{_STYLE[check.level]}]{check.level.name:<4}[/] {check.name}: {check.found}",
            highlight=False,
            soft_wrap=True,
        )
        if check.fix:
            console.print(f"     fix: {check.fix}", highlight=False, soft_wrap=True)
    raise typer.Exit(max(c.level for c in checks))
