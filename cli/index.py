"""`elicence index ...`: the verify service's registry index, exported and imported.

A new replica starts from another's index snapshot instead of reading the registry's
events from block 0 (ledger.snapshot); it then syncs only the blocks after the
snapshot's height.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from cli.support import (
    EXIT_UNREACHABLE,
    EXIT_UNUSABLE,
    ChainOption,
    HomeOption,
    RegistryOption,
    console,
    fail,
    home_of,
)

if TYPE_CHECKING:
    from ledger.registry import Registry

index_app = typer.Typer(
    help="The verify service's registry index: snapshots for new replicas.",
    no_args_is_help=True,
)


def _trusted_registry(home: Path, chain: str | None, registry: str | None) -> Registry:
    """The registry the service of `home` trusts, on a chain of the trusted chain id (as
    `elicence serve` connects)."""
    from ledger.chain import connect
    from ledger.config import HomeConfig
    from ledger.registry import Registry

    config = HomeConfig.read(home, chain, registry)
    connected = connect(config.chain_url, expected_chain_id=config.chain_id)
    return Registry.at(connected, config.require_registry())


def _index_paths(home: Path, workers: int) -> list[Path]:
    from verifier.service.app import index_file

    return [home / index_file(worker) for worker in range(workers)]


@contextmanager
def _reported() -> Iterator[None]:
    """The ledger's errors as one line: 3 when the chain cannot be reached, else 2 (a
    snapshot refused, a configuration or index that does not fit)."""
    from ledger.errors import ChainUnreachable, LedgerError

    try:
        yield
    except ChainUnreachable as exc:
        fail(f"cannot reach the chain: {exc}", EXIT_UNREACHABLE)
    except LedgerError as exc:
        fail(str(exc), EXIT_UNUSABLE)


@index_app.command("export")
def export_command(
    file: Annotated[Path, typer.Argument(help="The snapshot file to write.", dir_okay=False)],
    *,
    home: HomeOption = None,
    chain: ChainOption = None,
    registry: RegistryOption = None,
    sync: Annotated[
        bool,
        typer.Option(
            "--sync/--no-sync",
            help="Catch the index up with the chain first (--no-sync: export it as it is, "
            "without the chain).",
        ),
    ] = True,
) -> None:
    """Write a snapshot of the home's index (HOME/index.sqlite) at its synced height.

    Safe while `elicence serve` runs on the same home. Prints the height, the block
    hash and the file's SHA-256 (give it to whoever imports the file).

    Example: elicence index export index-snapshot.elidx --home /srv/elicence
    """
    from ledger.index import RegistryIndex
    from ledger.snapshot import export_snapshot

    home_dir = home_of(home)
    path = _index_paths(home_dir, 1)[0]
    if sync and not path.is_file():
        fail(f"there is no index at {path}: `elicence serve` makes one", EXIT_UNUSABLE)
    with _reported():
        if sync:
            index = RegistryIndex(path, _trusted_registry(home_dir, chain, registry))
            try:
                index.catch_up()
            finally:
                index.close()
        header = export_snapshot(path, file)
    console.print(
        f"exported the index at block {header.height} ({header.block_hash}) to {file}\n"
        f"sha256 {header.sha256}",
        highlight=False,
    )


@index_app.command("import")
def import_command(
    file: Annotated[Path, typer.Argument(help="The snapshot file to read.", dir_okay=False)],
    *,
    home: HomeOption = None,
    chain: ChainOption = None,
    registry: RegistryOption = None,
    sha256: Annotated[
        str | None,
        typer.Option(help="Refuse the file unless its SHA-256 is this (from the export)."),
    ] = None,
    workers: Annotated[
        int,
        typer.Option(
            help="Install it for this many worker processes (as `elicence serve --workers`).",
            min=1,
            max=64,
            envvar="ELICENCE_WORKERS",
        ),
    ] = 1,
    replace: Annotated[
        bool, typer.Option("--replace", help="Replace the home's existing index files.")
    ] = False,
    sync: Annotated[
        bool,
        typer.Option("--sync/--no-sync", help="Catch the imported index up with the chain."),
    ] = True,
) -> None:
    """Install an index snapshot as the home's index; the service then syncs only the
    blocks after it.

    Refused (exit 2), with nothing written, when the file is damaged or truncated, is of
    another registry or chain id, or names a block hash the trusted chain does not have
    at its height. Stop `elicence serve` on this home before --replace.

    Example: elicence index import index-snapshot.elidx --home /srv/elicence --sha256 HEX
    """
    import shutil

    from ledger.index import RegistryIndex
    from ledger.snapshot import import_snapshot

    home_dir = home_of(home)
    paths = _index_paths(home_dir, workers)
    existing = [p for p in paths if p.exists()]
    if existing and not replace:
        fail(
            f"an index exists at {existing[0]}: stop the service and pass --replace", EXIT_UNUSABLE
        )
    with _reported():
        trusted = _trusted_registry(home_dir, chain, registry)
        header = import_snapshot(file, paths[0], trusted, replace=True, expected_sha256=sha256)
        for other in paths[1:]:
            for suffix in ("-wal", "-shm"):
                Path(f"{other}{suffix}").unlink(missing_ok=True)
            shutil.copyfile(paths[0], other)
        height = header.height
        if sync:
            for path in paths:
                index = RegistryIndex(path, trusted)
                try:
                    height = index.catch_up()
                finally:
                    index.close()
    console.print(
        f"imported the index at block {header.height} ({header.block_hash}) into "
        f"{', '.join(str(p) for p in paths)}; synced to block {height}",
        highlight=False,
    )
