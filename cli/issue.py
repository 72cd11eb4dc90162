"""`elicence issue`, the status commands (`revoke`, `suspend`, `reinstate`, `cancel`,
`supersede`) and `elicence records`: the agency's daily work, over issuer.issuing,
issuer.status and issuer.records."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, TypeVar

import typer

from cli.support import (
    EXIT_UNUSABLE,
    REASONS,
    ChainOption,
    HomeOption,
    RegistryOption,
    console,
    errors,
    fail,
    home_of,
    open_key,
    open_registry,
    parse_reason,
    reported,
)
from issuer.keystore import AGENCY_KEYSTORE
from ledger.private import private_folder
from licence.statuses import LeafStatus

if TYPE_CHECKING:
    from issuer.agency import AgencyContext

T = TypeVar("T")
_PROGRESS_FROM = 2_000  # licences: below this a run is over before a bar is worth drawing

ReasonOption = Annotated[
    str,
    typer.Option(help=f"Reason code, by number or name: {REASONS}."),
]
LicencesArgument = Annotated[
    list[str] | None,
    typer.Argument(
        help="Licence numbers or licence ids (0x...), as many as you like.", show_default=False
    ),
]
FromFileOption = Annotated[
    Path | None,
    typer.Option(
        "--from-file", help="A file of licence numbers or ids, one per line.", dir_okay=False
    ),
]


def issue(
    input_file: Annotated[
        Path,
        typer.Argument(
            metavar="INPUT",
            help="Licences to issue: CSV (UTF-8; field names or Chinese labels as headers) "
            "or JSON Lines (.jsonl).",
            dir_okay=False,
        ),
    ],
    *,
    licence_type: Annotated[
        str, typer.Option("--type", help="Catalogue id of the licence type (see `catalogue`).")
    ],
    out: Annotated[Path, typer.Option(help="Folder for the documents, QR images and manifests.")],
    batch_size: Annotated[
        int, typer.Option(help="Licences per anchoring transaction.", min=1, max=1_000_000)
    ] = 10_000,
    qr: Annotated[bool, typer.Option("--qr/--no-qr", help="Write a QR image per licence.")] = True,
    skip_invalid: Annotated[
        bool,
        typer.Option(help="Issue the valid rows and report the invalid ones, instead of nothing."),
    ] = False,
    workers: Annotated[
        int, typer.Option(help="Worker processes (0: one per CPU for large inputs).", min=0)
    ] = 0,
    home: HomeOption = None,
    chain: ChainOption = None,
    registry: RegistryOption = None,
) -> None:
    """Issue the licences in INPUT: validate all, anchor each batch once, write documents.

    Every row is checked first; if any is invalid nothing is issued and every bad row is
    listed (row, field, value, reason). Each batch is one anchoring transaction. Writes
    <licence number>.json (+ .png) per licence and batch-<root>.json per batch. Running
    the same INPUT again is safe: it completes an interrupted run and never anchors twice.

    Example: [bold]elicence issue licences.csv --type business-licence --out issued/[/]
    """
    from issuer.issuing import IssueOptions, issue_file
    from issuer.spreadsheet import read_for_issuing
    from licence.catalogue import catalogue

    folder = home_of(home)
    with reported():
        kind = catalogue().get(licence_type)
        source = read_for_issuing(input_file, kind, batch_size)
    options = IssueOptions(batch_size, qr, skip_invalid, workers)
    with _agency(folder, chain, registry) as context:
        private_folder(out, tighten=False)  # a folder the user already had keeps its mode
        if source.count < _PROGRESS_FROM:
            report = issue_file(context, kind, source, out, options=options)
        else:
            report = _with_progress(
                source.count,
                lambda progress: issue_file(
                    context, kind, source, out, options=options, progress=progress
                ),
            )
    for problem in report.skipped:
        errors.print(f"[yellow]skipped:[/] {problem}", highlight=False, soft_wrap=True)
    for batch in report.batches:
        if batch.resumed is None or batch.anchored_now:
            how = "anchored"
        else:
            how = f"already anchored (resumed from {batch.resumed.value.lower()})"
        console.print(
            f"batch 0x{batch.root.hex()}: {batch.count} licences {how} in transaction "
            f"{batch.tx_hash} (block {batch.block_number}); manifest {batch.manifest}",
            highlight=False,
            soft_wrap=True,
        )
    console.print(
        f"{report.count} {kind.name.zh} in {len(report.batches)} batch(es) written to {out}"
        + (f"; {len(report.skipped)} problem(s) in skipped rows" if report.skipped else ""),
        highlight=False,
    )


def _with_progress(total: int, run: Callable[[Callable[[str, int], None]], T]) -> T:
    from rich.progress import Progress

    with Progress(console=errors, transient=True) as bar:
        tasks = {
            "wrapped": bar.add_task("validating and wrapping", total=total),
            "written": bar.add_task("anchoring and writing", total=total),
        }

        def progress(phase: str, done: int) -> None:
            bar.update(tasks[phase], completed=done)

        return run(progress)


def _references(licences: list[str] | None, from_file: Path | None) -> list[str]:
    found = list(licences or [])
    if from_file is not None:
        try:
            lines = from_file.read_text(encoding="utf-8-sig").splitlines()
        except (OSError, UnicodeDecodeError) as exc:
            fail(f"cannot read {from_file}: {exc}", EXIT_UNUSABLE)
        found.extend(line.strip() for line in lines if line.strip())
    if not found:
        fail("name at least one licence (a number or 0x licence id), or --from-file", EXIT_UNUSABLE)
    return found


@contextmanager
def _agency(folder: Path, chain: str | None, registry: str | None) -> Iterator[AgencyContext]:
    """The agency's key, records and registry for a command that issues or changes what it
    issued; domain errors in the body become one-line messages (`reported`)."""
    from issuer.agency import AgencyContext
    from issuer.records import Records

    key = open_key(folder, AGENCY_KEYSTORE, "agency")
    with reported(), Records.of_home(folder) as records:
        yield AgencyContext(open_registry(folder, chain, registry), key, records)


def _status_command(status: LeafStatus, verb: str, word: str) -> Callable[..., None]:
    def command(
        licences: LicencesArgument = None,
        *,
        reason: ReasonOption,
        from_file: FromFileOption = None,
        home: HomeOption = None,
        chain: ChainOption = None,
        registry: RegistryOption = None,
    ) -> None:
        from issuer.status import change_status

        references = _references(licences, from_file)
        code = parse_reason(reason)
        with _agency(home_of(home), chain, registry) as context:
            changes = change_status(context, references, status, code)
        for change in changes:
            done = (
                f"in transaction {change.tx_hash}"
                if change.tx_hash
                else "(already so on chain; records updated)"
            )
            console.print(
                f"{word}: {', '.join(change.numbers)} (batch 0x{change.root.hex()}) {done}",
                highlight=False,
                soft_wrap=True,
            )

    command.__doc__ = (
        f"{verb.capitalize()} licences by number or licence id, one transaction per batch.\n\n"
        f"Example: [bold]elicence {verb} 110108000000000001 --reason "
        f"{'RECTIFIED' if status is LeafStatus.ACTIVE else 'ADMINISTRATIVE_PENALTY'}[/]"
    )
    return command


def supersede_command(
    licence: Annotated[str, typer.Argument(help="The licence replaced: number or licence id.")],
    *,
    by: Annotated[str, typer.Option(help="Its successor: licence number or licence id.")],
    reason: ReasonOption = "RENEWAL",
    home: HomeOption = None,
    chain: ChainOption = None,
    registry: RegistryOption = None,
) -> None:
    """Mark a licence as superseded (换发) by a newer one already issued.

    Example: [bold]elicence supersede 110108000000000001 --by 110108000000000101 --reason RENEWAL[/]
    """
    from issuer.status import supersede

    code = parse_reason(reason)
    with _agency(home_of(home), chain, registry) as context:
        change = supersede(context, licence, by, code)
    done = f"in transaction {change.tx_hash}" if change.tx_hash else "(already so on chain)"
    console.print(f"superseded: {licence} by {by} {done}", highlight=False)


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

    Example: [bold]elicence records --status revoked[/]
    """
    from rich.table import Table

    from issuer.records import Records

    wanted = status.upper() if status else None
    if wanted is not None and wanted not in LeafStatus.__members__:
        fail(f"--status {status!r}: use one of {', '.join(LeafStatus.__members__)}", EXIT_UNUSABLE)
    with reported(), Records.of_home(home_of(home)) as records:
        found = records.licences(status=wanted, holder=holder, number=number)
    if as_json:
        for r in found:
            print(
                json.dumps(
                    {
                        "licenceNumber": r.number,
                        "licenceType": r.licence_type,
                        "licenceId": "0x" + r.licence_id.hex(),
                        "holderCode": r.holder_code,
                        "status": r.status,
                        "reason": r.reason,
                        "root": "0x" + r.root.hex(),
                        "transaction": r.tx_hash,
                        "block": r.block,
                    },
                    ensure_ascii=False,
                )
            )
        return
    table = Table(title=f"{len(found)} licence(s)")
    for column in ("number", "type", "holder", "status", "licence id", "batch root", "block"):
        table.add_column(column)
    for r in found:
        table.add_row(
            r.number,
            r.licence_type,
            r.holder_code or "",
            r.status.lower(),
            "0x" + r.licence_id.hex(),
            "0x" + r.root.hex()[:16] + "…",
            str(r.block) if r.block is not None else "not anchored",
        )
    console.print(table)


def status_commands() -> dict[str, Callable[..., None]]:
    """`revoke`, `suspend`, `reinstate` and `cancel`, by name."""
    return {
        verb: _status_command(status, verb, word)
        for status, verb, word in (
            (LeafStatus.REVOKED, "revoke", "revoked"),
            (LeafStatus.SUSPENDED, "suspend", "suspended"),
            (LeafStatus.ACTIVE, "reinstate", "reinstated"),
            (LeafStatus.CANCELLED, "cancel", "cancelled"),
        )
    }
