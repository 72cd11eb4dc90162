"""Several worker processes behind one port: `elicence serve --workers N`.

One Python process answers about one core's worth of verifications; a machine with more
cores serves more with more processes. The supervisor (the `serve` process) binds one
listening socket per worker on the same address with SO_REUSEPORT, so that the kernel
spreads connections evenly over the workers, and starts each worker as
`elicence serve-worker` on its socket. A worker that stops is started again; the
supervisor stops them all on SIGTERM or SIGINT, and the kernel stops them if the
supervisor itself is killed (the parent-death signal).

What each worker keeps to itself, and what they share:
- its own registry index file (HOME/index.sqlite, HOME/index-1.sqlite, ...): each
  follows the chain, and its reorganisations, on its own; all answer from the chain's
  head (the freshness rule holds per request, whichever worker answers);
- the API keys and the audit log (SQLite files made for several processes: WAL, and a
  revoked key is refused by every worker from its next request);
- metrics: prometheus_client's multiprocess mode, so every scrape reports the sum;
- rate limits are counted per worker: a client whose connections land on several
  workers can get up to N times its rate (docs/api.md).
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Any

from verifier.service.errors import ServiceError
from verifier.service.metrics import MULTIPROCESS_DIR_VARIABLE
from verifier.service.settings import Settings

log = logging.getLogger("elicence.service")

STOP_TIMEOUT_S = 30.0
# A worker that stops this soon after starting, again and again, will not get better by
# being started again (a bad setting, a broken home): the supervisor gives up.
EARLY_STOP_S = 10.0
EARLY_STOPS_ALLOWED = 3
# asyncio's own event loop, not uvloop (uvicorn's choice when installed): with uvloop,
# 320 connections on two workers got p99 311-413 ms and answers up to 0.85 s late, the
# same load on asyncio p99 92-130 ms and none later than 146 ms, at the same throughput
# (docs/benchmarks.md).
EVENT_LOOP = "asyncio"
# How uvicorn runs the app, in one process or in each worker.
SERVER_OPTIONS: dict[str, Any] = {
    "access_log": False,
    # Behind no proxy by default: X-Forwarded-For from a client would otherwise let it
    # choose the address anonymous rates are counted by.
    "proxy_headers": False,
    "loop": EVENT_LOOP,
}


class WorkersFailed(ServiceError):
    """The workers keep stopping right after they start."""


def listening_sockets(host: str, port: int, count: int) -> list[socket.socket]:
    """`count` sockets listening on host:port together (SO_REUSEPORT)."""
    family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    sockets = []
    try:
        for _ in range(count):
            sock = socket.socket(family, kind, proto)
            sockets.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            sock.bind(address)
            sock.listen(2048)
            sock.set_inheritable(True)
    except OSError:
        for sock in sockets:
            sock.close()
        raise
    return sockets


def supervise(
    settings: Settings,
    *,
    host: str,
    port: int,
    workers: int,
    log_level: str,
    child_setup: Callable[[], None],
) -> None:
    """Run `workers` worker processes on host:port until SIGTERM or SIGINT.

    `child_setup` runs in each child before it starts (the parent-death signal).
    Raises OSError when the address cannot be bound, WorkersFailed when the workers keep
    stopping at start.
    """
    from prometheus_client.multiprocess import mark_process_dead

    from verifier.service.apikeys import ApiKeyStore
    from verifier.service.audit import AuditLog

    # Made here, once, before several processes open them at the same moment.
    ApiKeyStore(settings.service_dir / "apikeys.sqlite").close()
    AuditLog(settings.service_dir / "audit.sqlite").close()
    metrics_dir = settings.service_dir / "metrics"
    shutil.rmtree(metrics_dir, ignore_errors=True)
    metrics_dir.mkdir(parents=True)
    sockets = listening_sockets(host, port, workers)
    environment = {**os.environ, MULTIPROCESS_DIR_VARIABLE: str(metrics_dir)}
    elicence = Path(sys.executable).with_name("elicence")

    def start(worker: int) -> subprocess.Popen[bytes]:
        sock = sockets[worker]
        command = [
            str(elicence),
            "serve-worker",
            "--home",
            str(settings.home),
            "--worker",
            str(worker),
            "--fd",
            str(sock.fileno()),
            "--log-level",
            log_level,
        ]
        if settings.chain is not None:
            command += ["--chain", settings.chain]
        if settings.registry is not None:
            command += ["--registry", settings.registry]
        return subprocess.Popen(
            command,
            env=environment,
            pass_fds=(sock.fileno(),),
            preexec_fn=child_setup,  # noqa: PLW1509 - no threads run yet in this process
        )

    stop = threading.Event()

    def on_signal(signum: int, _: FrameType | None) -> None:
        stop.set()

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
    children = {worker: start(worker) for worker in range(workers)}
    started = dict.fromkeys(children, time.monotonic())
    early_stops = 0
    try:
        while not stop.wait(0.5):
            for worker, child in list(children.items()):
                code = child.poll()
                if code is None:
                    continue
                mark_process_dead(child.pid, str(metrics_dir))  # type: ignore[no-untyped-call]
                if time.monotonic() - started[worker] < EARLY_STOP_S:
                    early_stops += 1
                    if early_stops > EARLY_STOPS_ALLOWED * workers:
                        raise WorkersFailed(
                            f"worker {worker} stopped (exit {code}) right after starting, "
                            f"{early_stops} times in all; see the messages above"
                        )
                log.warning("worker %d stopped (exit %s); starting it again", worker, code)
                children[worker] = start(worker)
                started[worker] = time.monotonic()
    finally:
        _stop_all(list(children.values()))
        for sock in sockets:
            sock.close()
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _stop_all(children: list[subprocess.Popen[bytes]]) -> None:
    for child in children:
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + STOP_TIMEOUT_S
    for child in children:
        try:
            child.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()


def run_worker(settings: Settings, *, worker: int, fd: int, log_level: str) -> None:
    """One worker: the app on the listening socket the supervisor handed down."""
    import uvicorn

    from verifier.service.app import create_app

    sock = socket.socket(fileno=fd)
    config = uvicorn.Config(
        create_app(settings, worker=worker), log_level=log_level, **SERVER_OPTIONS
    )
    # Server.run(sockets=...) rather than Config(fd=...): uvicorn takes an fd for a Unix
    # socket and would not set TCP_NODELAY, which costs every answer a delayed ACK.
    uvicorn.Server(config).run(sockets=[sock])
