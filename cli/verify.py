"""`elicence verify`, `elicence demo` and `elicence catalogue`: the verifier's commands,
over verifier.trust, verifier.remote and verifier.demo."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, NoReturn

import typer
from rich.table import Table

from cli.support import (
    EXIT_OK,
    EXIT_REFUSED,
    EXIT_UNREACHABLE,
    EXIT_UNUSABLE,
    console,
    fail,
    read_input,
)
from ledger.config import ConfigError, HomeConfig, default_home
from ledger.errors import ChainUnreachable, LedgerError, RegistryNotFound
from licence.catalogue import catalogue
from licence.document import LicenceDocument
from licence.errors import LicenceFormatError
from verifier.errors import CouldNotCheck, UntrustedRegistry
from verifier.images import load_any

# 1 is "not VALID" for verify, 3 "could not check" (the codes of cli.support).
EXIT_VALID, EXIT_NOT_VALID = EXIT_OK, EXIT_REFUSED
EXIT_COULD_NOT_CHECK = EXIT_UNREACHABLE


def read_document(file: str) -> LicenceDocument:
    """A document, presentation, EL1: payload or QR image from a path or '-' (standard
    input); exits 2 when unusable."""
    data = read_input(file)
    try:
        return load_any(data)
    except LicenceFormatError as exc:
        fail(f"{file} is not a usable licence document: {exc}", EXIT_UNUSABLE)


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
    from verifier.render import print_verdict
    from verifier.trust import verify_trusted

    document = read_document(file)
    folder = home or default_home()
    try:
        config = HomeConfig.read(folder, chain, registry, chain_id=chain_id)
    except ConfigError as exc:
        fail(str(exc), EXIT_UNUSABLE)
    try:
        verdict = verify_trusted(document, config, folder)
    except UntrustedRegistry as exc:
        fail(str(exc), EXIT_UNUSABLE)
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


def _verify_with_service(file: str, url: str, api_key: str | None, as_json: bool) -> NoReturn:
    from verifier.remote import VerifierRefused, verify_remotely
    from verifier.render import print_verdict_json

    data = read_input(file)
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
