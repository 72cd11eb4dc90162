"""Showing a verdict in a terminal (rich), for the CLI and the demo.

It works from the verdict's JSON form, so a verdict computed here and one answered by a
verifier service (`elicence verify --verifier URL`) look the same.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from rich.console import Console, Group
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from licence.catalogue import catalogue
from licence.errors import LicenceFormatError
from verifier.checks import CHINA
from verifier.verdict import Status, Verdict, word

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
_MARK = {"passed": "[green]✓[/]", "failed": "[red]✗[/]", "skipped": "[dim]–[/]"}


def _label(licence_type_id: str, name: str) -> str:
    try:
        spec = catalogue().get(licence_type_id).field(name)
    except LicenceFormatError:
        spec = None
    return spec.label.zh if spec else name


def _in_chinese(check: Mapping[str, Any]) -> Text:
    """A check's reason in Chinese words from its code, as the web page words it; the
    English `reason` for a verifier that sends no code (or one this version lacks)."""
    try:
        words = word(str(check["code"]), check.get("params") or {}, "zh")
    except (KeyError, TypeError, ValueError, LicenceFormatError):
        words = str(check["reason"])
    return Text(words)  # not markup: a reason may quote a field's text


def verdict_panel(body: Mapping[str, Any], title: str | None = None) -> Panel:
    """A panel with the status, each check and the disclosed fields of a JSON verdict."""
    status = Status(body["status"])
    licence_type = str(body.get("licenceType", ""))
    checks = Table.grid(padding=(0, 1))
    for check in body.get("checks", []):
        checks.add_row(
            _MARK.get(check["outcome"], "?"), f"[bold]{check['name']}[/]", _in_chinese(check)
        )
    fields = Table.grid(padding=(0, 2))
    if status is Status.TAMPERED:
        # An altered document's fields are exactly what must not be shown as the licence.
        fields.add_row("[dim]fields[/]", "[red]not shown: the document was altered[/]")
    else:
        for name, value in body.get("fields", {}).items():
            fields.add_row(f"[dim]{_label(licence_type, name)}[/]", str(value))
    for name in body.get("hidden", []):
        fields.add_row(f"[dim]{_label(licence_type, name)}[/]", "[dim](hidden by the holder)[/]")
    for name in body.get("withheld", []):
        fields.add_row(f"[dim]{_label(licence_type, name)}[/]", "[dim](withheld from you)[/]")
    parts: list[Table | Text] = [
        Text.from_markup(
            f"[bold {_COLOUR[status]}]{status.value}[/]  "
            f"{body.get('licenceTypeName', '')}  [dim]{body.get('licenceId', '')}[/]"
        ),
        checks,
        fields,
    ]
    anchor = body.get("anchor")
    if anchor:
        when = dt.datetime.fromisoformat(anchor["time"]).astimezone(CHINA).isoformat()
        parts.append(
            Text(
                f"anchored in block {anchor['blockNumber']} ({when}) of chain "
                f"{anchor['chainId']}, registry {anchor['registry']}; "
                f"answer reflects block {body.get('blockHeight')}",
                style="dim",
            )
        )
    return Panel(Group(*parts), title=title, border_style=_COLOUR[status])


def print_verdict(console: Console, verdict: Verdict, title: str | None = None) -> None:
    """Print one verdict."""
    console.print(verdict_panel(verdict.to_json(), title))


def print_verdict_json(console: Console, body: Mapping[str, Any], title: str | None = None) -> None:
    """Print a verdict answered by a verifier service."""
    console.print(verdict_panel(body, title))
