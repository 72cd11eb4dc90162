"""The `elicence` command: a thin layer over the library.

Domain errors become one-line messages and exit codes here and nowhere else:
0 the licence is VALID (or the command succeeded), 1 any other verdict,
2 unusable input (unreadable file, malformed document, bad option),
3 could not check (the chain could not be read).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, NoReturn

import typer
from rich.console import Console
from rich.table import Table

from issuer import cli as issuer_cli
from issuer.catalogue import catalogue
from issuer.cli_support import EXIT_OK, EXIT_REFUSED, EXIT_UNREACHABLE, EXIT_UNUSABLE, fail
from issuer.document import LicenceDocument
from issuer.errors import IssuerError
from issuer.qr import load_any
from ledger import cli as ledger_cli
from ledger.config import CONFIG_FILE, ConfigError, HomeConfig, default_home
from ledger.errors import ChainUnreachable, LedgerError, RegistryNotFound
from verifier.errors import CouldNotCheck
from verifier.service import cli as service_cli

# The codes every elicence command uses (issuer.cli_support): 1 is "not VALID" here.
EXIT_VALID, EXIT_NOT_VALID = EXIT_OK, EXIT_REFUSED
EXIT_COULD_NOT_CHECK = EXIT_UNREACHABLE

app = typer.Typer(
    name="elicence",
    help="Blockchain-anchored electronic licences (电子证照): issue, anchor and verify.",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode="rich",
)
console = Console()
errors = Console(stderr=True)


def read_document(file: str) -> LicenceDocument:
    """A document, presentation, EL1: payload or QR image from a path or '-' (standard
    input); exits 2 when unusable."""
    try:
        data = sys.stdin.buffer.read() if file == "-" else Path(file).read_bytes()
    except OSError as exc:
        fail(f"cannot read {file}: {exc.strerror}", EXIT_UNUSABLE)
    try:
        return load_any(data)
    except IssuerError as exc:
        fail(f"{file} is not a usable licence document: {exc}", EXIT_UNUSABLE)


@app.command()
def verify(
    file: Annotated[
        str,
        typer.Argument(
            help="Licence document or presentation (JSON), an EL1: payload, a PNG/JPEG "
            "QR image, or - for standard input."
        ),
    ],
    *,
    chain: Annotated[
        str | None,
        typer.Option(
            help="JSON-RPC URL of the chain the registry is on (default: the home's "
            "configuration, else http://127.0.0.1:8545).",
            envvar="ELICENCE_CHAIN",
        ),
    ] = None,
    registry: Annotated[
        str | None,
        typer.Option(
            help="Address of the registry you trust (default: the home's configuration). "
            "Required: the registry a document names is never trusted.",
            envvar="ELICENCE_REGISTRY",
        ),
    ] = None,
    chain_id: Annotated[
        int | None,
        typer.Option(
            help="Chain id of the registry you trust (default: the home's configuration, "
            "else the id the --chain node serves).",
            envvar="ELICENCE_CHAIN_ID",
        ),
    ] = None,
    home: Annotated[
        Path | None,
        typer.Option(help="Home folder whose configuration names the chain and registry."),
    ] = None,
    verifier: Annotated[
        str | None,
        typer.Option(
            help="Ask this verifier service (its base URL) instead of reading the chain.",
            envvar="ELICENCE_VERIFIER",
        ),
    ] = None,
    api_key: Annotated[
        str | None,
        typer.Option(help="API key for --verifier.", envvar="ELICENCE_API_KEY"),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the verdict as JSON.")] = False,
) -> None:
    """Verify a licence document against the registry and print the verdict.

    The registry and chain trusted come from --registry and --chain-id, else
    ELICENCE_REGISTRY and ELICENCE_CHAIN_ID, else the home's config.json; never from the
    document. A document naming another registry or chain is refused (exit 2).

    Exit status: 0 VALID, 1 any other verdict, 2 unusable input (or no trusted
    registry, or a document naming another one), 3 could not check.

    Example: [bold]elicence verify 330106000000000001.json --chain http://127.0.0.1:8545
    --registry 0x…[/] (without them, the home's configuration is used), or
    [bold]elicence verify qr.png --verifier http://127.0.0.1:8000[/].
    """
    if verifier is not None:
        _verify_with_service(file, verifier, api_key, as_json)
    from ledger.chain import connect
    from ledger.registry import Registry
    from verifier.chain_source import RegistrySource
    from verifier.checks import verify as verify_document
    from verifier.render import print_verdict

    document = read_document(file)
    folder = home or default_home()
    try:
        config = HomeConfig.load(folder).resolve(chain, registry, chain_id=chain_id)
    except ConfigError as exc:
        fail(str(exc), EXIT_UNUSABLE)
    trusted = _trusted_registry(config.registry, folder)
    if config.chain_id is not None:
        _refuse_foreign(document, trusted, config.chain_id)
    try:
        ledger = connect(config.chain_url)
        if config.chain_id is not None and ledger.chain_id != config.chain_id:
            fail(
                f"{config.chain_url} serves chain {ledger.chain_id}, but the trusted registry "
                f"{trusted} is on chain {config.chain_id}: check --chain and --chain-id",
                EXIT_UNUSABLE,
            )
        _refuse_foreign(document, trusted, ledger.chain_id)
        source = RegistrySource(Registry.at(ledger, trusted))
        verdict = verify_document(document, source)
    except (ChainUnreachable, CouldNotCheck) as exc:
        fail(f"could not check: {exc}", EXIT_COULD_NOT_CHECK)
    except RegistryNotFound as exc:
        fail(str(exc), EXIT_UNUSABLE)
    except LedgerError as exc:
        fail(f"could not check: {exc}", EXIT_COULD_NOT_CHECK)
    if as_json:
        console.print_json(json.dumps(verdict.to_json(), ensure_ascii=False))
    else:
        print_verdict(console, verdict)
    raise typer.Exit(EXIT_VALID if verdict.is_valid else EXIT_NOT_VALID)


def _trusted_registry(address: str | None, home: Path) -> str:
    """The configured registry, checksummed; exits 2 when there is none (the document's
    own registry proves only that someone anchored it there, which anyone can do)."""
    from web3 import Web3

    if not address:
        fail(
            "no trusted registry configured, and the registry a document names is never "
            "trusted: pass --registry ADDRESS (and --chain-id), or set ELICENCE_REGISTRY "
            f"(and ELICENCE_CHAIN_ID), or name them in {home / CONFIG_FILE} "
            "(`elicence registry deploy` and `elicence agency new --registry` write it)",
            EXIT_UNUSABLE,
        )
    if not Web3.is_address(address):
        fail(f"the trusted registry {address!r} is not an address", EXIT_UNUSABLE)
    return str(Web3.to_checksum_address(address))


def _refuse_foreign(document: LicenceDocument, registry: str, chain_id: int) -> None:
    """Exits 2 when the document names another registry or chain than the trusted one."""
    named = document.anchor
    if named.chain_id == chain_id and named.registry.lower() == registry.lower():
        return
    fail(
        f"this licence names registry {named.registry} on chain {named.chain_id}, but the "
        f"trusted registry is {registry} on chain {chain_id}; it was not issued under the "
        "registry you trust",
        EXIT_UNUSABLE,
    )


def _verify_with_service(file: str, url: str, api_key: str | None, as_json: bool) -> NoReturn:
    from verifier.remote import VerifierRefused, verify_remotely
    from verifier.render import print_verdict_json

    try:
        data = sys.stdin.buffer.read() if file == "-" else Path(file).read_bytes()
    except OSError as exc:
        fail(f"cannot read {file}: {exc.strerror}", EXIT_UNUSABLE)
    try:
        body = verify_remotely(url, data, api_key)
    except VerifierRefused as exc:
        fail(str(exc), EXIT_UNUSABLE)
    except CouldNotCheck as exc:
        fail(str(exc), EXIT_COULD_NOT_CHECK)
    if as_json:
        console.print_json(json.dumps(body, ensure_ascii=False))
    else:
        print_verdict_json(console, body)
    raise typer.Exit(EXIT_VALID if body.get("status") == "VALID" else EXIT_NOT_VALID)


@app.command()
def demo(
    out: Annotated[
        Path, typer.Option(help="Folder for the demo documents.", file_okay=False)
    ] = Path("var/demo"),
    count: Annotated[int, typer.Option(min=3, max=1000, help="Licences in the demo batch.")] = 5,
) -> None:
    """Run the whole story on an embedded chain: deploy, authorise, issue, revoke, verify.

    Example: [bold]elicence demo --out var/demo[/]
    """
    from verifier.demo import run_demo
    from verifier.render import print_verdict

    with console.status("deploying the registry, issuing and anchoring a demo batch…"):
        result = run_demo(out, count)
    batch = result.batch
    console.print(
        f"Registry [bold]{result.registry}[/] on the embedded chain {result.chain_id}\n"
        f"Issued {len(batch.documents)} 营业执照 in one anchoring transaction "
        f"{batch.tx_hash} (block {batch.block_number}), root 0x{batch.root.hex()}"
    )
    for label, path, verdict in result.verdicts:
        print_verdict(console, verdict, title=f"{label}: {path}")
    console.print(
        f"Demo documents: [bold]{out.resolve()}[/] (manifest {batch.manifest.name}).\n"
        "[dim]The embedded chain lived in this process only; the documents name a registry "
        "that is gone now.[/]"
    )


@app.command("catalogue")
def show_catalogue() -> None:
    """List the licence types and their fields (* required, P personal data).

    Example: [bold]elicence catalogue[/]
    """
    for licence_type in catalogue():
        table = Table(
            title=f"{licence_type.name.zh} · {licence_type.id} (code {licence_type.code})"
        )
        for column in ("field", "标签", "label", "kind", ""):
            table.add_column(column)
        for spec in licence_type.fields:
            flags = ("*" if spec.required else "") + (" P" if spec.personal else "")
            table.add_row(spec.name, spec.label.zh, spec.label.en, spec.kind.value, flags)
        console.print(table)


issuer_cli.register(app)
ledger_cli.register(app)
service_cli.register(app)


def main() -> None:
    """Entry point of the console script (every elicence process starts here, the node,
    the service's workers and the issuing workers included)."""
    from ledger.private import restrict_umask

    # Documents, QR images, keystores, audit and index hold secrets or personal data.
    restrict_umask()
    app()
