"""`elicence snapshot export`: a trust snapshot, signed by the governor, for verifying
with no chain (`elicence verify FILE --snapshot S`); over verifier.trust_snapshot."""

from __future__ import annotations

import datetime as dt
import re
import time
from pathlib import Path
from typing import Annotated

import typer

from cli.support import (
    EXIT_UNUSABLE,
    ChainOption,
    HomeOption,
    PassphraseFdOption,
    PassphraseFileOption,
    RegistryOption,
    console,
    fail,
    home_of,
    open_key,
    open_registry,
    reported,
)
from issuer.keystore import GOVERNOR_KEYSTORE

snapshot_app = typer.Typer(
    help="Trust snapshots: the registry's state signed by its governor, for offline verification.",
    no_args_is_help=True,
)

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*$")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_age(text: str) -> dt.timedelta:
    """'7d', '36h', '90m', '3600' (seconds) as a timedelta; exits 2 on anything else."""
    match = _DURATION.match(text.lower())
    if match is None:
        fail(f"--max-age {text!r}: give a duration such as 7d, 36h or 90m", EXIT_UNUSABLE)
    return dt.timedelta(seconds=float(match[1]) * _UNITS[match[2]])


@snapshot_app.command("export")
def export(
    file: Annotated[Path, typer.Argument(help="Where to write the snapshot (gzip JSON).")],
    *,
    home: HomeOption = None,
    chain: ChainOption = None,
    registry: RegistryOption = None,
    passphrase_fd: PassphraseFdOption = None,
    passphrase_file: PassphraseFileOption = None,
) -> None:
    """Sync the home's index and write a trust snapshot of it, signed by the governor.

    The snapshot holds the chain id, the registry, the block it is as of (number, hash,
    time), every agency with its keys' validity, retirement and compromise blocks, every
    anchored root and every licence status that is not active. It is signed with the
    governor's chain key (HOME/keys/governor.json), so a copy from anywhere can be
    trusted by a verifier that pins the governor's address. Verify with it, offline:
    `elicence verify FILE --snapshot SNAPSHOT --governor 0x…`.

    Example: [bold]elicence snapshot export trust-2026-12-02.snapshot[/]
    """
    from ledger.index import RegistryIndex
    from verifier.service.app import index_file
    from verifier.trust_snapshot import SnapshotRefused, export_snapshot

    folder = home_of(home)
    governor = open_key(folder, GOVERNOR_KEYSTORE, "governor")
    index_path = folder / index_file(0)
    started = time.perf_counter()
    with reported():
        bound = open_registry(folder, chain, registry)
        index = RegistryIndex(index_path, bound)
        try:
            index.sync()
        finally:
            index.close()
        try:
            snapshot = export_snapshot(index_path, bound, governor, file)
        except SnapshotRefused as exc:
            fail(str(exc), EXIT_UNUSABLE)
    counts = snapshot.counts()
    console.print(
        f"trust snapshot as of block {snapshot.block_number()} "
        f"({snapshot.block_time.isoformat(timespec='seconds')}): {counts['agencies']} "
        f"agencies, {counts['anchors']} roots, {counts['statuses']} changed statuses; "
        f"{file.stat().st_size:,} bytes in {time.perf_counter() - started:.1f} s; "
        f"signed by {snapshot.governor}; sha256 of its content {snapshot.sha256}",
        highlight=False,
    )
