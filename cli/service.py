"""`elicence serve`, `elicence apikey ...` and `elicence audit`: the verifier service's
commands, over verifier.service (launch, apikeys, audit)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, NoReturn

import typer
from rich.table import Table

from cli.support import EXIT_UNUSABLE, console, errors, fail, home_of, split_names

apikey_app = typer.Typer(help="API keys of approval systems.", no_args_is_help=True)

HomeOption = Annotated[
    Path | None,
    typer.Option(help="Home folder (default ELICENCE_HOME or ~/.elicence).", file_okay=False),
]


def _fail(message: str) -> NoReturn:
    fail(message, EXIT_UNUSABLE)


def serve(
    *,
    home: HomeOption = None,
    chain: Annotated[
        str | None,
        typer.Option(
            help="JSON-RPC URL of the chain. Without it the home's chain is used, and the "
            "embedded node is started alongside when nothing answers there.",
            envvar="ELICENCE_CHAIN",
        ),
    ] = None,
    registry: Annotated[
        str | None,
        typer.Option(
            help="The registry to trust (default: the home's).", envvar="ELICENCE_REGISTRY"
        ),
    ] = None,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.", min=1, max=65535)] = 8000,
    demo: Annotated[
        bool,
        typer.Option(
            "--demo/--no-demo",
            help="On first start (no registry yet), deploy a registry, a demo agency and "
            "demo licences (HOME/demo).",
        ),
    ] = False,
    log_level: Annotated[str, typer.Option(help="debug, info, warning or error.")] = "info",
    workers: Annotated[
        int,
        typer.Option(
            help="Worker processes: about one core each (rate limits count per worker).",
            min=1,
            max=64,
            envvar="ELICENCE_WORKERS",
        ),
    ] = 1,
) -> None:
    """Run the verify API (FastAPI on uvicorn): /v1/verifications, /docs, /metrics.

    Example: [bold]elicence serve --home var/home --port 8000 --demo[/]
    """
    from ledger.chain import connect
    from ledger.config import HomeConfig
    from ledger.errors import LedgerError
    from verifier.service.demo import is_set_up, set_up_demo
    from verifier.service.errors import CannotServe
    from verifier.service.launch import EmbeddedNode, chain_of_home, log_to_stderr, run_service
    from verifier.service.settings import Settings

    home_dir = home_of(home)
    try:
        config = chain_of_home(home_dir, chain, registry)
        # The demo's fresh keys deploy and need gas: only a node in dev mode gives both to
        # anyone, so the node starts in dev mode for the demo's set-up alone.
        demo_node = chain is None and demo and not is_set_up(home_dir)
        with EmbeddedNode(home_dir, config.chain_url) as node:
            if chain is None and node.ensure(dev=demo_node):
                _node_started(node.url, home_dir)
            if demo and not is_set_up(home_dir):
                with console.status("first start: deploying the registry and demo licences…"):
                    made = set_up_demo(home_dir, connect(config.chain_url))
                console.print(
                    f"Demo registry [bold]{made.registry}[/]; demo licences in {made.folder} "
                    f"(QR payloads in {made.folder / 'qr'}, one revoked: {made.revoked.name})",
                    highlight=False,
                )
                config = HomeConfig.read(home_dir, chain, registry)
            if demo_node and node.process is not None:
                node.stop()
                if node.ensure():
                    _node_started(node.url, home_dir)
            if config.registry is None:
                _fail(
                    "no registry configured: run `elicence registry deploy`, pass --registry, "
                    "or start with --demo"
                )
            settings = Settings(home=home_dir, chain=config.chain_url, registry=config.registry)
            log_to_stderr(log_level)
            console.print(
                f"elicence verify API on [bold]http://{host}:{port}[/] (docs: /docs), chain "
                f"{config.chain_url}, registry {config.registry}"
                + (f", {workers} workers" if workers > 1 else ""),
                highlight=False,
            )
            run_service(settings, host=host, port=port, workers=workers, log_level=log_level)
    except (LedgerError, CannotServe) as exc:
        _fail(str(exc))


def _node_started(url: str, home: Path) -> None:
    console.print(f"embedded chain node on {url} (data in {home / 'chain'})")


@apikey_app.command("create")
def apikey_create(
    name: Annotated[str, typer.Option(help="The approval system's name (recorded in the audit).")],
    types: Annotated[
        list[str] | None,
        typer.Option(help="Licence types it may verify, comma-separated (default: all)."),
    ] = None,
    fields: Annotated[
        list[str] | None,
        typer.Option(help="Fields it may see, comma-separated (default: all disclosed)."),
    ] = None,
    rate: Annotated[
        float | None, typer.Option(help="Requests per second (default: the service's).")
    ] = None,
    home: HomeOption = None,
) -> None:
    """Create an API key; it is shown once and stored only as a hash.

    Example: [bold]elicence apikey create --name shaoxing-approvals --types business-licence
    --fields licenceNumber,holderName,unifiedSocialCreditCode[/]
    """
    from verifier.service.apikeys import ApiKeyStore
    from verifier.service.errors import InvalidRequest, ServiceError
    from verifier.service.settings import Settings

    store = ApiKeyStore(Settings(home=home_of(home)).service_dir / "apikeys.sqlite")
    try:
        record, key = store.create(
            name, types=split_names(types), fields=split_names(fields), rate=rate
        )
    except InvalidRequest as exc:
        _fail("; ".join(f"--{e.path}: {e.message}" for e in exc.errors))
    except ServiceError as exc:
        _fail(str(exc))
    finally:
        store.close()
    errors.print(f"API key for [bold]{record.name}[/] (shown once; store it now):", highlight=False)
    print(key)


@apikey_app.command("list")
def apikey_list(home: HomeOption = None) -> None:
    """List the API keys (names, limits, state; never the keys).

    Example: [bold]elicence apikey list[/]
    """
    from verifier.service.apikeys import ApiKeyStore
    from verifier.service.settings import Settings

    store = ApiKeyStore(Settings(home=home_of(home)).service_dir / "apikeys.sqlite")
    try:
        keys = store.list()
    finally:
        store.close()
    table = Table()
    for column in ("name", "key starts", "types", "fields", "rate/s", "created", "revoked"):
        table.add_column(column)
    for k in keys:
        table.add_row(
            k.name,
            k.hint + "…",
            ",".join(sorted(k.types)) if k.types is not None else "all",
            ",".join(sorted(k.fields)) if k.fields is not None else "all",
            f"{k.rate:g}" if k.rate is not None else "default",
            k.created,
            k.revoked or "",
        )
    console.print(table)


@apikey_app.command("revoke")
def apikey_revoke(
    name: Annotated[str, typer.Argument(help="The key's name.")], home: HomeOption = None
) -> None:
    """Revoke an API key: the running service refuses it from its next request.

    Example: [bold]elicence apikey revoke shaoxing-approvals[/]
    """
    from verifier.service.apikeys import ApiKeyStore
    from verifier.service.errors import ServiceError
    from verifier.service.settings import Settings

    store = ApiKeyStore(Settings(home=home_of(home)).service_dir / "apikeys.sqlite")
    try:
        record = store.revoke(name)
    except ServiceError as exc:
        _fail(str(exc))
    finally:
        store.close()
    console.print(f"revoked {record.name} at {record.revoked}", highlight=False)


def audit(
    *,
    licence: Annotated[str | None, typer.Option(help="A licence id (0x + 32 hex digits).")] = None,
    client: Annotated[str | None, typer.Option(help="An API key's name, or anonymous.")] = None,
    since: Annotated[
        str | None, typer.Option(help="From this ISO date or time (China time unless a zone).")
    ] = None,
    output: Annotated[str, typer.Option("--format", help="table, csv or jsonl.")] = "table",
    limit: Annotated[int | None, typer.Option(help="At most this many rows.", min=1)] = None,
    home: HomeOption = None,
) -> None:
    """List or export the audit log: who verified which licence, when, why, with what verdict.

    Example: [bold]elicence audit --client shaoxing-approvals --since 2026-12-01 --format csv[/]
    """
    from verifier.service.audit import AuditLog, normalise_since, to_csv, to_jsonl
    from verifier.service.errors import InvalidRequest
    from verifier.service.settings import Settings

    if output not in {"table", "csv", "jsonl"}:
        _fail(f"--format {output}: use table, csv or jsonl")
    try:
        since_utc = normalise_since(since) if since else None
    except InvalidRequest as exc:
        _fail("; ".join(f"--{e.path}: {e.message}" for e in exc.errors))
    log = AuditLog(Settings(home=home_of(home)).service_dir / "audit.sqlite")
    try:
        records = log.query(licence_id=licence, client=client, since=since_utc, limit=limit)
    finally:
        log.close()
    if output == "csv":
        sys.stdout.write(to_csv(records))
    elif output == "jsonl":
        sys.stdout.write(to_jsonl(records))
    else:
        table = Table()
        for column in ("time (UTC)", "client", "purpose", "licence id", "type", "verdict", "block"):
            table.add_column(column)
        for r in records:
            table.add_row(
                r.time,
                r.client,
                r.purpose or "",
                r.licence_id,
                r.licence_type,
                r.verdict,
                "" if r.block_height is None else str(r.block_height),
            )
        console.print(table)


def serve_worker(
    *,
    home: Annotated[Path, typer.Option(file_okay=False)],
    worker: Annotated[int, typer.Option(min=0)],
    fd: Annotated[int, typer.Option(min=0)],
    chain: Annotated[str | None, typer.Option()] = None,
    registry: Annotated[str | None, typer.Option()] = None,
    log_level: Annotated[str, typer.Option()] = "info",
) -> None:
    """One worker process of `elicence serve --workers N` (started by it, not by hand)."""
    from ledger.private import restrict_umask
    from verifier.service.launch import log_to_stderr
    from verifier.service.settings import Settings
    from verifier.service.workers import run_worker

    restrict_umask()  # also when started other than through main(): its files are private
    log_to_stderr(log_level)
    settings = Settings(home=home, chain=chain, registry=registry)
    run_worker(settings, worker=worker, fd=fd, log_level=log_level)
