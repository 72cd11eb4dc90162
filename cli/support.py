"""What every `elicence` command shares: exit codes, one-line errors, options, keys.

Domain errors become one line and an exit code here, at the edge, and nowhere else:
0 done (or the licence is VALID), 1 refused by the registry, invalid data or any
verdict other than VALID, 2 unusable input (a missing file, a wrong passphrase, a bad
option or configuration, a document naming another registry), 3 the chain could not be
reached (no verdict possible).
"""

from __future__ import annotations

import os
import re
import stat
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from eth_account.signers.local import LocalAccount
from rich.cells import cell_len
from rich.console import Console
from rich.table import Table
from typer.core import TyperGroup

from issuer.errors import IssuerError, LicenceValidationError
from issuer.keystore import (
    KeystoreError,
    KeystoreMissing,
    WrongPassphrase,
    keystore_path,
)
from issuer.keystore import load as load_keystore
from ledger.config import default_home
from ledger.errors import (
    ChainUnreachable,
    InsufficientFunds,
    LedgerError,
    RegistryRejected,
)
from ledger.registry import Registry
from licence.catalogue import catalogue
from licence.errors import LicenceFormatError
from licence.reasons import Reason
from licence.statuses import LeafStatus

EXIT_OK, EXIT_REFUSED, EXIT_UNUSABLE, EXIT_UNREACHABLE = 0, 1, 2, 3
PASSPHRASE_VARIABLE = "ELICENCE_PASSPHRASE"
REASONS = ", ".join(f"{r.value} {r.name}" for r in Reason)

# Into a pipe or a file, lines are written whole (a program reads them); a terminal
# wraps them itself.
console = Console(soft_wrap=not sys.stdout.isatty())
errors = Console(stderr=True, soft_wrap=not sys.stderr.isatty())

HomeOption = Annotated[
    Path | None,
    typer.Option(
        "--home",
        help="Home folder (keys, config, records); default ELICENCE_HOME or ~/.elicence.",
        file_okay=False,
        show_default=False,
    ),
]
ChainOption = Annotated[
    str | None,
    typer.Option(
        "--chain",
        help="Chain JSON-RPC URL; default ELICENCE_CHAIN, then the home's config.json, "
        "then http://127.0.0.1:8545.",
        show_default=False,
    ),
]
RegistryOption = Annotated[
    str | None,
    typer.Option(
        "--registry",
        help="Registry address; default ELICENCE_REGISTRY, then the home's config.json.",
        show_default=False,
    ),
]


def fail(message: str, code: int) -> NoReturn:
    """Print a one-line error and exit with `code`."""
    errors.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def home_of(home: Path | None) -> Path:
    """--home, else ELICENCE_HOME, else ~/.elicence."""
    return home if home is not None else default_home()


# Where --passphrase-fd and --passphrase-file leave their values (and the passphrase once
# read: a descriptor can be read only once, and rotating a key asks twice): a dict in the
# meta of the command line's context, which the options' callbacks (run on every command
# line, given or not) make the current one.
_PASSPHRASE_META = "elicence.passphrase"
_passphrase_sources: ContextVar[dict[str, object] | None] = ContextVar(
    "passphrase_sources", default=None
)
_NO_PASSPHRASE = (
    "no passphrase for the key and no terminal to ask for one: set ELICENCE_PASSPHRASE, "
    "or pass --passphrase-file PATH or --passphrase-fd N (docs/agency.md, Keys)"
)


def _remember_source(ctx: typer.Context, param: typer.CallbackParam, value: object) -> object:
    sources: dict[str, object] = ctx.meta.setdefault(_PASSPHRASE_META, {})
    _passphrase_sources.set(sources)
    if value is not None:
        sources["fd" if "--passphrase-fd" in param.opts else "file"] = value
    return value


# Read through the click context by passphrase(), so the commands need not pass them on
# (the parameters of these names in a command's signature are always None).
PassphraseFdOption = Annotated[
    int | None,
    typer.Option(
        "--passphrase-fd",
        metavar="N",
        help="Read the keystore passphrase from this open file descriptor (its first line), "
        "e.g. --passphrase-fd 3 3<secret.txt.",
        min=0,
        callback=_remember_source,
        expose_value=False,
        show_default=False,
    ),
]
PassphraseFileOption = Annotated[
    Path | None,
    typer.Option(
        "--passphrase-file",
        metavar="PATH",
        help="Read the keystore passphrase from this file (its first line); the file must "
        "be its owner's alone (chmod 600).",
        dir_okay=False,
        callback=_remember_source,
        expose_value=False,
        show_default=False,
    ),
]


def passphrase(*, confirm: bool) -> str:
    """The keystore passphrase: --passphrase-fd, else --passphrase-file, else
    ELICENCE_PASSPHRASE, else a hidden prompt on the terminal (asked twice for a new
    keystore); exits 2 when there is none of these."""
    sources = _passphrase_sources.get()
    if sources is None:  # called outside a command line
        sources = {}
    if "read" in sources:
        return str(sources["read"])
    value = _passphrase_given(sources)
    if value is not None:
        sources["read"] = value
        return value
    if not _can_prompt():
        fail(_NO_PASSPHRASE, EXIT_UNUSABLE)
    answer: str = typer.prompt(
        "Keystore passphrase", hide_input=True, confirmation_prompt=confirm, err=True
    )
    return answer


def _passphrase_given(sources: Mapping[str, object]) -> str | None:
    fd, file = sources.get("fd"), sources.get("file")
    if isinstance(fd, int):
        try:
            with open(fd, "rb", closefd=False) as stream:
                return _first_line(stream.readline(), f"--passphrase-fd {fd}")
        except OSError as exc:
            fail(f"--passphrase-fd {fd}: cannot read it ({exc.strerror})", EXIT_UNUSABLE)
    if isinstance(file, Path):
        return _first_line(_read_private(file), f"--passphrase-file {file}")
    return os.environ.get(PASSPHRASE_VARIABLE) or None


def _read_private(path: Path) -> bytes:
    # As ssh does with keys: a secret others may read (or replace) is no secret.
    try:
        with path.open("rb") as stream:
            mode = stat.S_IMODE(os.fstat(stream.fileno()).st_mode)
            if mode & 0o077:
                fail(
                    f"--passphrase-file {path} may be read or changed by other users (mode "
                    f"{mode:04o}): make it yours alone with `chmod 600 {path}`",
                    EXIT_UNUSABLE,
                )
            return stream.readline()
    except OSError as exc:
        fail(f"--passphrase-file {path}: cannot read it ({exc.strerror})", EXIT_UNUSABLE)


def _first_line(line: bytes, source: str) -> str:
    try:
        text = line.decode("utf-8").removesuffix("\n").removesuffix("\r")
    except UnicodeDecodeError:
        fail(f"{source}: the passphrase is not UTF-8 text", EXIT_UNUSABLE)
    if not text:
        fail(f"{source}: the passphrase is empty", EXIT_UNUSABLE)
    return text


def _can_prompt() -> bool:
    """Whether a hidden prompt can be shown: getpass asks on the controlling terminal."""
    try:
        os.close(os.open("/dev/tty", os.O_RDWR | os.O_NOCTTY))
    except OSError:
        return sys.stdin.isatty()
    return True


def open_key(home: Path, name: str, who: str) -> LocalAccount:
    """The key in HOME/keys/NAME, opened with the passphrase; exits 2 when it cannot be."""
    path = keystore_path(home, name)
    if not path.exists():
        hint = (
            "create it with `elicence agency new`"
            if who == "agency"
            else "`elicence registry deploy` creates it"
        )
        fail(f"there is no {who} key in {home} ({path} is missing): {hint}", EXIT_UNUSABLE)
    try:
        return load_keystore(path, passphrase(confirm=False))
    except WrongPassphrase:
        fail(f"wrong passphrase for the {who} key {path}", EXIT_UNUSABLE)
    except (KeystoreMissing, KeystoreError) as exc:
        fail(str(exc), EXIT_UNUSABLE)


def open_seal_key(path: Path, who: str) -> bytes:
    """The SM2 private key in the keystore at PATH, opened with the passphrase; exits 2
    when it cannot be. `who` names it in the message ("the seal key")."""
    from issuer.keystore import load_seal_key

    try:
        return load_seal_key(path, passphrase(confirm=False))
    except WrongPassphrase:
        fail(f"wrong passphrase for {who} {path}", EXIT_UNUSABLE)
    except KeystoreError as exc:
        fail(str(exc), EXIT_UNUSABLE)


def open_registry(home: Path, chain: str | None, registry: str | None) -> Registry:
    """The registry the home's config (or the options) name, on its chain."""
    from issuer.agency import registry_of_home

    return registry_of_home(home, chain, registry)


def read_input(file: str) -> bytes:
    """The bytes of `file`, or of standard input for '-'; exits 2 when unreadable."""
    try:
        return sys.stdin.buffer.read() if file == "-" else Path(file).read_bytes()
    except OSError as exc:
        fail(f"cannot read {file}: {exc.strerror}", EXIT_UNUSABLE)


def parse_reason(text: str) -> Reason:
    """A reason code by number or name (any case, - or _); exits 2 when it is none."""
    value = text.strip().upper().replace("-", "_")
    if value.isdigit() and int(value) in Reason._value2member_map_:
        return Reason(int(value))
    if value in Reason.__members__:
        return Reason[value]
    fail(f"--reason {text!r} is not a reason code; the codes are: {REASONS}", EXIT_UNUSABLE)


def split_names(values: list[str] | None) -> frozenset[str] | None:
    """Names given comma-separated in a repeatable option; None when none are."""
    if not values:
        return None
    return frozenset(n.strip() for item in values for n in item.split(",") if n.strip())


def licence_type_codes(text: str) -> list[int]:
    """Catalogue ids (or codes) separated by commas -> on-chain codes.

    A code is taken as given, shipped with this installation or not: a type published
    since the release is named by its code, and the registry refuses a code it has not
    published (LicenceRegistryTypeNotPublished)."""
    codes = []
    for item in (t.strip() for t in text.split(",")):
        if not item:
            continue
        codes.append(int(item) if item.isdigit() else _code_of(item))
    if not codes:
        fail("--types names no licence type (see `elicence catalogue`)", EXIT_UNUSABLE)
    return codes


def _code_of(type_id: str) -> int:
    return catalogue().get(type_id).code


def type_name(code: object) -> str:
    """营业执照 (business-licence) for a licence type code; the code itself if unknown."""
    try:
        licence_type = catalogue().by_code(int(str(code)))
    except (LicenceFormatError, ValueError):
        return f"licence type {code}"
    return f"{licence_type.name.zh} ({licence_type.id})"


def explain_rejection(exc: RegistryRejected, names: Mapping[bytes, str] | None = None) -> str:
    """The registry's refusal as a sentence an official understands."""
    a = exc.error_args
    names = names or {}

    def licence(leaf: object) -> str:
        if isinstance(leaf, bytes) and leaf in names:
            return f"licence {names[leaf]}"
        return f"licence 0x{leaf.hex()}" if isinstance(leaf, bytes) else "the licence"

    def status(value: object) -> str:
        try:
            return LeafStatus(int(str(value))).name.lower()
        except ValueError:
            return f"status {value}"

    root = a.get("root")
    batch = f"0x{root.hex()}" if isinstance(root, bytes) else "this batch"
    sentences: dict[str, Callable[[], str]] = {
        "AccessControlUnauthorizedAccount": lambda: (
            f"{a.get('account')} is not a governor of this registry: only the governor's key "
            "may do this"
        ),
        "LicenceRegistryNotAuthorised": lambda: (
            f"agency {a.get('agencyId')} is not authorised to issue "
            f"{type_name(a.get('licenceType'))}; the governor can add it with "
            "`elicence agency types`"
        ),
        "LicenceRegistryNotAgency": lambda: (
            f"the key {a.get('caller')} is not the signing key of any agency in this registry "
            "(not yet authorised by the governor, or replaced by a newer key)"
        ),
        "LicenceRegistryAgencyRetired": lambda: (
            f"agency {a.get('agencyId')} is retired: it can no longer issue or change licences"
        ),
        "LicenceRegistryUnknownAgency": lambda: (
            f"there is no agency {a.get('agencyId')} in this registry"
        ),
        "LicenceRegistryAgencyCodeTaken": lambda: (
            f"the credit code {a.get('code')} is already registered as agency {a.get('agencyId')}"
        ),
        "LicenceRegistryInvalidAgencyCode": lambda: (
            f"{a.get('code')!r} is not an 18-character unified social credit code"
        ),
        "LicenceRegistrySignerAlreadyUsed": lambda: (
            f"the key {a.get('signer')} has signed for an agency before and can never be used "
            "again: create a new key"
        ),
        "LicenceRegistryInvalidSigner": lambda: f"{a.get('signer')} cannot be a signing key",
        "LicenceRegistryTypeNotPublished": lambda: (
            f"{type_name(a.get('licenceType'))} has no published version"
            + (f" {a.get('version')}" if a.get("version") else "")
            + " in this registry: the governor publishes it first with "
            "`elicence catalogue publish`"
        ),
        "LicenceRegistryInvalidTypeVersion": lambda: (
            f"version {a.get('version')} of {type_name(a.get('licenceType'))} cannot be "
            f"published: the latest published is {a.get('latest')}, so the next is "
            f"{int(a.get('latest') or 0) + 1}"
        ),
        "LicenceRegistryInvalidTypeDefinition": lambda: (
            f"the definition of {type_name(a.get('licenceType'))} has {a.get('length')} bytes: "
            "a published definition has 1 to 16,384"
        ),
        "LicenceRegistryInvalidLicenceType": lambda: "licence type 0 cannot be published",
        "LicenceRegistryNotSignerOrGovernor": lambda: (
            f"{a.get('caller')} may not change agency {a.get('agencyId')}: only the agency's "
            "current key or the governor may"
        ),
        "LicenceRegistryAlreadyAnchored": lambda: f"batch {batch} is already anchored",
        "LicenceRegistryNotAnchored": lambda: f"batch {batch} is not anchored in this registry",
        "LicenceRegistryNotBatchIssuer": lambda: (
            f"batch {batch} was anchored by another agency: only that agency or the governor "
            "may change its licences"
        ),
        "LicenceRegistryInvalidTransition": lambda: (
            f"{licence(a.get('leaf'))} is {status(a.get('from'))} and cannot become "
            f"{status(a.get('to'))}"
        ),
        "LicenceRegistryInvalidAnchor": lambda: f"batch {batch} cannot be anchored as given",
        "LicenceRegistryBatchAlreadyRevoked": lambda: f"batch {batch} is already revoked",
        "LicenceRegistryUnknownSigner": lambda: (
            f"{a.get('signer')} is not, and never was, the signing key of an agency"
        ),
        "LicenceRegistrySignerCompromised": lambda: (
            f"the key {a.get('signer')} was reported compromised: it can no longer sign; "
            "the governor gives the agency a new key with `elicence agency rotate`"
        ),
        "LicenceRegistryInvalidCompromiseBlock": lambda: (
            f"block {a.get('fromBlock')} is in the future (the chain is at block "
            f"{a.get('currentBlock')}): give the block from which the key was no longer safe"
        ),
        "LicenceRegistrySignerAlreadyCompromised": lambda: (
            f"the key {a.get('signer')} is already reported compromised from block "
            f"{a.get('fromBlock')}: a new report can only name an earlier block"
        ),
    }
    make = sentences.get(exc.error_name)
    return make() if make is not None else f"the registry refused: {exc}"


@contextmanager
def reported(names: Mapping[bytes, str] | None = None) -> Iterator[None]:
    """Turn the library's errors into one line and an exit code."""
    from issuer.status import StatusRefused

    try:
        yield
    except StatusRefused as exc:
        fail(explain_rejection(exc.rejection, exc.numbers), EXIT_REFUSED)
    except LicenceValidationError as exc:
        print_problems(exc)
        raise typer.Exit(EXIT_REFUSED) from None
    except RegistryRejected as exc:
        fail(explain_rejection(exc, names), EXIT_REFUSED)
    except ChainUnreachable as exc:
        fail(
            f"cannot reach the chain: {exc} (is `elicence ledger serve` running?)",
            EXIT_UNREACHABLE,
        )
    except InsufficientFunds as exc:
        fail(
            f"the key has no funds to pay for this transaction on this chain ({exc}): "
            "ask the chain's operator to fund it",
            EXIT_REFUSED,
        )
    except LedgerError as exc:
        fail(str(exc), EXIT_UNUSABLE if isinstance(exc, ValueError | LookupError) else 1)
    except KeystoreError as exc:
        fail(str(exc), EXIT_UNUSABLE)
    except (IssuerError, LicenceFormatError) as exc:
        code = EXIT_UNUSABLE if isinstance(exc, ValueError | LookupError | KeyError) else 1
        fail(str(exc), code)


def print_problems(exc: LicenceValidationError, limit: int = 200) -> None:
    """Every bad row, one line each: row, field, value, reason."""
    problems = exc.problems
    rows = {p.row for p in problems}
    errors.print(
        f"[bold red]error:[/] {len(rows)} row(s) are not valid licences; nothing was issued "
        "(fix them, or pass --skip-invalid to issue the others):",
        highlight=False,
        soft_wrap=True,
    )
    for problem in problems[:limit]:
        errors.print(f"  {problem}", highlight=False, soft_wrap=True, markup=False)
    if len(problems) > limit:
        errors.print(f"  … and {len(problems) - limit} more", highlight=False)


@dataclass(frozen=True)
class Column:
    """A column of a listing; `typed` when users type or copy its values (ids, numbers,
    names), which are then never cut."""

    name: str
    typed: bool = False


_CELL_ROOM = 10  # the narrowest a wrapped column may become before a list reads better


def print_table(
    title: str | None, columns: Sequence[Column], rows: Sequence[Sequence[str]]
) -> None:
    """Rows for a person or a program, complete either way.

    Into a pipe or a file: a header line and one line per row, tab-separated, nothing
    cut. On a terminal: a table whose typed columns keep their whole values (the others
    wrap), or, when those alone are wider than the terminal, one block per row.
    """
    if not console.is_terminal:
        print("\t".join(column.name for column in columns))
        for row in rows:
            print("\t".join(" ".join(cell.split()) for cell in row))
        return
    widths = [
        max([cell_len(column.name), *(cell_len(row[i]) for row in rows)])
        for i, column in enumerate(columns)
    ]
    # A boxed table spends three cells per column (border and padding) and one more.
    needed = 1 + sum(
        3 + (width if column.typed else min(width, _CELL_ROOM))
        for column, width in zip(columns, widths, strict=True)
    )
    if needed <= console.width:
        table = Table(title=title)
        for column, width in zip(columns, widths, strict=True):
            if column.typed:
                table.add_column(column.name, no_wrap=True, min_width=width, overflow="fold")
            else:
                table.add_column(column.name, overflow="fold")
        for row in rows:
            table.add_row(*row)
        console.print(table, highlight=False, markup=False)
        return
    _print_blocks(title, columns, rows)


def _print_blocks(
    title: str | None, columns: Sequence[Column], rows: Sequence[Sequence[str]]
) -> None:
    if title:
        console.print(title, style="bold", highlight=False, markup=False)
    label = max(cell_len(column.name) for column in columns[1:]) if len(columns) > 1 else 0
    for row in rows:
        console.print()
        console.print(row[0], style="bold", highlight=False, markup=False, soft_wrap=True)
        for column, cell in zip(columns[1:], row[1:], strict=True):
            if cell:
                pad = " " * (label - cell_len(column.name))
                console.print(
                    f"  {column.name}{pad}  {cell}", highlight=False, markup=False, soft_wrap=True
                )


_MARKUP = re.compile(r"\[(?:bold|dim|/bold|/dim|/)\]")


class PlainHelp(TyperGroup):
    """The root group: every command's help in click's plain layout, which rewraps each
    paragraph to the terminal and cuts no option name (the rich panels of typer cut names
    and defaults at 80 columns and broke lines where the docstrings did)."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        _plain_help(self)


def _plain_help(command: Any) -> None:
    # Typer's own copy of click's classes, reached through the objects it built.
    command.rich_markup_mode = None
    if command.help:
        command.help = _MARKUP.sub("", command.help)
        if not command.short_help:  # click would cut it at 45 characters in lists
            command.short_help = " ".join(command.help.split("\n\n")[0].split())
    for param in command.params:
        if getattr(param, "help", None):
            param.help = _MARKUP.sub("", param.help)
    for sub in getattr(command, "commands", {}).values():
        _plain_help(sub)
