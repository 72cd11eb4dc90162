"""`elicence catalogue`: the licence types and their state in the registry, one type's
fields, checking a definition file, and publishing definitions in the registry (the
governor's) (licence.catalogue, licence.catalogue_rules, ledger.registry)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from cli.support import (
    EXIT_REFUSED,
    EXIT_UNUSABLE,
    ChainOption,
    Column,
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
    print_table,
    reported,
)
from issuer.keystore import GOVERNOR_KEYSTORE
from licence.catalogue import LicenceType, catalogue
from licence.errors import DefinitionError, SuccessorError, UnknownLicenceType
from verifier.errors import VerifierError
from verifier.type_loading import TypeLoader

if TYPE_CHECKING:
    from ledger.registry import PublishedType, Registry

catalogue_app = typer.Typer(
    help="The licence types: list them, show one, check a definition file, publish it.",
    invoke_without_command=True,
)


@catalogue_app.callback()
def list_types(
    ctx: typer.Context,
    home: HomeOption = None,
    chain: ChainOption = None,
    registry: RegistryOption = None,
) -> None:
    """List the licence types: code, id, version, name and the departments that issue it;
    with a registry (the home's, or --registry), each version's state in it: published at
    block N, not published, or published with another definition (hash differs), and
    the versions it published that this installation does not hold.

    `elicence catalogue show TYPE` shows a type's fields; `elicence catalogue check FILE`
    checks a definition; `elicence catalogue publish` publishes. Into a pipe: one
    tab-separated line per type version.

    Example: [bold]elicence catalogue[/]
    """
    if ctx.invoked_subcommand is not None:
        return
    columns = [
        Column("code", typed=True),
        Column("id", typed=True),
        Column("version"),
        Column("名称"),
        Column("owners"),
    ]
    held = catalogue().every_version()
    rows = [
        [str(t.code), t.id, str(t.version), t.name.zh, "；".join(o.zh for o in t.owners)]
        for t in held
    ]
    found = _registry_states(home, chain, registry, held)
    if found is not None:
        states, extra = found
        columns.append(Column("registry"))
        for row, state in zip(rows, states, strict=True):
            row.append(state)
        rows = sorted(rows + extra, key=lambda row: (int(row[0]), int(row[2])))
    print_table(None, columns, rows)


def _registry_if_any(home: Path | None, chain: str | None, registry: str | None) -> Registry | None:
    """The registry named by the options or the home, or None when none is named."""
    from ledger.config import ConfigError, HomeConfig

    folder = home_of(home)
    try:
        named = HomeConfig.load(folder).resolve(chain, registry).registry
    except ConfigError as exc:
        fail(str(exc), EXIT_UNUSABLE)
    if not named:
        return None
    return open_registry(folder, chain, registry)


def _state(published: PublishedType | None, held: LicenceType) -> str:
    if published is None:
        return "not published"
    if published.definition_hash != held.definition_hash:
        return f"hash differs: 0x{published.definition_hash.hex()[:12]}…"
    return f"published at block {published.block_number}"


def _registry_states(
    home: Path | None, chain: str | None, registry: str | None, held: tuple[LicenceType, ...]
) -> tuple[list[str], list[list[str]]] | None:
    """Each held version's state in the registry the options or the home name, and a row
    for each version it published that is not held (one read a version, one a type for
    its latest); None when no registry is named, or it cannot be read (said on stderr:
    the catalogue is listed all the same)."""
    from ledger.errors import LedgerError

    try:
        bound = _registry_if_any(home, chain, registry)
        return None if bound is None else _states(bound, held)
    except LedgerError as exc:
        errors.print(
            f"[bold yellow]warning:[/] the registry could not be read ({exc}): its state "
            "is not shown",
            highlight=False,
            soft_wrap=True,
        )
        return None


def _states(bound: Registry, held: tuple[LicenceType, ...]) -> tuple[list[str], list[list[str]]]:
    """The registry's state of each held version, and rows for the versions it published
    that are not held."""
    states = [_state(bound.licence_type(t.code, t.version), t) for t in held]
    extra = []
    for current in catalogue():
        held_versions = {t.version for t in held if t.code == current.code}
        for version in range(1, bound.latest_type_version(current.code) + 1):
            if version in held_versions:
                continue
            published = bound.licence_type(current.code, version)
            block = "" if published is None else f" at block {published.block_number}"
            extra.append(
                [
                    str(current.code),
                    current.id,
                    str(version),
                    "(not in this installation: `catalogue show --version`)",
                    "",
                    f"published{block}",
                ]
            )
    return states, extra


def _type_named(
    text: str,
    version: int | None = None,
    loader: Callable[[], TypeLoader] | None = None,
) -> LicenceType:
    """The type `text` (an id or a code) in `version` (default its current one); a
    version this installation lacks is loaded from the registry when `loader` is given."""
    ref: str | int = int(text) if text.isdigit() else text
    try:
        if isinstance(ref, int):
            return catalogue().by_code(ref, version)
        return catalogue().get(ref, version)
    except UnknownLicenceType as exc:
        if version is None or loader is None:
            fail(str(exc), EXIT_UNUSABLE)
    try:
        return loader().load(ref, version)
    except VerifierError as exc:
        fail(str(exc), EXIT_UNUSABLE)


@catalogue_app.command("show")
def show(
    licence_type: Annotated[
        str, typer.Argument(metavar="TYPE", help="The type's id or code (see `catalogue`).")
    ],
    version: Annotated[
        int | None,
        typer.Option(
            help="The version to show (default the current one); one this installation "
            "lacks is read from the registry and checked against its hash.",
            min=1,
            show_default=False,
        ),
    ] = None,
    home: HomeOption = None,
    chain: ChainOption = None,
    registry: RegistryOption = None,
) -> None:
    """Show one licence type: its owners, the fields every presentation discloses, and
    its fields in order, with labels, kind, whether required or personal data, pattern.

    A spreadsheet's headers may be the field names, or their Chinese or English labels.
    Into a pipe: one tab-separated line per field.

    Example: [bold]elicence catalogue show food-business-licence --version 2[/]
    """

    def loader() -> TypeLoader:
        with reported():
            bound = _registry_if_any(home, chain, registry)
        if bound is None:
            fail(
                f"this installation has no {licence_type} version {version}, and no registry "
                "is configured to read it from (--registry)",
                EXIT_UNUSABLE,
            )
        return TypeLoader([bound])

    shown = _type_named(licence_type, version, loader)
    columns = [
        Column("field", typed=True),
        Column("标签", typed=True),
        Column("label"),
        Column("kind"),
        Column("required"),
        Column("personal"),
        Column("pattern"),
    ]
    rows = [
        [
            spec.name,
            spec.label.zh,
            spec.label.en,
            spec.kind.value,
            "yes" if spec.required else "no",
            "yes" if spec.personal else "no",
            spec.pattern.pattern if spec.pattern is not None else "",
        ]
        for spec in shown.fields
    ]
    if console.is_terminal:
        console.print(
            f"{shown.name.zh} · {shown.name.en}\n"
            f"id {shown.id} · code {shown.code} · version {shown.version} · definition "
            f"sha256 {shown.definition_hash.hex()}\n"
            f"owners: {'；'.join(o.zh for o in shown.owners)}\n"
            "always disclosed: "
            + ", ".join(n for n in shown.field_names if n in shown.mandatory_disclosure),
            highlight=False,
            markup=False,
            soft_wrap=True,
        )
    print_table(None, columns, rows)


def _load(path: Path) -> LicenceType:
    from licence.catalogue_rules import parse_definition_text

    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        fail(f"cannot read {path}: {exc}", EXIT_UNUSABLE)
    return parse_definition_text(text, str(path))


def _refuse(source: str, lines: list[str]) -> None:
    errors.print(
        f"[bold red]error:[/] {source} is not a valid licence type definition:",
        highlight=False,
        soft_wrap=True,
    )
    for line in lines:
        errors.print(f"  {line}", highlight=False, markup=False, soft_wrap=True)
    raise typer.Exit(EXIT_REFUSED)


@catalogue_app.command("check")
def check(
    file: Annotated[
        Path, typer.Argument(help="The definition file (JSON) to check.", dir_okay=False)
    ],
    against: Annotated[
        Path | None,
        typer.Option(
            "--against",
            help="The definition of the type's previous version: FILE must be a valid "
            "next version of it (docs/format.md lists what a version may change).",
            dir_okay=False,
            show_default=False,
        ),
    ] = None,
) -> None:
    """Check a licence type definition before it is published: exit 0 when it is valid,
    1 with every member at fault named (e.g. fields[3].pattern) when it is not.

    Its code must not be another type's in the shipped catalogue.

    Example: [bold]elicence catalogue check drug-business-licence.json --against v1.json[/]
    """
    from licence.catalogue_rules import check_successor, conflicts

    try:
        checked = _load(file)
    except DefinitionError as exc:
        lines = [f"{path}: {reason}" if path else reason for path, reason in exc.problems]
        _refuse(str(file), lines)
    clashes = conflicts(checked, list(catalogue()))
    if clashes:
        _refuse(str(file), [f"{path}: {reason}" for path, reason in clashes])
    follows = ""
    if against is not None:
        try:
            previous = _load(against)
        except DefinitionError as exc:
            fail(f"--against: {exc}", EXIT_UNUSABLE)
        try:
            check_successor(previous, checked)
        except SuccessorError as exc:
            _refuse(
                str(file),
                [
                    f"{path}: {reason} (rule {rule}, as the next version of {against})"
                    for rule, path, reason in exc.problems
                ],
            )
        follows = f"; it may follow version {previous.version}"
    console.print(
        f"{file}: {checked.name.zh} ({checked.id}) version {checked.version}, code "
        f"{checked.code}, {len(checked.fields)} fields: valid{follows}",
        highlight=False,
        markup=False,
        soft_wrap=True,
    )


@catalogue_app.command("publish")
def publish(
    definitions: Annotated[
        list[str] | None,
        typer.Argument(
            metavar="FILE_OR_TYPE...",
            help="Definition files (JSON), or types of this installation's catalogue by "
            "id or code (each version it holds).",
            show_default=False,
        ),
    ] = None,
    *,
    every: Annotated[
        bool, typer.Option("--all", help="Every version of every type this installation holds.")
    ] = False,
    home: HomeOption = None,
    chain: ChainOption = None,
    registry: RegistryOption = None,
    passphrase_fd: PassphraseFdOption = None,
    passphrase_file: PassphraseFileOption = None,
) -> None:
    """Publish licence type definitions in the registry (the governor's key): one
    transaction a version, which records its code, version and the SHA-256 of its
    canonical JSON; agencies can then be authorised for it and verifiers load it.

    Everything is checked before anything is sent: each definition's rules, no clash
    with this installation's catalogue, versions following on from the latest one the
    registry published (2 after 1), each new version a valid successor of the previous
    one (docs/format.md, "Versions"). A version published already with the same
    definition is skipped; with another, nothing is sent (a published version never
    changes: publish the change as the next version).

    Example: [bold]elicence catalogue publish drug-business-licence-v2.json[/]
    """
    from licence.catalogue_rules import check_successor

    wanted = _to_publish(definitions or [], every)
    folder = home_of(home)
    with reported():
        bound = open_registry(folder, chain, registry)
        plan = _plan(bound, wanted)
    previous: dict[int, LicenceType] = {}
    for licence_type in plan:
        before = previous.get(licence_type.code) or _published_version(
            bound, licence_type, licence_type.version - 1
        )
        if before is not None:
            try:
                check_successor(before, licence_type)
            except SuccessorError as exc:
                _refuse(
                    f"{licence_type.id} version {licence_type.version}",
                    [
                        f"{path}: {reason} (rule {rule}, as the next version of "
                        f"version {before.version})"
                        for rule, path, reason in exc.problems
                    ],
                )
        previous[licence_type.code] = licence_type
    for licence_type in wanted:
        if licence_type not in plan:
            console.print(
                f"{licence_type.code} {licence_type.id} version {licence_type.version}: "
                f"published already with sha256 {licence_type.definition_hash.hex()}",
                highlight=False,
            )
    if not plan:
        return
    governor = open_key(folder, GOVERNOR_KEYSTORE, "governor")
    for licence_type in plan:
        with reported():
            sent = bound.publish_licence_type(governor, licence_type)
        console.print(
            f"{licence_type.code} {licence_type.id} version {licence_type.version}: "
            f"published, sha256 {licence_type.definition_hash.hex()}, block "
            f"{sent.block_number}, gas {sent.gas_used}; transaction {sent.tx_hash}",
            highlight=False,
        )


def _to_publish(items: list[str], every: bool) -> list[LicenceType]:
    """The type versions named (files read and checked), by code and version."""
    from licence.catalogue_rules import conflicts

    if every == bool(items):
        fail("name definition files or types to publish, or --all (not both)", EXIT_UNUSABLE)
    chosen: dict[tuple[str, int], LicenceType] = {}
    if every:
        chosen = {t.key: t for t in catalogue().every_version()}
    for item in items:
        path = Path(item)
        if path.suffix == ".json" or path.exists():
            try:
                loaded = _load(path)
            except DefinitionError as exc:
                _refuse(item, [f"{at}: {reason}" if at else reason for at, reason in exc.problems])
            clashes = conflicts(loaded, list(catalogue().every_version()))
            if clashes:
                _refuse(item, [f"{at}: {reason}" for at, reason in clashes])
            chosen[loaded.key] = loaded
        else:
            named = _type_named(item)
            chosen.update({t.key: t for t in catalogue().versions(named.id)})
    return sorted(chosen.values(), key=lambda t: (t.code, t.version))


def _plan(bound: Registry, wanted: list[LicenceType]) -> list[LicenceType]:
    """The versions of `wanted` to send, in order; exits without sending anything when
    one is published otherwise or would not follow the registry's latest version."""
    plan = []
    latest: dict[int, int] = {}
    for licence_type in wanted:
        code, version = licence_type.code, licence_type.version
        if code not in latest:
            latest[code] = bound.latest_type_version(code)
        if version <= latest[code]:
            published = bound.licence_type(code, version)
            if published is not None and published.definition_hash != licence_type.definition_hash:
                fail(
                    f"{licence_type.id} version {version} (code {code}) is published with "
                    f"sha256 0x{published.definition_hash.hex()}, not this definition's "
                    f"0x{licence_type.definition_hash.hex()}: a published version never "
                    f"changes; publish the change as version {latest[code] + 1}; nothing was "
                    "sent",
                    EXIT_REFUSED,
                )
            continue
        if version != latest[code] + 1:
            fail(
                f"{licence_type.id} version {version} cannot be published: the registry's "
                f"latest version of code {code} is {latest[code]}, so the next is "
                f"{latest[code] + 1}; nothing was sent",
                EXIT_REFUSED,
            )
        latest[code] = version
        plan.append(licence_type)
    return plan


def _published_version(bound: Registry, like: LicenceType, version: int) -> LicenceType | None:
    """Version `version` of `like`'s type as the registry published it (from this
    installation's catalogue when it holds that very definition, else read from the
    chain and checked), or None for version 0."""
    if version < 1:
        return None
    try:
        with reported():
            return TypeLoader([bound]).load(like.code, version)
    except VerifierError as exc:
        fail(f"cannot read the version before {like.id} version {like.version}: {exc}", 1)
