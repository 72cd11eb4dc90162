"""`elicence serve`, `elicence apikey ...` and `elicence audit`: the verifier service's
commands, over verifier.service (launch, apikeys, audit)."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer

from cli.support import (
    EXIT_UNUSABLE,
    Column,
    console,
    errors,
    fail,
    home_of,
    print_table,
    split_names,
)

if TYPE_CHECKING:
    from verifier.service.apikeys import KeyStore

apikey_app = typer.Typer(help="API keys of approval systems.", no_args_is_help=True)

HomeOption = Annotated[
    Path | None,
    typer.Option(help="Home folder (default ELICENCE_HOME or ~/.elicence).", file_okay=False),
]


DatabaseOption = Annotated[
    str | None,
    typer.Option(
        help="PostgreSQL URL of the API keys, rate limits and audit log every replica "
        'shares (default: the home\'s config.json "database", else SQLite files in the '
        "home). Put the password in ~/.pgpass or PGPASSWORD rather than here.",
        envvar="ELICENCE_DATABASE",
        show_default=False,
    ),
]


def _fail(message: str) -> NoReturn:
    fail(message, EXIT_UNUSABLE)


def _key_store(home: Path | None, database: str | None) -> KeyStore:
    """The key store the settings choose; a one-line failure when it cannot be opened."""
    from ledger.errors import LedgerError
    from verifier.service.errors import StoreError
    from verifier.service.settings import Settings
    from verifier.service.stores import open_key_store

    try:
        store = open_key_store(Settings(home=home_of(home), database=database))
    except (StoreError, LedgerError) as exc:
        _fail(str(exc))
    return store


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
    database: DatabaseOption = None,
) -> None:
    """Run the verify API (FastAPI on uvicorn): /v1/verifications, /docs, /metrics.

    Example: [bold]elicence serve --home var/home --port 8000 --demo[/]
    """
    from ledger.chain import connect
    from ledger.config import HomeConfig
    from ledger.errors import LedgerError
    from verifier.service.demo import is_set_up, set_up_demo
    from verifier.service.errors import CannotServe, StoreError
    from verifier.service.launch import EmbeddedNode, chain_of_home, log_to_stderr, run_service
    from verifier.service.settings import Settings
    from verifier.service.stores import checked_url, redact

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
            settings = Settings(
                home=home_dir, chain=config.chain_url, registry=config.registry, database=database
            )
            store = settings.database_url()
            if store is not None:
                checked_url(store)
                # Workers read it from their environment, not from a command line that
                # `ps` would show with its password.
                os.environ["ELICENCE_DATABASE"] = store
            log_to_stderr(log_level)
            console.print(
                f"elicence verify API on [bold]http://{host}:{port}[/] (docs: /docs), chain "
                f"{config.chain_url}, registry {config.registry}"
                + (f", {workers} workers" if workers > 1 else "")
                + (f", shared state in {redact(store)}" if store is not None else ""),
                highlight=False,
            )
            run_service(settings, host=host, port=port, workers=workers, log_level=log_level)
    except (LedgerError, CannotServe, StoreError) as exc:
        _fail(str(exc))


def _node_started(url: str, home: Path) -> None:
    console.print(f"embedded chain node on {url} (data in {home / 'chain'})")


@apikey_app.command("create")
def apikey_create(
    name: Annotated[
        str,
        typer.Option(
            help="The approval system's name, recorded in the audit: 1 to 64 letters (Chinese "
            "too), digits, spaces and - _ . ·, e.g. 广州市市场监督管理局审批系统."
        ),
    ],
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
    *,
    operator: Annotated[
        bool,
        typer.Option(
            "--operator",
            help="A key for the service's operator page (/operator), which verifies nothing.",
        ),
    ] = False,
    home: HomeOption = None,
    database: DatabaseOption = None,
) -> None:
    """Create an API key; it is shown once and stored only as a hash.

    Example: [bold]elicence apikey create --name shaoxing-approvals --types business-licence
    --fields licenceNumber,holderName,unifiedSocialCreditCode[/]; for the operator page:
    [bold]elicence apikey create --name ops --operator[/]
    """
    from verifier.service.errors import InvalidRequest, ServiceError

    store = _key_store(home, database)
    try:
        record, key = store.create(
            name,
            types=split_names(types),
            fields=split_names(fields),
            rate=rate,
            operator=operator,
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
def apikey_list(home: HomeOption = None, database: DatabaseOption = None) -> None:
    """List the API keys (names, limits, state; never the keys).

    Example: [bold]elicence apikey list[/]
    """
    from verifier.service.errors import ServiceError

    store = _key_store(home, database)
    try:
        keys = store.list()
    except ServiceError as exc:
        _fail(str(exc))
    finally:
        store.close()
    print_table(
        None,
        [
            Column("name", typed=True),
            Column("key starts", typed=True),
            Column("types"),
            Column("fields"),
            Column("rate/s"),
            Column("created"),
            Column("revoked"),
        ],
        [
            [
                k.name,
                k.hint + "…",
                ",".join(sorted(k.types)) if k.types is not None else "all",
                ",".join(sorted(k.fields)) if k.fields is not None else "all",
                f"{k.rate:g}" if k.rate is not None else "default",
                k.created,
                k.revoked or "",
            ]
            for k in keys
        ],
    )


@apikey_app.command("revoke")
def apikey_revoke(
    name: Annotated[str, typer.Argument(help="The key's name.")],
    home: HomeOption = None,
    database: DatabaseOption = None,
) -> None:
    """Revoke an API key: the running service refuses it from its next request (every
    replica sharing a PostgreSQL database: within a second).

    Example: [bold]elicence apikey revoke shaoxing-approvals[/]
    """
    from verifier.service.errors import ServiceError

    store = _key_store(home, database)
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
    database: DatabaseOption = None,
) -> None:
    """List or export the audit log: who verified which licence, when, why, with what verdict.

    Example: [bold]elicence audit --client shaoxing-approvals --since 2026-12-01 --format csv[/]
    """
    from ledger.errors import LedgerError
    from verifier.service.audit import normalise_since, to_csv, to_jsonl
    from verifier.service.errors import InvalidRequest, StoreError
    from verifier.service.settings import Settings
    from verifier.service.stores import open_audit_log

    if output not in {"table", "csv", "jsonl"}:
        _fail(f"--format {output}: use table, csv or jsonl")
    try:
        since_utc = normalise_since(since) if since else None
    except InvalidRequest as exc:
        _fail("; ".join(f"--{e.path}: {e.message}" for e in exc.errors))
    try:
        log = open_audit_log(Settings(home=home_of(home), database=database))
    except (StoreError, LedgerError) as exc:
        _fail(str(exc))
    try:
        records = log.query(licence_id=licence, client=client, since=since_utc, limit=limit)
    except StoreError as exc:
        _fail(str(exc))
    finally:
        log.close()
    if output == "csv":
        sys.stdout.write(to_csv(records))
    elif output == "jsonl":
        sys.stdout.write(to_jsonl(records))
    else:
        print_table(
            None,
            [
                Column("time (UTC)", typed=True),
                Column("client", typed=True),
                Column("purpose"),
                Column("licence id", typed=True),
                Column("type"),
                Column("verdict"),
                Column("block"),
            ],
            [
                [
                    r.time,
                    r.client,
                    r.purpose or "",
                    r.licence_id,
                    r.licence_type,
                    r.verdict,
                    "" if r.block_height is None else str(r.block_height),
                ]
                for r in records
            ],
        )


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
