"""`elicence verify` and `elicence demo`: the verifier's commands, over verifier.trust,
verifier.remote and verifier.demo."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer

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
from licence.document import LicenceDocument
from licence.errors import LicenceFormatError, PayloadError, UnsupportedHashSuite
from verifier.errors import CouldNotCheck, TypeUnavailable, UntrustedRegistry
from verifier.images import load_any
from verifier.type_loading import TypeLoader, parse_loading

if TYPE_CHECKING:
    from verifier.trust_snapshot import TrustSnapshot

# 1 is "not VALID" for verify, 3 "could not check" (the codes of cli.support).
EXIT_VALID, EXIT_NOT_VALID = EXIT_OK, EXIT_REFUSED
EXIT_COULD_NOT_CHECK = EXIT_UNREACHABLE


def read_document(
    file: str,
    types: Callable[[], TypeLoader] | None = None,
    deployment: Callable[[], tuple[int, str]] | None = None,
) -> LicenceDocument:
    """A document, presentation, EL2:/EL1: payload or QR image from a path or '-' (standard
    input); exits 2 when unusable, 3 (could not check) for a hash suite this
    installation cannot compute or a licence type version it cannot load (from `types`,
    made only when the catalogue lacks the version): the licence may be genuine."""
    data = read_input(file)

    def load() -> LicenceDocument:
        try:
            return load_any(data)
        except PayloadError as exc:
            if exc.reason != "deployment" or deployment is None:
                raise
        # An EL2: payload names no chain or registry: it is read with the trusted ones.
        chain_id, registry = deployment()
        return load_any(data, chain_id=chain_id, registry=registry)

    try:
        if types is None:
            return load()
        return parse_loading(load, types)
    except TypeUnavailable as exc:
        fail(f"could not check {file}: {exc}", EXIT_COULD_NOT_CHECK)
    except (ChainUnreachable, CouldNotCheck) as exc:
        fail(f"could not check {file}: {exc}", EXIT_COULD_NOT_CHECK)
    except LicenceFormatError as exc:
        if isinstance(exc, UnsupportedHashSuite) or (
            isinstance(exc, PayloadError) and exc.reason == UnsupportedHashSuite.code
        ):
            fail(
                f"could not check {file}: {exc}; the licence may be genuine: verify it "
                "where that suite is supported",
                EXIT_COULD_NOT_CHECK,
            )
        fail(f"{file} is not a usable licence document: {exc}", EXIT_UNUSABLE)


def verify(
    file: Annotated[
        str,
        typer.Argument(
            help="Licence document or presentation (JSON), an EL2:/EL1: payload, a PNG/JPEG "
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
    snapshot: Annotated[
        Path | None,
        typer.Option(
            help="Verify offline against this trust snapshot (`elicence snapshot export`) "
            "instead of the chain.",
            dir_okay=False,
            envvar="ELICENCE_SNAPSHOT",
        ),
    ] = None,
    governor: Annotated[
        list[str] | None,
        typer.Option(
            help="With --snapshot: the governor address whose signature you trust "
            "(repeatable; default ELICENCE_GOVERNOR, else the home's governor key).",
            show_default=False,
        ),
    ] = None,
    governor_seal_key: Annotated[
        str | None,
        typer.Option(
            help="With --snapshot: the governor's SM2 public key (128 hex) whose "
            "co-signature the snapshot must carry (default ELICENCE_GOVERNOR_SEAL_KEY, "
            'else "governorSealKey" in the home\'s config.json; none: not checked).',
            show_default=False,
        ),
    ] = None,
    max_age: Annotated[
        str,
        typer.Option(
            help="With --snapshot: report a snapshot older than this (7d, 36h, 90m) as stale.",
            envvar="ELICENCE_SNAPSHOT_MAX_AGE",
        ),
    ] = "7d",
    catalogue_dir: Annotated[
        Path | None,
        typer.Option(
            "--catalogue",
            help="A folder of licence type definitions to load a type version this "
            "installation lacks from (checked against the registry's hash); default: "
            "the registry's own copy.",
            file_okay=False,
            envvar="ELICENCE_CATALOGUE",
            show_default=False,
        ),
    ] = None,
    catalogue_url: Annotated[
        str | None,
        typer.Option(
            help="A URL template ({code}, {version}, {id}) to load a type version from "
            "instead: https, or http://127.0.0.1; checked against the registry's hash.",
            envvar="ELICENCE_CATALOGUE_URL",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Verify a licence document against the registry and print the verdict.

    The registry and chain trusted come from --registry and --chain-id, else
    ELICENCE_REGISTRY and ELICENCE_CHAIN_ID, else the home's config.json; never from the
    document. A document naming another registry or chain is refused (exit 2).

    With --snapshot the chain is not read: the verdict is as of the snapshot's block,
    and says so; the snapshot must be signed by a governor you trust (--governor). A
    snapshot older than --max-age is reported as stale, and a VALID verdict from it
    exits 4, never 0.

    A licence of a type version this installation lacks is checked with the definition
    the registry published (or a copy from --catalogue / --catalogue-url, refused unless
    its hash is the registry's); one it cannot load could not be checked (exit 3).

    Exit status: 0 VALID, 1 any other verdict, 2 unusable input (or no trusted
    registry, or a document naming another one, or a snapshot refused), 3 could not
    check, 4 VALID as of a stale snapshot.

    Example: [bold]elicence verify 330106000000000001.json --chain http://127.0.0.1:8545
    --registry 0x…[/] (without them, the home's configuration is used), or
    [bold]elicence verify qr.png --verifier http://127.0.0.1:8000[/].
    """
    if verifier is not None:
        _verify_with_service(file, verifier, api_key, as_json)
    from verifier.render import print_verdict
    from verifier.trust import verify_trusted

    folder = home or default_home()

    def types() -> TypeLoader:
        # Only for a type version this installation lacks: the trusted registry's record.
        from ledger.chain import connect
        from ledger.registry import Registry
        from verifier.trust import trusted_registry

        try:
            config = HomeConfig.read(folder, chain, registry, chain_id=chain_id)
            trusted = trusted_registry(config.registry, folder)
            records = Registry.at(connect(config.chain_url), trusted)
            return TypeLoader([records], folder=catalogue_dir, url=catalogue_url)
        except (ConfigError, UntrustedRegistry, RegistryNotFound, ValueError) as exc:
            fail(str(exc), EXIT_UNUSABLE)

    if snapshot is not None:
        try:
            config = HomeConfig.read(folder, chain, registry, chain_id=chain_id)
        except ConfigError as exc:
            fail(str(exc), EXIT_UNUSABLE)
        # Loaded before the document: a type version this installation lacks is read
        # from the snapshot (checked there against the registry's hash), not the chain.
        loaded = _trusted_snapshot(
            config, folder, snapshot, governors=governor, seal_key=governor_seal_key
        )
        offline = read_document(
            file,
            lambda: TypeLoader([loaded], folder=catalogue_dir),
            lambda: (loaded.chain_id, loaded.registry_address),
        )
        _verify_with_snapshot(offline, loaded, max_age=max_age, as_json=as_json)
    deployment = _trusted_deployment(
        folder, (chain, registry, chain_id), from_snapshot=False, file=file
    )
    document = read_document(file, types, deployment)
    try:
        config = HomeConfig.read(folder, chain, registry, chain_id=chain_id)
    except ConfigError as exc:
        fail(str(exc), EXIT_UNUSABLE)
    try:
        verdict = verify_trusted(document, config, folder)
    except UntrustedRegistry as exc:
        fail(str(exc), EXIT_UNUSABLE)
    except (ChainUnreachable, CouldNotCheck, TypeUnavailable) as exc:
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


def _trusted_deployment(
    home: Path,
    given: tuple[str | None, str | None, int | None],
    *,
    from_snapshot: bool,
    file: str,
) -> Callable[[], tuple[int, str]]:
    """The trusted chain id and registry, found only when an EL2: payload needs them
    (it names neither): from the configuration, else the chain's own id."""

    def deployment() -> tuple[int, str]:
        from ledger.chain import connect
        from verifier.trust import trusted_registry

        chain, registry, chain_id = given
        try:
            config = HomeConfig.read(home, chain, registry, chain_id=chain_id)
            trusted = trusted_registry(config.registry, home)
        except (ConfigError, UntrustedRegistry) as exc:
            fail(str(exc), EXIT_UNUSABLE)
        if config.chain_id is not None:
            return config.chain_id, trusted
        if from_snapshot:
            fail(
                "an EL2: payload is read with the trusted chain's id: pass --chain-id (or "
                "set ELICENCE_CHAIN_ID) to verify it from a snapshot",
                EXIT_UNUSABLE,
            )
        try:
            return connect(config.chain_url).chain_id, trusted
        except LedgerError as exc:
            fail(f"could not check {file}: {exc}", EXIT_COULD_NOT_CHECK)

    return deployment


EXIT_STALE = 4  # VALID, but as of a snapshot older than --max-age


def _trusted_snapshot(
    config: HomeConfig,
    home: Path,
    path: Path,
    *,
    governors: list[str] | None,
    seal_key: str | None,
) -> TrustSnapshot:
    """The trust snapshot at `path`, signed by a governor trusted here; exits 2 when it
    is refused."""
    import os

    from ledger.config import governor_of
    from verifier.trust import trusted_registry
    from verifier.trust_snapshot import SnapshotRefused, load_snapshot, pinned_seal_key

    trusted = list(governors or [])
    if not trusted:
        named = os.environ.get("ELICENCE_GOVERNOR", "")
        trusted = [a for a in named.replace(",", " ").split() if a]
    if not trusted and (own := governor_of(home)) is not None:
        trusted = [own]
    if not trusted:
        fail(
            "no trusted governor for the snapshot: pass --governor 0x… (or set "
            "ELICENCE_GOVERNOR), the address of the registry's governor",
            EXIT_UNUSABLE,
        )
    try:
        registry = trusted_registry(config.registry, home)
        return load_snapshot(
            path,
            governors=trusted,
            registry=registry,
            chain_id=config.chain_id,
            governor_seal_key=pinned_seal_key(home, seal_key),
        )
    except (SnapshotRefused, UntrustedRegistry) as exc:
        fail(str(exc), EXIT_UNUSABLE)
    except ValueError as exc:  # a --governor that is no address
        fail(f"--governor: {exc}", EXIT_UNUSABLE)


def _verify_with_snapshot(
    document: LicenceDocument,
    loaded: TrustSnapshot,
    *,
    max_age: str,
    as_json: bool,
) -> NoReturn:
    """The verdict from a trust snapshot, with the same checks as from the chain."""
    from cli.snapshot import parse_age
    from verifier.checks import CHINA
    from verifier.checks import verify as check
    from verifier.render import print_verdict
    from verifier.trust import refuse_foreign

    limit = parse_age(max_age)
    try:
        refuse_foreign(document, loaded.registry_address, loaded.chain_id)
    except UntrustedRegistry as exc:
        fail(str(exc), EXIT_UNUSABLE)
    try:
        verdict = check(document, loaded)
    except TypeUnavailable as exc:
        fail(f"could not check: {exc}", EXIT_COULD_NOT_CHECK)
    age = loaded.age()
    stale = age > limit
    when = loaded.block_time.astimezone(CHINA).isoformat(timespec="seconds")
    if as_json:
        body = verdict.to_json()
        body["snapshot"] = {
            "blockNumber": loaded.block_number(),
            "blockTime": when,
            "ageSeconds": int(age.total_seconds()),
            "stale": stale,
            "governor": loaded.governor,
        }
        console.print_json(json.dumps(body, ensure_ascii=False))
    else:
        print_verdict(console, verdict)
        console.print(
            f"as of block {loaded.block_number()}, {when} (trust snapshot signed by governor "
            f"{loaded.governor}); nothing after it is known",
            highlight=False,
        )
        if stale:
            console.print(
                f"[bold yellow]stale snapshot:[/] it is {_days(age)} old, older than "
                f"--max-age {max_age}: a status changed since is not shown; export a new one",
                highlight=False,
            )
    if not verdict.is_valid:
        raise typer.Exit(EXIT_NOT_VALID)
    raise typer.Exit(EXIT_STALE if stale else EXIT_VALID)


def _days(age: dt.timedelta) -> str:
    hours = age.total_seconds() / 3600
    return f"{hours / 24:.1f} days" if hours >= 48 else f"{hours:.1f} hours"


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
