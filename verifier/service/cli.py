"""`elicence serve`, `elicence apikey ...` and `elicence audit`: the verifier service's
commands. verifier/cli.py registers them; service errors become one-line messages and
exit code 2 here."""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, NoReturn
from urllib.parse import urlparse

import typer
from rich.console import Console
from rich.table import Table

from issuer.cli_support import EXIT_UNUSABLE, fail
from ledger.config import HomeConfig

NODE_START_TIMEOUT_S = 60.0

console = Console()
errors = Console(stderr=True)

apikey_app = typer.Typer(help="API keys of approval systems.", no_args_is_help=True)

HomeOption = Annotated[
    Path | None,
    typer.Option(help="Home folder (default ELICENCE_HOME or ~/.elicence).", file_okay=False),
]


def _fail(message: str) -> NoReturn:
    fail(message, EXIT_UNUSABLE)


def _log_at(level: str) -> None:
    """The service's log, to standard error, at `level` (serve and each worker alike)."""
    import logging

    logging.basicConfig(level=level.upper(), format="%(asctime)s %(name)s %(message)s")


def _home(home: Path | None) -> Path:
    from ledger.config import default_home

    return home or default_home()


def _names(values: list[str] | None) -> frozenset[str] | None:
    if not values:
        return None
    return frozenset(n.strip() for item in values for n in item.split(",") if n.strip())


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
    import uvicorn

    from ledger.chain import connect
    from ledger.errors import LedgerError
    from verifier.service.app import create_app
    from verifier.service.demo import is_set_up, set_up_demo
    from verifier.service.settings import Settings
    from verifier.service.workers import SERVER_OPTIONS, supervise

    home_dir = _home(home)
    config = HomeConfig.load(home_dir).resolve(chain, registry)
    if chain is None and not (home_dir / "config.json").exists():
        # A new home gets its own node: another home's node may already hold the
        # default port, and this home's demo must not land on that chain.
        config = _claim_port(home_dir, config)
    node = None
    # The demo's fresh keys deploy and need gas: only a node in dev mode gives both to
    # anyone, so the node starts in dev mode for the demo's set-up alone.
    demo_node = chain is None and demo and not is_set_up(home_dir)
    if chain is None:
        node = _ensure_node(home_dir, config.chain_url, dev=demo_node)
    try:
        if demo and not is_set_up(home_dir):
            with console.status("first start: deploying the registry and demo licences…"):
                made = set_up_demo(home_dir, connect(config.chain_url))
            console.print(
                f"Demo registry [bold]{made.registry}[/]; demo licences in {made.folder} "
                f"(QR payloads in {made.folder / 'qr'}, one revoked: {made.revoked.name})",
                highlight=False,
            )
            config = HomeConfig.load(home_dir).resolve(chain, registry)
        if demo_node and node is not None:
            node.terminate()
            node.wait(timeout=30)
            node = _ensure_node(home_dir, config.chain_url)
        if config.registry is None:
            _fail(
                "no registry configured: run `elicence registry deploy`, pass --registry, "
                "or start with --demo"
            )
        settings = Settings(home=home_dir, chain=config.chain_url, registry=config.registry)
        _log_at(log_level)
        console.print(
            f"elicence verify API on [bold]http://{host}:{port}[/] (docs: /docs), chain "
            f"{config.chain_url}, registry {config.registry}"
            + (f", {workers} workers" if workers > 1 else ""),
            highlight=False,
        )
        if workers > 1:
            try:
                supervise(
                    settings,
                    host=host,
                    port=port,
                    workers=workers,
                    log_level=log_level,
                    child_setup=_stop_with_parent(os.getpid()),
                )
            except OSError as exc:
                _fail(f"cannot listen on {host}:{port}: {exc.strerror or exc}")
            return
        uvicorn.run(
            create_app(settings), host=host, port=port, log_level=log_level, **SERVER_OPTIONS
        )
    except LedgerError as exc:
        _fail(str(exc))
    finally:
        if node is not None:
            node.terminate()
            node.wait(timeout=30)


def _claim_port(home: Path, config: HomeConfig) -> HomeConfig:
    """The config with a free loopback port for a new home's node when the default port
    is taken; saved, so that later starts use the same node."""
    import socket

    parsed = urlparse(config.chain_url)
    with socket.socket() as probe:
        taken = probe.connect_ex((parsed.hostname or "127.0.0.1", parsed.port or 80)) == 0
    if not taken:
        return config
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    claimed = HomeConfig(chain_url=f"http://127.0.0.1:{port}")
    claimed.save(home)
    return claimed


def _stop_with_parent(parent: int) -> Callable[[], None]:
    """What a child of `parent` runs between fork and exec so that it stops with it."""

    def stop_with_parent() -> None:
        # uvicorn re-raises SIGTERM once it has shut down, so `serve` ends before any
        # `finally` could stop the node; and kill -9 runs no code at all. The kernel's
        # parent-death signal stops the node and the workers in both cases (Linux;
        # elsewhere a no-op).
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PDEATHSIG
        if os.getppid() != parent:
            # The parent died between the fork and the line above: no signal will come.
            raise ChildProcessError("elicence serve stopped while starting this process")

    return stop_with_parent


def _ensure_node(home: Path, url: str, *, dev: bool = False) -> subprocess.Popen[bytes] | None:
    """Start `elicence ledger serve` for this home unless something answers at `url`
    (in dev mode when `dev`)."""
    from ledger.chain import connect
    from ledger.errors import ChainUnreachable

    try:
        connect(url, timeout=2)
        return None
    except ChainUnreachable:
        pass
    parsed = urlparse(url)
    if parsed.scheme != "http" or parsed.hostname not in {"127.0.0.1", "localhost"}:
        _fail(f"no chain answers at {url}; start it, or pass --chain")
    port = parsed.port or 80
    from ledger.private import private_file, private_folder

    private_folder(home)
    elicence = Path(sys.executable).with_name("elicence")
    with private_file(home / "node.log").open("ab") as log:
        process = subprocess.Popen(
            [
                *(str(elicence), "ledger", "serve", "--home", str(home), "--port", str(port)),
                *(["--dev"] if dev else []),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            # Safe here: serve has started no threads yet when it starts the node.
            preexec_fn=_stop_with_parent(os.getpid()),  # noqa: PLW1509
        )
    deadline = time.monotonic() + NODE_START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            _fail(f"the embedded node stopped at start (see {home / 'node.log'})")
        try:
            connect(url, timeout=1)
            console.print(f"embedded chain node on {url} (data in {home / 'chain'})")
            return process
        except ChainUnreachable:
            time.sleep(0.2)
    process.terminate()
    _fail(f"the embedded node did not answer on {url} within {NODE_START_TIMEOUT_S:g} s")


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

    store = ApiKeyStore(Settings(home=_home(home)).service_dir / "apikeys.sqlite")
    try:
        record, key = store.create(name, types=_names(types), fields=_names(fields), rate=rate)
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

    store = ApiKeyStore(Settings(home=_home(home)).service_dir / "apikeys.sqlite")
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

    store = ApiKeyStore(Settings(home=_home(home)).service_dir / "apikeys.sqlite")
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
    log = AuditLog(Settings(home=_home(home)).service_dir / "audit.sqlite")
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
    from verifier.service.settings import Settings
    from verifier.service.workers import run_worker

    restrict_umask()  # also when started other than through main(): its files are private
    _log_at(log_level)
    settings = Settings(home=home, chain=chain, registry=registry)
    run_worker(settings, worker=worker, fd=fd, log_level=log_level)


def register(app: typer.Typer) -> None:
    """Add `serve`, `apikey ...` and `audit` to the root `elicence` app."""
    app.command("serve")(serve)
    app.command("serve-worker", hidden=True)(serve_worker)
    app.command("audit")(audit)
    app.add_typer(apikey_app, name="apikey")
