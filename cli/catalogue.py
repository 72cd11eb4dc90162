"""`elicence catalogue`: the licence types, one type's fields, and checking a definition
file before it is published (licence.catalogue, licence.catalogue_rules)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from cli.support import (
    EXIT_REFUSED,
    EXIT_UNUSABLE,
    Column,
    console,
    errors,
    fail,
    print_table,
)
from licence.catalogue import LicenceType, catalogue
from licence.errors import DefinitionError, SuccessorError, UnknownLicenceType

catalogue_app = typer.Typer(
    help="The licence types: list them, show one, check a definition file.",
    invoke_without_command=True,
)


@catalogue_app.callback()
def list_types(ctx: typer.Context) -> None:
    """List the licence types: code, id, version, name and the departments that issue it.

    `elicence catalogue show TYPE` shows a type's fields; `elicence catalogue check FILE`
    checks a definition. Into a pipe: one tab-separated line per type.

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
    rows = [
        [
            str(t.code),
            t.id,
            str(t.version),
            t.name.zh,
            "；".join(owner.zh for owner in t.owners),
        ]
        for t in catalogue()
    ]
    print_table(None, columns, rows)


def _type_named(text: str) -> LicenceType:
    try:
        return catalogue().by_code(int(text)) if text.isdigit() else catalogue().get(text)
    except UnknownLicenceType as exc:
        fail(str(exc), EXIT_UNUSABLE)


@catalogue_app.command("show")
def show(
    licence_type: Annotated[
        str, typer.Argument(metavar="TYPE", help="The type's id or code (see `catalogue`).")
    ],
) -> None:
    """Show one licence type: its owners, the fields every presentation discloses, and
    its fields in order, with labels, kind, whether required or personal data, pattern.

    A spreadsheet's headers may be the field names, or their Chinese or English labels.
    Into a pipe: one tab-separated line per field.

    Example: [bold]elicence catalogue show food-business-licence[/]
    """
    shown = _type_named(licence_type)
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
            f"id {shown.id} · code {shown.code} · version {shown.version}\n"
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
