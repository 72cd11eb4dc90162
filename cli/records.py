"""`elicence records`: what this agency issued and what became of it, over issuer.records."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

from cli.support import (
    EXIT_UNUSABLE,
    Column,
    HomeOption,
    fail,
    home_of,
    print_table,
    reported,
)
from licence.reasons import describe
from licence.statuses import LeafStatus

COLUMNS = (
    Column("number", typed=True),
    Column("type", typed=True),
    Column("status"),
    Column("reason"),
    Column("successor", typed=True),
    Column("holder", typed=True),
    Column("licence id", typed=True),
    Column("batch root", typed=True),
    Column("anchored in", typed=True),
    Column("status changed in", typed=True),
)


def records_command(
    *,
    status: Annotated[
        str | None,
        typer.Option(help="Only this status: active, suspended, revoked, superseded, cancelled."),
    ] = None,
    holder: Annotated[
        str | None, typer.Option(help="Only this holder's unified social credit code.")
    ] = None,
    number: Annotated[str | None, typer.Option(help="Only this licence number.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON lines.")] = False,
    home: HomeOption = None,
) -> None:
    """List what this agency issued, from its records (no chain needed).

    Per licence: number, type, status with its reason, successor (for a superseded
    licence), holder credit code, licence id, batch root, the anchoring transaction and
    the transaction of the last status change. Into a pipe: tab-separated lines.

    Example: [bold]elicence records --status revoked[/]
    """
    from issuer.records import Records

    wanted = status.upper() if status else None
    if wanted is not None and wanted not in LeafStatus.__members__:
        fail(f"--status {status!r}: use one of {', '.join(LeafStatus.__members__)}", EXIT_UNUSABLE)
    with reported(), Records.of_home(home_of(home)) as records:
        found = records.licences(status=wanted, holder=holder, number=number)
        successors = {
            r.successor: records.find("0x" + r.successor.hex()) for r in found if r.successor
        }
    entries = [_entry(r, {k: v[0].number for k, v in successors.items() if v}) for r in found]
    if as_json:
        for entry in entries:
            print(json.dumps(entry, ensure_ascii=False))
        return
    print_table(f"{len(found)} licence(s)", COLUMNS, [_row(e) for e in entries])


def _entry(record: Any, successor_numbers: dict[bytes, str]) -> dict[str, Any]:
    """One licence as --json prints it."""
    reason = describe(record.reason) if record.reason is not None else None
    successor = record.successor
    return {
        "licenceNumber": record.number,
        "licenceType": record.licence_type,
        "licenceId": "0x" + record.licence_id.hex(),
        "holderCode": record.holder_code,
        "status": record.status,
        "reason": reason.key if reason else None,
        "reasonCode": reason.code if reason else None,
        "reasonText": {"zh": reason.label.zh, "en": reason.label.en} if reason else None,
        "successorNumber": successor_numbers.get(successor) if successor else None,
        "successorId": "0x" + successor.hex() if successor else None,
        "root": "0x" + record.root.hex(),
        "anchorTransaction": record.tx_hash,
        "anchorBlock": record.block,
        "statusTransaction": record.status_tx,
        "statusBlock": record.status_block,
    }


def _row(entry: dict[str, Any]) -> list[str]:
    reason = entry["reasonText"]
    anchored = (
        f"block {entry['anchorBlock']}, {entry['anchorTransaction']}"
        if entry["anchorBlock"] is not None
        else "not anchored"
    )
    changed = ""
    if entry["statusTransaction"]:
        changed = f"block {entry['statusBlock']}, {entry['statusTransaction']}"
    elif entry["reason"] is not None:
        changed = "not recorded"  # the chain showed the change already (a re-run)
    return [
        entry["licenceNumber"],
        entry["licenceType"],
        entry["status"].lower(),
        f"{entry['reason']} ({reason['zh']})" if reason else "",
        entry["successorNumber"] or entry["successorId"] or "",
        entry["holderCode"] or "",
        entry["licenceId"],
        entry["root"],
        anchored,
        changed,
    ]
