"""Several worker processes behind one port: `elicence serve --workers N`.

One Python process answers about one core's worth of verifications; a machine with more
cores serves more with more processes. The supervisor (the `serve` process) binds one
socket per worker on the same address with SO_REUSEPORT, so that the kernel spreads
connections evenly over the workers, and starts each worker as `elicence serve-worker`
on its socket. The worker listens on it only once its app has started, and the
supervisor closes the socket as soon as the worker stops, so connections reach only
workers that can answer them.

A worker that stops is started again: at once if it had listened and run for a while,
otherwise after a delay that doubles with each stop in a row (RESTART_DELAY_S up to
RESTART_DELAY_MAX_S), while the others keep serving. Each stop is logged with its exit
code or signal, as an error when it came before the worker listened (a bad setting, a
broken home) or right after. The supervisor never gives up on its own: it stops them
all on SIGTERM or SIGINT, and the kernel stops them if the supervisor itself is killed
(the parent-death signal).

What each worker keeps to itself, and what they share:
- its own registry index file (HOME/index.sqlite, HOME/index-1.sqlite, ...): each
  follows the chain, and its reorganisations, on its own; all answer from the chain's
  head (the freshness rule holds per request, whichever worker answers);
- the API keys and the audit log (SQLite files made for several processes: WAL, and a
  revoked key is refused by every worker within apikeys.KEY_RECHECK_S; or one PostgreSQL
  database for every worker and replica, verifier.service.stores); each worker spools
  its audit records in a file of its own first (verifier.service.spool);
- metrics: prometheus_client's multiprocess mode, so every scrape reports the sum;
- rate limits are counted per worker: a client whose connections land on several
  workers can get up to N times its rate (docs/api.md), except API keys' with a
  PostgreSQL database, whose buckets every worker and replica share.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

from verifier.service.metrics import MULTIPROCESS_DIR_VARIABLE
from verifier.service.settings import Settings

log = logging.getLogger("elicence.service")

STOP_TIMEOUT_S = 30.0
# A worker that stops before it listens, or this soon after starting, may stop again at
# once (a bad setting, a broken home, a request that kills it): it is started again
# later and later, so that it costs the workers that live little CPU, but never given up
# on, so that one bad request an attacker repeats cannot stop the service.
EARLY_STOP_S = 10.0
RESTART_DELAY_S = 0.5
RESTART_DELAY_MAX_S = 30.0
POLL_S = 0.1
# asyncio's own loop, not uvloop (uvicorn's choice when it is installed). Under load,
# uvloop took up new connections late: of 320 connections opened at once against one busy
# worker, half reached `connection_made` (from which a connection is read) 0.4-0.8 s
# after the first and the last 1.6-3.3 s after, and each one's first request waited that
# long (p99 0.28-2.1 s at 320 connections in 6 of 15 runs on 2026-12-03). asyncio took
# up all 320 within 40 ms, had p99 of at most 153 ms in all 14 runs and, alternated with
# uvloop, as many verifications/s within this machine's noise (docs/benchmarks.md,
# 2026-12-03 midday).
EVENT_LOOP = "asyncio"
# How uvicorn runs the app, in one process or in each worker.
SERVER_OPTIONS: dict[str, Any] = {
    "access_log": False,
    # Behind no proxy by default: X-Forwarded-For from a client would otherwise let it
    # choose the address anonymous rates are counted by.
    "proxy_headers": False,
    "loop": EVENT_LOOP,
    # uvicorn's httptools protocol, sending each answer's head and body in one write
    # (verifier.service.hotpath.JoinedWrites says why).
    "http": "verifier.service.hotpath:JoinedWritesProtocol",
}


@dataclass(frozen=True)
class Address:
    """Where the workers listen, as getaddrinfo resolved it."""

    family: socket.AddressFamily
    kind: socket.SocketKind
    proto: int
    address: Any

    @classmethod
    def of(cls, host: str, port: int) -> Address:
        """host:port resolved for a TCP socket."""
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
        return cls(family, kind, proto, address)

    def bound_socket(self) -> socket.socket:
        """A socket bound to the address beside the others (SO_REUSEPORT), not yet
        listening: the worker it is handed to listens once its app has started."""
        sock = socket.socket(self.family, self.kind, self.proto)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            sock.bind(self.address)
            sock.set_inheritable(True)
        except OSError:
            sock.close()
            raise
        return sock

    def bound_sockets(self, count: int) -> list[socket.socket]:
        """`count` bound sockets, or none and the OSError of the first that failed."""
        sockets: list[socket.socket] = []
        try:
            for _ in range(count):
                sockets.append(self.bound_socket())
        except OSError:
            for sock in sockets:
                sock.close()
            raise
        return sockets


@dataclass
class _Worker:
    """One worker's process and restart state."""

    number: int
    child: subprocess.Popen[bytes] | None = None
    # The supervisor's copy of the worker's socket: it tells whether the worker got as
    # far as listening, and is closed as soon as the worker stops, so that no connection
    # waits on a socket nobody will accept from.
    sock: socket.socket | None = None
    started: float = 0.0
    stops_in_a_row: int = 0
    start_at: float = 0.0

    def restart_delay(self) -> float:
        if self.stops_in_a_row == 0:
            return 0.0
        return min(RESTART_DELAY_S * 2.0 ** (self.stops_in_a_row - 1), RESTART_DELAY_MAX_S)


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
    Raises OSError when the address cannot be bound at start.
    """
    from prometheus_client.multiprocess import mark_process_dead

    from verifier.service.stores import open_stores

    # Made (or migrated) here, once, before several processes open them at the same moment.
    open_stores(settings).close()
    metrics_dir = settings.service_dir / "metrics"
    shutil.rmtree(metrics_dir, ignore_errors=True)
    metrics_dir.mkdir(parents=True)
    address = Address.of(host, port)
    # Every socket bound before any worker starts: an address in use fails here, at once.
    first = address.bound_sockets(workers)
    environment = {**os.environ, MULTIPROCESS_DIR_VARIABLE: str(metrics_dir)}

    def start(worker: _Worker) -> None:
        sock = first.pop() if first else address.bound_socket()
        try:
            worker.child = subprocess.Popen(
                _worker_command(settings, worker.number, sock.fileno(), log_level),
                env=environment,
                pass_fds=(sock.fileno(),),
                preexec_fn=child_setup,  # noqa: PLW1509 - no threads run in this process
            )
        except OSError:
            sock.close()
            raise
        worker.sock = sock
        worker.started = time.monotonic()

    # A plain flag, not a threading.Event: the handler runs in this thread, between any
    # two bytecodes, and Event.set() would wait for the lock that Event.wait() may hold
    # right then: a SIGTERM that landed there hung the supervisor for good (seen under
    # scripts/bench_replica, 2026-12-04).
    stopping = False

    def on_signal(signum: int, _: FrameType | None) -> None:
        nonlocal stopping
        stopping = True

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
    pool = [_Worker(number) for number in range(workers)]
    try:
        for worker in pool:
            start(worker)
        while not stopping:
            time.sleep(POLL_S)  # resumed after a handler (PEP 475): at most POLL_S late
            if stopping:
                break
            now = time.monotonic()
            for worker in pool:
                if worker.child is None:
                    if now >= worker.start_at:
                        _start_again(worker, start)
                    continue
                code = worker.child.poll()
                if code is None:
                    continue
                mark_process_dead(worker.child.pid, str(metrics_dir))  # type: ignore[no-untyped-call]
                worker.child = None
                _stopped(worker, code, now)
    finally:
        for sock in first + [worker.sock for worker in pool if worker.sock is not None]:
            sock.close()
        _stop_all([worker.child for worker in pool if worker.child is not None])
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _worker_command(settings: Settings, number: int, fd: int, log_level: str) -> list[str]:
    command = [
        str(Path(sys.executable).with_name("elicence")),
        "serve-worker",
        "--home",
        str(settings.home),
        "--worker",
        str(number),
        "--fd",
        str(fd),
        "--log-level",
        log_level,
    ]
    if settings.chain is not None:
        command += ["--chain", settings.chain]
    if settings.registry is not None:
        command += ["--registry", settings.registry]
    return command


def _stopped(worker: _Worker, code: int, now: float) -> None:
    """Close a stopped worker's socket, log the stop and say when it starts again."""
    assert worker.sock is not None
    listened = worker.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN) != 0
    worker.sock.close()
    worker.sock = None
    lived = now - worker.started
    how = _how(code)
    if listened and lived >= EARLY_STOP_S:
        worker.stops_in_a_row = 0
        log.warning(
            "worker %d stopped (%s) after %.0f s; starting it again", worker.number, how, lived
        )
    else:
        worker.stops_in_a_row += 1
        when = f"{lived:.1f} s after starting" if listened else "before it could answer"
        # An exit code before listening is the worker's own verdict on its settings or
        # home; a signal came from outside (a crash, a kill).
        hint = " (a bad setting or a broken home: see its messages above)"
        log.error(
            "worker %d stopped (%s) %s, %d times in a row%s; starting it again in %.1f s",
            worker.number,
            how,
            when,
            worker.stops_in_a_row,
            hint if code > 0 and not listened else "",
            worker.restart_delay(),
        )
    worker.start_at = now + worker.restart_delay()


def _how(code: int) -> str:
    if code >= 0:
        return f"exit code {code}"
    try:
        return f"killed by {signal.Signals(-code).name}"
    except ValueError:
        return f"killed by signal {-code}"


def _start_again(worker: _Worker, start: Callable[[_Worker], None]) -> None:
    try:
        start(worker)
    except OSError as exc:
        # The port taken meanwhile, or no more processes: tried again later.
        worker.stops_in_a_row += 1
        worker.start_at = time.monotonic() + worker.restart_delay()
        log.error(
            "worker %d could not be started (%s); trying again in %.1f s",
            worker.number,
            exc,
            worker.restart_delay(),
        )


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
