"""`elicence ledger ...`: the embedded chain node."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ledger.config import default_home

ledger_app = typer.Typer(help="The embedded chain node.", no_args_is_help=True)


@ledger_app.command("serve")
def serve(
    home: Annotated[
        Path | None,
        typer.Option(help="Home folder; the chain is kept in HOME/chain (default ~/.elicence)."),
    ] = None,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.", min=1, max=65535)] = 8545,
) -> None:
    """Run the durable embedded chain node (Ethereum JSON-RPC over HTTP).

    Every transaction whose receipt a client received survives a crash. The node holds
    no keys: clients sign locally and send raw transactions; senders short of gas are
    topped up from the node's own faucet.

    Example: [bold]elicence ledger serve --home ~/.elicence --port 8545[/]
    """
    from ledger.errors import LedgerError
    from ledger.server import serve as run_node

    chain_home = (home or default_home()) / "chain"
    try:
        run_node(chain_home, host, port)
    except LedgerError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc


def register(app: typer.Typer) -> None:
    """Add `elicence ledger ...` to the root app."""
    app.add_typer(ledger_app, name="ledger")
