"""`elicence snapshot export`: a trust snapshot, signed by the governor, for verifying
with no chain (`elicence verify FILE --snapshot S`); `elicence snapshot seal-key new`:
the governor's SM2 key that co-signs it. Over verifier.trust_snapshot."""

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
    errors,
    fail,
    home_of,
    open_key,
    open_registry,
    open_seal_key,
    passphrase,
    reported,
)
from issuer.keystore import GOVERNOR_KEYSTORE, keystore_path

# The governor's SM2 key (licence.seal), beside its chain key, encrypted as it is.
GOVERNOR_SEAL_KEYSTORE = "governor-seal.json"

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
    anchored root, every agency's SM2 seal keys and every licence status that is not
    active. It is signed with the governor's chain key (HOME/keys/governor.json) and
    co-signed with its SM2 key (HOME/keys/governor-seal.json, `elicence snapshot
    seal-key new`), so a copy from anywhere can be trusted by a verifier that pins the
    governor's address and SM2 key. Verify with it, offline: `elicence verify FILE
    --snapshot SNAPSHOT --governor 0x… --governor-seal-key <128 hex>`.

    Example: [bold]elicence snapshot export trust-2026-12-02.snapshot[/]
    """
    from ledger.index import RegistryIndex
    from verifier.service.app import index_file
    from verifier.trust_snapshot import SnapshotRefused, export_snapshot

    folder = home_of(home)
    governor = open_key(folder, GOVERNOR_KEYSTORE, "governor")
    seal_key = _governor_seal_key(folder)
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
            snapshot = export_snapshot(index_path, bound, governor, file, seal_key=seal_key)
        except SnapshotRefused as exc:
            fail(str(exc), EXIT_UNUSABLE)
    counts = snapshot.counts()
    console.print(
        f"trust snapshot as of block {snapshot.block_number()} "
        f"({snapshot.block_time.isoformat(timespec='seconds')}): {counts['agencies']} "
        f"agencies, {counts['anchors']} roots, {counts['statuses']} changed statuses, "
        f"{counts['licenceTypes']} licence type versions; "
        f"{file.stat().st_size:,} bytes in {time.perf_counter() - started:.1f} s; "
        f"signed by {snapshot.governor}"
        + ("" if seal_key is None else " and its SM2 key")
        + f"; sha256 of its content {snapshot.sha256}",
        highlight=False,
    )


def _governor_seal_key(home: Path) -> bytes | None:
    """The governor's SM2 private key, opened with the passphrase; None (and a warning)
    when the home has none: the snapshot then has no SM2 co-signature, which verifiers
    that pin the governor's SM2 key refuse."""
    path = keystore_path(home, GOVERNOR_SEAL_KEYSTORE)
    if not path.exists():
        errors.print(
            f"warning: no governor SM2 key ({path}): the snapshot is signed by the chain "
            "key only, and verifiers that pin an SM2 key will refuse it; create one with "
            "`elicence snapshot seal-key new`",
            highlight=False,
            markup=False,
        )
        return None
    return open_seal_key(path, "the governor's SM2 key")


seal_key_app = typer.Typer(
    help="The governor's SM2 key (GB/T 32918.2), which co-signs trust snapshots.",
    no_args_is_help=True,
)
snapshot_app.add_typer(seal_key_app, name="seal-key")


@seal_key_app.command("new")
def seal_key_new(
    *,
    home: HomeOption = None,
    cipher: Annotated[
        str | None,
        typer.Option(
            "--cipher",
            help="Keystore cipher: aes or sm4 (default: the home's config.json "
            '"keys": {"cipher": ...}).',
            show_default=False,
        ),
    ] = None,
    passphrase_fd: PassphraseFdOption = None,
    passphrase_file: PassphraseFileOption = None,
) -> None:
    """Create the governor's SM2 key (HOME/keys/governor-seal.json, encrypted, mode
    0600), print its public key and pin it in HOME/config.json ("governorSealKey").

    `elicence snapshot export` co-signs with it from then on. Give the printed public
    key to every verifier (--governor-seal-key, ELICENCE_GOVERNOR_SEAL_KEY or
    "governorSealKey" in its config.json), as you give them the governor's address.

    Example: [bold]elicence snapshot seal-key new[/]
    """
    from issuer.keystore import create_seal_key
    from ledger.config import CONFIG_FILE, ConfigError
    from verifier.trust_snapshot import SEAL_KEY_MEMBER

    folder = home_of(home)
    path = keystore_path(folder, GOVERNOR_SEAL_KEYSTORE)
    with reported():
        public = create_seal_key(path, passphrase(confirm=True), cipher=cipher)
    try:
        _remember(folder / CONFIG_FILE, SEAL_KEY_MEMBER, public.hex())
    except (ConfigError, OSError) as exc:
        fail(f"the key is made ({path}), but {exc}", EXIT_UNUSABLE)
    console.print(f"governor SM2 key created: {public.hex()} ({path})", highlight=False)
    console.print(
        "Verifiers pin it with --governor-seal-key (or ELICENCE_GOVERNOR_SEAL_KEY, or "
        f'"{SEAL_KEY_MEMBER}" in their config.json).',
        highlight=False,
        markup=False,
    )


def _remember(config: Path, member: str, value: str) -> None:
    """Set one member of the home's config.json, keeping the others."""
    import json
    import os

    from ledger.config import ConfigError
    from ledger.private import PRIVATE_FILE, private_folder

    private_folder(config.parent)
    try:
        saved = json.loads(config.read_text(encoding="utf-8"))
    except FileNotFoundError:
        saved = {}
    except ValueError as exc:
        raise ConfigError(f"{config} is not JSON: {exc}") from None
    if not isinstance(saved, dict):
        raise ConfigError(f"{config} is not a JSON object")
    saved[member] = value
    temp = config.parent / f".{config.name}.tmp"
    temp.write_text(json.dumps(saved, indent=2) + "\n", encoding="utf-8")
    temp.chmod(PRIVATE_FILE)
    os.replace(temp, config)
