"""Starting the service as `elicence serve` does: the home's chain (with an embedded node
started alongside when nothing answers there), then one process or several workers.

Every process started here stops with the process that started it, also when that one
is killed (the kernel's parent-death signal, Linux).
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from urllib.parse import urlparse

from ledger.config import CONFIG_FILE, HomeConfig
from ledger.lifetime import end_with_parent
from verifier.service.errors import CannotServe
from verifier.service.settings import Settings

NODE_START_TIMEOUT_S = 60.0


def log_to_stderr(level: str) -> None:
    """The service's log, to standard error, at `level` (serve and each worker alike)."""
    logging.basicConfig(level=level.upper(), format="%(asctime)s %(name)s %(message)s")


def chain_of_home(home: Path, chain: str | None, registry: str | None) -> HomeConfig:
    """The chain and registry the service uses: the options, else the home's.

    A new home (no config.json) without --chain gets a free loopback port for its own
    node when the default one is taken: another home's node may already hold it, and this
    home's demo must not land on that chain. The port is saved, so that later starts use
    the same node.
    """
    config = HomeConfig.read(home, chain, registry)
    if chain is not None or (home / CONFIG_FILE).exists():
        return config
    parsed = urlparse(config.chain_url)
    with socket.socket() as probe:
        taken = probe.connect_ex((parsed.hostname or "127.0.0.1", parsed.port or 80)) == 0
    if not taken:
        return config
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    # Saved: the port alone (model_construct reads no environment); used: with the
    # registry and chain id of the options or the environment.
    claimed = f"http://127.0.0.1:{port}"
    HomeConfig.model_construct(chain_url=claimed).save(home)
    return config.model_copy(update={"chain_url": claimed})


def stop_with_parent(parent: int) -> Callable[[], None]:
    """What a child of `parent` runs between fork and exec so that it stops with it."""

    def stop_with_parent() -> None:
        # uvicorn re-raises SIGTERM once it has shut down, so `serve` ends before any
        # `finally` could stop the node; and kill -9 runs no code at all. The kernel's
        # parent-death signal stops the node and the workers in both cases (Linux;
        # elsewhere a no-op).
        if not end_with_parent(parent, signal.SIGTERM):
            # The parent died between the fork and the line above: no signal will come.
            raise ChildProcessError("elicence serve stopped while starting this process")

    return stop_with_parent


class EmbeddedNode:
    """The home's `elicence ledger serve`, started only when nothing answers at the chain
    URL, and stopped when the context ends."""

    def __init__(self, home: Path, url: str) -> None:
        self.home = home
        self.url = url
        self.process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> EmbeddedNode:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.stop()

    def ensure(self, *, dev: bool = False) -> bool:
        """Start the node (in dev mode when `dev`) unless something answers at the URL;
        whether it was started.

        Raises:
            CannotServe: the URL is not this machine's, or the node did not start.
        """
        from ledger.chain import connect
        from ledger.errors import ChainUnreachable
        from ledger.private import private_file, private_folder

        try:
            connect(self.url, timeout=2)
            return False
        except ChainUnreachable:
            pass
        parsed = urlparse(self.url)
        if parsed.scheme != "http" or parsed.hostname not in {"127.0.0.1", "localhost"}:
            raise CannotServe(f"no chain answers at {self.url}; start it, or pass --chain")
        port = parsed.port or 80
        private_folder(self.home)
        elicence = Path(sys.executable).with_name("elicence")
        log_path = self.home / "node.log"
        with private_file(log_path).open("ab") as log:
            process = subprocess.Popen(
                [
                    *(str(elicence), "ledger", "serve", "--home", str(self.home)),
                    *("--port", str(port)),
                    *(["--dev"] if dev else []),
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                # Safe here: serve has started no threads yet when it starts the node.
                preexec_fn=stop_with_parent(os.getpid()),  # noqa: PLW1509
            )
        self.process = process
        deadline = time.monotonic() + NODE_START_TIMEOUT_S
        while time.monotonic() < deadline:
            if process.poll() is not None:
                self.process = None
                raise CannotServe(f"the embedded node stopped at start (see {log_path})")
            try:
                connect(self.url, timeout=1)
                return True
            except ChainUnreachable:
                time.sleep(0.2)
        self.stop()
        raise CannotServe(
            f"the embedded node did not answer on {self.url} within {NODE_START_TIMEOUT_S:g} s"
        )

    def stop(self) -> None:
        """Stop the node this object started, if any."""
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=30)
            self.process = None


def run_service(settings: Settings, *, host: str, port: int, workers: int, log_level: str) -> None:
    """Serve the verify API until stopped: in this process, or in `workers` worker
    processes behind one port.

    Raises:
        CannotServe: the workers' port cannot be listened on.
    """
    import uvicorn

    from verifier.service.app import create_app
    from verifier.service.workers import SERVER_OPTIONS, supervise

    if workers > 1:
        try:
            supervise(
                settings,
                host=host,
                port=port,
                workers=workers,
                log_level=log_level,
                child_setup=stop_with_parent(os.getpid()),
            )
        except OSError as exc:
            raise CannotServe(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from exc
        return
    uvicorn.run(create_app(settings), host=host, port=port, log_level=log_level, **SERVER_OPTIONS)
