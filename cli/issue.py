"""`elicence issue`, the status commands (`revoke`, `suspend`, `reinstate`, `cancel`,
`supersede`): the agency's daily work, over issuer.issuing and issuer.status
(`elicence records` is cli/records.py's)."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, TypeVar

import typer
from rich.progress import ProgressColumn, Task
from rich.text import Text

from cli.support import (
    EXIT_UNUSABLE,
    REASONS,
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
    parse_reason,
    reported,
)
from issuer.keystore import AGENCY_KEYSTORE
from ledger.private import private_folder
from licence.statuses import LeafStatus

if TYPE_CHECKING:
    from issuer.agency import AgencyContext
    from issuer.checking import AlreadyIssued
    from issuer.issuing import Progress, Stage
    from issuer.spreadsheet import Input
    from ledger.registry import Registry
    from licence.catalogue import LicenceType
    from licence.fields import FieldProblem

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
        str,
        typer.Option(
            "--type",
            help="The licence type: its id or code, shipped with this installation or "
            "published in the registry (see `catalogue`).",
        ),
    ],
    type_version: Annotated[
        int | None,
        typer.Option(
            "--type-version",
            help="The version of the type to issue under (it must be published); default "
            "the latest the registry publishes.",
            min=1,
            max=65535,
            show_default=False,
        ),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option(
            help="Folder for the documents, QR images and manifests (not needed with --check).",
            show_default=False,
        ),
    ] = None,
    check: Annotated[
        bool,
        typer.Option(
            "--check",
            help="Only check INPUT: list every problem, issue nothing (no key; no chain "
            "unless a registry is named, to find the type version).",
        ),
    ] = False,
    batch_size: Annotated[
        int, typer.Option(help="Licences per anchoring transaction.", min=1, max=1_000_000)
    ] = 10_000,
    qr: Annotated[
        bool, typer.Option("--qr/--no-qr", help="Write a QR image and EL1 text per licence.")
    ] = True,
    skip_invalid: Annotated[
        bool,
        typer.Option(help="Issue the valid rows and report the invalid ones, instead of nothing."),
    ] = False,
    workers: Annotated[
        int, typer.Option(help="Worker processes (0: one per CPU for large inputs).", min=0)
    ] = 0,
    suite: Annotated[
        str | None,
        typer.Option(
            help="Hash suite: sha256 or sm3 (国密 SM3). Default: the home's config.json "
            '"issuing": {"hashSuites": {type: suite}}, else sha256.',
            show_default=False,
        ),
    ] = None,
    home: HomeOption = None,
    chain: ChainOption = None,
    registry: RegistryOption = None,
    passphrase_fd: PassphraseFdOption = None,
    passphrase_file: PassphraseFileOption = None,
) -> None:
    """Issue the licences in INPUT: validate all, anchor each batch once, write documents.

    Every row is checked first; if any is invalid nothing is issued and every bad row is
    listed (row, field, value, reason). With --check, INPUT is only checked, with no
    key: exit 0 when every row is valid, 2 when not. Each batch is one
    anchoring transaction. Writes <licence number>.json per licence (with --qr, also its
    QR image .png and the QR's text .el1) and batch-<root>.json per batch. Running the
    same INPUT again is safe: it completes an interrupted run, never anchors twice, and
    skips rows issued before with the same fields.

    The type need not ship with this installation: a type or version the registry
    publishes is read from it (its definition checked against the registry's hash).
    Licences are issued under the latest version the registry publishes, or the one
    --type-version names. With --check, the registry the home names (if any) is read
    the same way, with no key; with none, this installation's version is used.

    Example: [bold]elicence issue licences.csv --type business-licence --out issued/[/]
    """
    from issuer.agency import issuing_suite
    from issuer.issuing import IssueOptions, issue_file
    from issuer.spreadsheet import read_for_issuing

    if not check and out is None:
        fail("name the folder to write the licences to with --out (or pass --check)", EXIT_UNUSABLE)
    folder = home_of(home)
    with reported():
        kind = _issuing_type(folder, chain, registry, licence_type, type_version, check=check)
        source = read_for_issuing(input_file, kind, batch_size)
    if check:
        _check_only(input_file, kind, source)
        return
    assert out is not None  # refused above
    with reported():
        hash_suite = issuing_suite(folder, kind.id, suite)
    options = IssueOptions(batch_size, qr, skip_invalid, workers, hash_suite)
    with _agency(folder, chain, registry, sealing=True) as context, _output_folder(out):
        if source.count < _PROGRESS_FROM:
            report = issue_file(context, kind, source, out, options=options)
        else:
            report = _with_progress(
                lambda progress: issue_file(
                    context, kind, source, out, options=options, progress=progress
                ),
            )
    for problem in report.skipped:
        errors.print(f"[yellow]skipped:[/] {problem}", highlight=False, soft_wrap=True)
    if report.already_issued:
        console.print(_already_issued(report.already_issued), highlight=False, soft_wrap=True)
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


def _issuing_type(
    folder: Path,
    chain: str | None,
    registry: str | None,
    type_ref: str,
    version: int | None,
    *,
    check: bool,
) -> LicenceType:
    """The licence type (an id or a code) to issue, in the version to issue under.

    Read from the registry: the latest version it publishes unless `version` names one
    (which must be published); a version this installation does not ship is loaded from
    the registry's own record and checked against its hash (verifier.type_loading), and
    added to the process's catalogue. A shipped version is taken as shipped: anchoring
    refuses it unless its hash is the published one. Only `check` without a registry
    named uses this installation's catalogue alone.

    Raises:
        IssuingError: the version is not published, or cannot be loaded.
        UnknownLicenceType: with `check` and no registry, a type this installation lacks.
    (A type id neither shipped nor published for the agency exits 2: `_code_of`.)
    """
    from issuer.errors import IssuingError
    from licence.catalogue import catalogue

    ref: str | int = int(type_ref) if type_ref.isdigit() else type_ref
    bound = _registry_if_named(folder, chain, registry) if check else None
    if bound is None and check:
        if isinstance(ref, int):
            return catalogue().by_code(ref, version)
        return catalogue().get(ref, version)
    if bound is None:
        bound = open_registry(folder, chain, registry)
    code = ref if isinstance(ref, int) else _code_of(bound, folder, ref)
    latest = bound.latest_type_version(code)  # a LedgerError is reported as such
    wanted = latest if version is None else version
    if latest == 0 and version is None and _ships_code(code):
        # Never published: issuing explains it in the agency's terms (not authorised
        # for it, which it cannot be before it is published), before any work.
        return catalogue().by_code(code)
    if latest == 0 or wanted > latest:
        named = f"licence type {type_ref}" + ("" if version is None else f" version {version}")
        published = f"the latest is version {latest}" if latest else "no version of it is"
        raise IssuingError(
            f"{named} is not published in registry {bound.address} ({published}); the "
            "governor publishes it first (`elicence catalogue publish`); nothing was issued"
        )
    return _loaded(bound, type_ref, code, wanted)


def _loaded(bound: Registry, type_ref: str, code: int, version: int) -> LicenceType:
    """Version `version` of type `code`: this installation's, else the registry's."""
    from issuer.errors import IssuingError
    from verifier.errors import TypeUnavailable, VerifierError
    from verifier.type_loading import TypeLoader

    try:
        return TypeLoader([bound]).load(code, version)
    except TypeUnavailable as exc:
        raise IssuingError(
            f"cannot issue licence type {type_ref} version {version}: {exc.detail}; "
            "nothing was issued"
        ) from exc
    except VerifierError as exc:
        raise IssuingError(f"{exc}; nothing was issued") from exc


def _code_of(bound: Registry, folder: Path, type_id: str) -> int:
    """The code of the type called `type_id`: this installation's, else that of a
    published type the agency is authorised for (the registry maps codes to
    definitions, not ids to codes; an agency issues only the few types it may)."""
    from issuer.keystore import address_of, keystore_path
    from licence.catalogue import catalogue

    if _ships_id(type_id):
        return catalogue().get(type_id).code
    agency_id = bound.agency_id_of(address_of(keystore_path(folder, AGENCY_KEYSTORE)))
    authorised = sorted(bound.agency(agency_id).licence_types) if agency_id else []
    for code in authorised:
        if _ships_code(code):
            continue
        latest = bound.latest_type_version(code)
        if latest and _loaded(bound, type_id, code, latest).id == type_id:
            return code
    whose = f"agency {agency_id}" if agency_id else "this home's agency key"
    fail(
        f"unknown licence type {type_id!r}: this installation does not ship it, and registry "
        f"{bound.address} publishes no type of that id that {whose} may issue "
        "(see `elicence catalogue`)",
        EXIT_UNUSABLE,
    )


def _ships_id(type_id: str) -> bool:
    from licence.catalogue import catalogue
    from licence.errors import UnknownLicenceType

    try:
        catalogue().get(type_id)
    except UnknownLicenceType:
        return False
    return True


def _ships_code(code: int) -> bool:
    from licence.catalogue import catalogue
    from licence.errors import UnknownLicenceType

    try:
        catalogue().by_code(code)
    except UnknownLicenceType:
        return False
    return True


def _registry_if_named(folder: Path, chain: str | None, registry: str | None) -> Registry | None:
    """The registry the options or the home's config name, or None when none is named."""
    from ledger.config import HomeConfig

    if not HomeConfig.load(folder).resolve(chain, registry).registry:
        return None
    return open_registry(folder, chain, registry)


def _check_only(input_file: Path, kind: LicenceType, source: Input) -> None:
    """`issue --check`: every problem of INPUT, one per line; exit 0 when none, else 2."""
    from issuer.checking import input_problems

    with reported():
        problems = input_problems(kind, source)
    if not problems:
        console.print(
            f"{input_file}: all {source.count} row(s) are valid {kind.name.zh} ({kind.id} "
            f"version {kind.version}); nothing was issued",
            highlight=False,
            soft_wrap=True,
        )
        return
    rows = {p.row for p in problems if p.row is not None}
    errors.print(
        f"[bold red]error:[/] {input_file}: {len(problems)} problem(s) in {len(rows)} row(s); "
        "nothing was issued:",
        highlight=False,
        soft_wrap=True,
    )
    for problem in problems:
        errors.print(f"  {_problem_line(kind, problem)}", highlight=False, markup=False)
    raise typer.Exit(EXIT_UNUSABLE)


def _problem_line(kind: LicenceType, problem: FieldProblem) -> str:
    """Row, column (its Chinese heading and field name), what is wrong, and the value."""
    spec = kind.field(problem.path) if problem.path else None
    column = f"{spec.label.zh} ({spec.name})" if spec is not None else problem.path
    where = ", ".join(
        part for part in (f"row {problem.row}" if problem.row is not None else "", column) if part
    )
    value = "" if problem.value is None else f" (value {problem.value!r})"
    return f"{where}: {problem.reason}{value}" if where else f"{problem.reason}{value}"


def _already_issued(rows: Sequence[AlreadyIssued]) -> str:
    """One line for the rows left out because they were issued before, as they are."""
    if len(rows) <= 5:
        listed = ", ".join(f"row {r.row} ({r.number})" for r in rows)
    else:
        listed = f"rows {_ranges([r.row for r in rows])}"
    return f"already issued with the same fields, skipped: {listed}"


def _ranges(numbers: list[int]) -> str:
    """2, 3, 4, 7 -> '2-4, 7'."""
    spans: list[list[int]] = []
    for n in sorted(numbers):
        if spans and n == spans[-1][1] + 1:
            spans[-1][1] = n
        else:
            spans.append([n, n])
    return ", ".join(f"{a}" if a == b else f"{a}-{b}" for a, b in spans)


@contextmanager
def _output_folder(out: Path) -> Iterator[None]:
    """`out`, made for the run (mode 0700, an existing folder keeps its own); the folders
    the run made are removed again at the end if still empty, so a refused run leaves
    nothing behind. A folder that was there before is never removed."""
    made = []
    probe = out.absolute()
    while not probe.exists() and not probe.is_symlink() and probe != probe.parent:
        made.append(probe)  # deepest first
        probe = probe.parent
    private_folder(out, tighten=False)
    try:
        yield
    finally:
        for folder in made:
            try:
                folder.rmdir()  # only ever an empty folder
            except OSError:
                break


class _Rate(ProgressColumn):
    """How many rows or licences a second a stage goes through."""

    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text(f"{speed:,.0f}/s" if speed else "", style="progress.data.speed")


def _with_progress(run: Callable[[Progress], T]) -> T:
    """`run` with one bar per stage of issuing, each with its count, rate and time left."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        TaskID,
        TextColumn,
        TimeRemainingColumn,
    )
    from rich.progress import Progress as Bars

    columns = (
        TextColumn("{task.description:<10}"),
        BarColumn(bar_width=24),
        MofNCompleteColumn(),
        _Rate(),
        TimeRemainingColumn(),
    )
    with Bars(*columns, console=errors, transient=True) as bars:
        tasks: dict[Stage, TaskID] = {}

        def progress(stage: Stage, done: int, total: int) -> None:
            if stage not in tasks:
                tasks[stage] = bars.add_task(stage.value, total=total)
            bars.update(tasks[stage], completed=done, total=total)

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
def _agency(
    folder: Path, chain: str | None, registry: str | None, *, sealing: bool = False
) -> Iterator[AgencyContext]:
    """The agency's key, records and registry for a command that issues or changes what it
    issued (with `sealing`, also its SM2 seal key when the home has one); domain errors in
    the body become one-line messages (`reported`)."""
    from issuer.agency import AgencyContext
    from issuer.records import Records

    key = open_key(folder, AGENCY_KEYSTORE, "agency")
    seal_key = _seal_key(folder) if sealing else None
    with reported(), Records.of_home(folder) as records:
        yield AgencyContext(open_registry(folder, chain, registry), key, records, seal_key)


def _seal_key(folder: Path) -> bytes | None:
    """The agency's SM2 seal key (HOME/keys/seal.json), opened with the same passphrase
    as its chain key; None when the home has none (issuing then refuses if the registry
    names a seal key for the agency)."""
    from issuer.keystore import SEAL_KEYSTORE, keystore_path

    path = keystore_path(folder, SEAL_KEYSTORE)
    if not path.exists():
        return None
    return open_seal_key(path, "the seal key")


def _status_command(status: LeafStatus, verb: str, word: str) -> Callable[..., None]:
    def command(
        licences: LicencesArgument = None,
        *,
        reason: ReasonOption,
        from_file: FromFileOption = None,
        home: HomeOption = None,
        chain: ChainOption = None,
        registry: RegistryOption = None,
        passphrase_fd: PassphraseFdOption = None,
        passphrase_file: PassphraseFileOption = None,
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
    passphrase_fd: PassphraseFdOption = None,
    passphrase_file: PassphraseFileOption = None,
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
