"""`elicence ledger ...`: the embedded chain node, over ledger.server."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from cli.support import EXIT_UNUSABLE, fail, home_of

ledger_app = typer.Typer(help="The embedded chain node.", no_args_is_help=True)


@ledger_app.command("serve")
def serve(
    *,
    home: Annotated[
        Path | None,
        typer.Option(help="Home folder; the chain is kept in HOME/chain (default ~/.elicence)."),
    ] = None,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.", min=1, max=65535)] = 8545,
    dev: Annotated[
        bool | None,
        typer.Option(
            "--dev/--no-dev",
            help="Dev mode: evm_mine, gas for any sender and deployment by anyone "
            "(default: ELICENCE_NODE_DEV, else config.json's node.dev, else off).",
            show_default=False,
        ),
    ] = None,
    deployer: Annotated[
        list[str] | None,
        typer.Option(
            help="An address allowed to create contracts (and given gas); repeatable. "
            "The home's governor key is always allowed.",
        ),
    ] = None,
    rate: Annotated[
        float | None, typer.Option(help="Requests per second per client address.", min=0)
    ] = None,
    burst: Annotated[
        float | None, typer.Option(help="Requests a client may send at once.", min=1)
    ] = None,
) -> None:
    """Run the durable embedded chain node (Ethereum JSON-RPC over HTTP).

    Every transaction whose receipt a client received survives a crash. The node holds
    no keys: clients sign locally and send raw transactions. Senders short of gas are
    topped up from the node's own faucet when the operator or the registry vouches for
    them (allowed deployers, the registry's governors and agencies), or for anyone in
    dev mode. Calls are capped in gas and time; clients are rate limited.

    Example: [bold]elicence ledger serve --home ~/.elicence --port 8545 --deployer 0xGOVERNOR[/]
    """
    from ledger.config import NODE_FOLDER, NodeSettings
    from ledger.errors import LedgerError
    from ledger.server import serve as run_node

    home_dir = home_of(home)
    try:
        settings = NodeSettings.load(
            home_dir, dev=dev, deployers=tuple(deployer or ()), rate=rate, burst=burst
        )
        run_node(home_dir / NODE_FOLDER, host, port, settings)
    except LedgerError as exc:
        fail(str(exc), EXIT_UNUSABLE)
