"""scripts/bench_replica: one verify replica against a bare FastAPI app, side by side.

Issue 17's yardstick: per replica, POST /v1/verifications with a full licence document
must reach at least 0.75 of the throughput of a bare FastAPI app (scripts/bare_app.py:
pydantic body, ~30 SHA-256, uvicorn, the same worker count), at 32 and 320 connections
with p99 at most 200 ms at 320; with PostgreSQL as the store, at least 0.8 of the same
replica on SQLite.

The servers (bare, elicence on SQLite, elicence on PostgreSQL) all run for the whole
run, on one chain node of their own, but only the one being loaded is let run: the
others are stopped (SIGSTOP, their whole process group) and so take no CPU. Each round
loads each server in turn, in an order that rotates with the round, for a bounded time
at each connection count (wrk). This machine's speed drifts by half within minutes
(docs/benchmarks.md, 2026-12-03 night); slices this short and interleaved see the same
machine, where a server run after another once saw a different one. The table gives
each figure's median over the rounds and the ratios.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import IO
from urllib.parse import urlparse

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))

from bench_api import LUA, start_chain, start_store, wait_ready, wrk  # noqa: E402

from tests.conftest import ELICENCE, free_port  # noqa: E402

CONNECTIONS = (32, 320)


def options() -> argparse.Namespace:
    """The command line's options."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=10, help="seconds per wrk run")
    parser.add_argument("--rounds", type=int, default=3, help="rounds over the servers")
    parser.add_argument(
        "--workers", type=int, default=os.cpu_count() or 1, help="worker processes per server"
    )
    parser.add_argument(
        "--stores",
        default="sqlite,postgresql",
        help="elicence's stores to measure, comma-separated (sqlite, postgresql)",
    )
    return parser.parse_args()


class Target:
    """One server to load: how to start it, and the API key its requests carry."""

    def __init__(self, name: str, start: Callable[[int], subprocess.Popen[bytes]]) -> None:
        self.name = name
        self.start = start
        self.key = "none"


class Running:
    """A started server: its process group is stopped (SIGSTOP) whenever it is not being
    loaded."""

    def __init__(self, target: Target, bodies: list[str], work: Path) -> None:
        self.target = target
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        self.process = target.start(port)
        self.script = work / f"{target.name}.lua"
        try:
            wait_ready(self.url, self.process)
            for body in bodies:  # each load request is a whole verification that succeeds
                answer = post(self.url, body, target.key)
                if "status" not in answer or (
                    target.name != "bare" and answer["status"] != "VALID"
                ):
                    raise SystemExit(f"{target.name}: not a VALID verdict: {answer}")
            self.script.write_text(
                LUA.format(bodies=", ".join(json.dumps(b) for b in bodies), key=target.key)
            )
            wrk(self.url, self.script, 32, 2)  # warm-up
        except BaseException:
            stop_group(self.process)
            raise
        self.pause()

    def pause(self) -> None:
        os.killpg(self.process.pid, signal.SIGSTOP)

    def load(self, connections: int, duration: int) -> dict[str, float]:
        """wrk's figures at `connections`, the server let run for this load only."""
        os.killpg(self.process.pid, signal.SIGCONT)
        try:
            wrk(self.url, self.script, connections, 1)  # its loop and caches awake again
            return wrk(self.url, self.script, connections, duration)
        finally:
            self.pause()

    def stop(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGCONT)
        stop_group(self.process)


def stop_group(server: subprocess.Popen[bytes]) -> None:
    """Stop a server and every process of its group (its workers, its chain node)."""
    try:
        os.killpg(server.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    server.wait(timeout=30)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:  # the node closes its files after the service
        try:
            os.killpg(server.pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.1)


def post(url: str, body: str, key: str) -> dict[str, object]:
    """One verification, answered."""
    request = urllib.request.Request(
        url + "/v1/verifications",
        body.encode(),
        method="POST",
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {key}"},
    )
    with urllib.request.urlopen(request, timeout=10) as answer:
        result: dict[str, object] = json.loads(answer.read())
    return result


def start_node(home: Path, env: dict[str, str], log: IO[bytes]) -> subprocess.Popen[bytes]:
    """The home's chain node (`elicence ledger serve`, as `elicence serve` starts it), in a
    process group of its own, once it answers."""
    from ledger.chain import connect
    from ledger.config import HomeConfig
    from ledger.errors import ChainUnreachable

    url = HomeConfig.read(home, None, None).chain_url
    node = subprocess.Popen(
        [str(ELICENCE), "ledger", "serve", "--home", str(home), "--port", str(urlparse(url).port)],
        env=env,
        stdout=log,
        stderr=log,
        start_new_session=True,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            connect(url, timeout=1)
            return node
        except ChainUnreachable:
            time.sleep(0.2)
    node.terminate()
    raise SystemExit(f"the chain node did not answer on {url}")


def document_bodies(home: Path) -> list[str]:
    """Every demo licence as its full document (with its secret), the issue's yardstick
    body; the revoked one is left out, so that every answer is a VALID verdict."""
    from verifier.service.demo import DEMO_COUNT, REVOKED_INDEX, demo_rows

    revoked = (
        home / "demo" / "business" / f"{demo_rows(DEMO_COUNT)[REVOKED_INDEX]['licenceNumber']}.json"
    )
    bodies = []
    for path in sorted((home / "demo").glob("*/*.json")):
        if path == revoked:
            continue
        document = json.loads(path.read_text("utf-8"))
        if "secret" in document:  # a licence, not a batch manifest
            bodies.append(json.dumps({"document": document, "purpose": "bench"}))
    return bodies


def main() -> None:
    args = options()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is missing: ./scripts/bench_replica installs it")
    work = Path(tempfile.mkdtemp(prefix="elicence-replica-"))
    home = work / "home"
    home.mkdir()
    helpers: list[subprocess.Popen[bytes]] = []
    running: list[Running] = []
    stops: list[Callable[[], None]] = []
    env = {**os.environ, "ELICENCE_HOME": str(home)}
    log = (work / "servers.log").open("wb")
    try:
        chain_args = start_chain("embedded", home, helpers)

        def elicence(store_args: list[str]) -> Callable[[int], subprocess.Popen[bytes]]:
            def start(port: int) -> subprocess.Popen[bytes]:
                command = [str(ELICENCE), "serve", "--home", str(home), "--port", str(port)]
                command += ["--demo", "--log-level", "warning", "--workers", str(args.workers)]
                return subprocess.Popen(
                    [*command, *chain_args, *store_args],
                    env=env,
                    stdout=subprocess.DEVNULL,
                    stderr=log,
                    start_new_session=True,
                )

            return start

        def bare(port: int) -> subprocess.Popen[bytes]:
            return subprocess.Popen(
                [
                    *(sys.executable, "-m", "uvicorn", "scripts.bare_app:app"),
                    *("--host", "127.0.0.1", "--port", str(port), "--workers", str(args.workers)),
                    *("--log-level", "warning", "--no-access-log"),
                ],
                cwd=ROOT,
                stdout=subprocess.DEVNULL,
                stderr=log,
                start_new_session=True,
            )

        targets = [Target("bare", bare)]
        for store in args.stores.split(","):
            store_args, stop = start_store(store)
            stops.append(stop)
            target = Target(store, elicence(store_args))
            # The first start sets up the demo; the key is made in this store.
            port = free_port()
            first = target.start(port)
            try:
                wait_ready(f"http://127.0.0.1:{port}", first)
            finally:
                stop_group(first)
            target.key = subprocess.run(
                [
                    *(str(ELICENCE), "apikey", "create", "--home", str(home), "--name", "bench"),
                    *("--rate", "1000000", *store_args),
                ],
                capture_output=True,
                text=True,
                check=True,
                env=env,
            ).stdout.strip()
            targets.append(target)
        bodies = document_bodies(home)
        # The chain node of every server: started by none of them, so that stopping one
        # stops no other's node.
        helpers.append(start_node(home, env, log))
        figures: dict[str, list[dict[int, dict[str, float]]]] = {t.name: [] for t in targets}
        for target in targets:
            running.append(Running(target, bodies, work))
        for round_number in range(args.rounds):
            turn = running[round_number % len(running) :] + running[: round_number % len(running)]
            measured: dict[str, dict[int, dict[str, float]]] = {t.target.name: {} for t in turn}
            for connections in CONNECTIONS:
                for server in turn:
                    measured[server.target.name][connections] = server.load(
                        connections, args.duration
                    )
            for server in turn:
                name = server.target.name
                figures[name].append(measured[name])
                rps = ", ".join(f"{c}: {measured[name][c]['rps']:,.0f}/s" for c in CONNECTIONS)
                print(f"round {round_number + 1} {name:<10} {rps}", flush=True)
    finally:
        for server in running:
            server.stop()
        for helper in helpers:
            helper.terminate()
            helper.wait(timeout=10)
        for stop in stops:
            stop()
    print_table(figures, args.workers, len(bodies))
    shutil.rmtree(work, ignore_errors=True)


def print_table(
    figures: dict[str, list[dict[int, dict[str, float]]]], workers: int, count: int
) -> None:
    """Medians per server and connection count, and the ratios the issue sets."""
    print(f"\n{workers} worker(s) per server, {count} full licence documents in turn")
    print("| server | connections | verifications/s | p50 ms | p99 ms | errors | vs bare |", end="")
    print(" vs sqlite |")
    print("|---|---|---|---|---|---|---|---|")
    for connections in CONNECTIONS:
        medians = {
            name: {
                key: statistics.median(run[connections][key] for run in runs)
                for key in ("rps", "p50", "p99", "errors")
            }
            for name, runs in figures.items()
        }
        for name, median in medians.items():
            versus_bare = median["rps"] / medians["bare"]["rps"]
            versus_sqlite = (
                f"{median['rps'] / medians['sqlite']['rps']:.2f}"
                if name not in ("bare", "sqlite") and "sqlite" in medians
                else ""
            )
            print(
                f"| {name} | {connections} | {median['rps']:,.0f} | {median['p50'] / 1000:.1f} | "
                f"{median['p99'] / 1000:.1f} | {int(median['errors'])} | {versus_bare:.2f} | "
                f"{versus_sqlite} |"
            )
    # The same ratios round by round: each round's servers ran within a minute of each
    # other, so these show how much of the spread is the machine's.
    print()
    for connections in CONNECTIONS:
        for name, base in (("sqlite", "bare"), ("postgresql", "sqlite")):
            if name in figures and base in figures:
                ratios = [
                    mine[connections]["rps"] / theirs[connections]["rps"]
                    for mine, theirs in zip(figures[name], figures[base], strict=True)
                ]
                listed = ", ".join(f"{r:.2f}" for r in ratios)
                print(f"{name} vs {base} at {connections}, round by round: {listed}")


if __name__ == "__main__":
    main()
