"""Showing a verdict in a terminal (rich), for the CLI and the demo."""

from __future__ import annotations

import datetime as dt

from rich.console import Console, Group
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from issuer.catalogue import catalogue
from verifier.checks import CHINA
from verifier.verdict import Outcome, Status, Verdict

_COLOUR = {
    Status.VALID: "green",
    Status.TAMPERED: "red",
    Status.NOT_ANCHORED: "red",
    Status.ISSUER_NOT_AUTHORISED: "red",
    Status.REVOKED: "red",
    Status.CANCELLED: "red",
    Status.SUPERSEDED: "yellow",
    Status.SUSPENDED: "yellow",
    Status.EXPIRED: "yellow",
    Status.NOT_YET_VALID: "yellow",
}
_MARK = {Outcome.PASSED: "[green]✓[/]", Outcome.FAILED: "[red]✗[/]", Outcome.SKIPPED: "[dim]–[/]"}


def verdict_panel(verdict: Verdict, title: str | None = None) -> Panel:
    """A panel with the status, each check and the disclosed fields."""
    checks = Table.grid(padding=(0, 1))
    for check in verdict.checks:
        checks.add_row(_MARK[check.outcome], f"[bold]{check.name.value}[/]", check.reason)
    fields = Table.grid(padding=(0, 2))
    licence_type = catalogue().get(verdict.licence_type)
    if verdict.status is Status.TAMPERED:
        # An altered document's fields are exactly what must not be shown as the licence.
        fields.add_row("[dim]fields[/]", "[red]not shown: the document was altered[/]")
    else:
        for name, value in verdict.fields.items():
            spec = licence_type.field(name)
            fields.add_row(f"[dim]{spec.label.zh if spec else name}[/]", value)
    for name in verdict.hidden:
        spec = licence_type.field(name)
        fields.add_row(
            f"[dim]{spec.label.zh if spec else name}[/]", "[dim](hidden by the holder)[/]"
        )
    parts: list[Table | Text] = [
        Text.from_markup(
            f"[bold {_COLOUR[verdict.status]}]{verdict.status.value}[/]  "
            f"{verdict.licence_type_name}  [dim]{verdict.licence_id}[/]"
        ),
        checks,
        fields,
    ]
    if verdict.anchor is not None:
        when = dt.datetime.fromtimestamp(verdict.anchor.timestamp, CHINA).isoformat()
        parts.append(
            Text(
                f"anchored in block {verdict.anchor.block_number} ({when}) of chain "
                f"{verdict.anchor.chain_id}, registry {verdict.anchor.registry}; "
                f"answer reflects block {verdict.block_height}",
                style="dim",
            )
        )
    return Panel(Group(*parts), title=title, border_style=_COLOUR[verdict.status])


def print_verdict(console: Console, verdict: Verdict, title: str | None = None) -> None:
    """Print one verdict."""
    console.print(verdict_panel(verdict, title))
