"""scripts/bench_api: see that script's header. Figures go to docs/benchmarks.md by hand."""

from __future__ import annotations

import argparse
import gc
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

# anvil, its public dev key (the faucet) and the elicence command, as the tests find them.
from tests.conftest import ANVIL, ANVIL_FAUCET_KEY, ELICENCE, free_port  # noqa: E402
from tests.postgres import start_server  # noqa: E402

LUA = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer {key}"
local bodies = {{{bodies}}}
local next_body = 0
request = function()
  next_body = next_body % #bodies + 1
  return wrk.format(nil, nil, nil, bodies[next_body])
end
done = function(summary, latency, requests)
  io.write(string.format(
    "RESULT {{\\"requests\\":%d,\\"duration_us\\":%d,\\"p50\\":%d,\\"p90\\":%d,\\"p99\\":%d,"
    .. "\\"max\\":%d,\\"non2xx\\":%d,\\"connect\\":%d,\\"read\\":%d,\\"write\\":%d,"
    .. "\\"timeout\\":%d}}\\n",
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency.max, summary.errors.status, summary.errors.connect,
    summary.errors.read, summary.errors.write, summary.errors.timeout))
end
"""


def wait_ready(url: str, process: subprocess.Popen[bytes], timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"the service exited with {process.returncode}")
        try:
            with urllib.request.urlopen(url + "/readyz", timeout=2) as answer:
                if answer.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.3)
    raise SystemExit("the service did not become ready")


def wrk(url: str, script: Path, connections: int, duration: int) -> dict[str, float]:
    out = subprocess.run(
        [
            "wrk",
            "-t2",
            f"-c{connections}",
            f"-d{duration}s",
            "--timeout",
            "5s",
            "-s",
            str(script),
            url + "/v1/verifications",
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=duration + 60,
    ).stdout
    line = next(x for x in out.splitlines() if x.startswith("RESULT "))
    result: dict[str, float] = json.loads(line[len("RESULT ") :])
    result["rps"] = result["requests"] / (result["duration_us"] / 1e6)
    result["errors"] = sum(result[k] for k in ("non2xx", "connect", "read", "write", "timeout"))
    return result


def in_process(home: Path, payload: str, count: int = 5000) -> dict[str, float]:
    """decode, verify and answer times per licence, against the service's own index file
    copied (the service keeps it open)."""
    from ledger.chain import connect
    from ledger.config import HomeConfig
    from ledger.index import RegistryIndex
    from ledger.registry import Registry
    from licence.payload import decode_payload
    from verifier.checks import verify
    from verifier.service.live import IndexView

    config = HomeConfig.load(home)
    assert config.registry is not None
    registry = Registry.at(connect(config.chain_url), config.registry)
    index = RegistryIndex(home / "bench-index.sqlite", registry)
    index.sync()
    view = IndexView(index, index.synced_block)
    started = time.perf_counter()
    # An EL2: payload is read with the verifier's own chain and registry.
    deployment = {"chain_id": index.chain_id, "registry": index.registry_address}
    documents = [decode_payload(payload, **deployment) for _ in range(count)]
    decode = (time.perf_counter() - started) / count
    # As in the service: start-up objects frozen out of the collector's way, and each
    # verdict dropped once answered. Kept verdicts would time this script's own garbage
    # collection (a third of the figure) rather than verification.
    gc.collect()
    gc.freeze()
    try:
        # Fresh documents: a document caches its licence id once computed.
        started = time.perf_counter()
        valid = sum(verify(d, view).is_valid for d in documents)
        check = (time.perf_counter() - started) / count
        assert valid == count
        verdicts = [verify(d, view) for d in documents[:1000]]
        started = time.perf_counter()
        for verdict in verdicts:
            json.dumps(verdict.to_json(), ensure_ascii=False).encode()
        answer = (time.perf_counter() - started) / len(verdicts)
    finally:
        gc.unfreeze()
    index.close()
    return {"decode_us": decode * 1e6, "verify_us": check * 1e6, "answer_us": answer * 1e6}


def start_chain(kind: str, home: Path, helpers: list[subprocess.Popen[bytes]]) -> list[str]:
    """anvil with the demo deployed on it, or a free port for the embedded node that
    `elicence serve --demo` starts; the serve arguments that go with it."""
    if kind == "anvil":
        from ledger.chain import connect
        from verifier.service.demo import set_up_demo

        anvil_port = free_port()
        helpers.append(
            subprocess.Popen(
                [str(ANVIL), "--host", "127.0.0.1", "--port", str(anvil_port), "--silent"]
            )
        )
        time.sleep(1.0)
        chain_url = f"http://127.0.0.1:{anvil_port}"
        set_up_demo(home, connect(chain_url, faucet_key=ANVIL_FAUCET_KEY))
        return ["--chain", chain_url]
    from ledger.config import HomeConfig

    HomeConfig(chain_url=f"http://127.0.0.1:{free_port()}").save(home)
    return []


def start_store(kind: str) -> tuple[list[str], Callable[[], None]]:
    """The service's `--database` arguments for the store `kind`, and what stops it."""
    if kind == "sqlite":
        return [], lambda: None
    # A folder of its own: the server runs as the postgres user, who cannot enter `work`.
    folder = Path(tempfile.mkdtemp(prefix="elicence-bench-pg-"))
    server = start_server(folder)

    def stop() -> None:
        server.stop()
        shutil.rmtree(folder, ignore_errors=True)

    return ["--database", server.create_database()], stop


def options() -> argparse.Namespace:
    """The command line's options."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--chain", choices=("embedded", "anvil"), default="embedded")
    parser.add_argument("--duration", type=int, default=10, help="seconds per wrk run")
    parser.add_argument(
        "--workers", type=int, default=os.cpu_count() or 1, help="service worker processes"
    )
    parser.add_argument(
        "--database",
        choices=("sqlite", "postgresql"),
        default="sqlite",
        help="where keys, rate limits and the audit log live: SQLite files in the home, or "
        "a throw-away PostgreSQL server started for the run (tests/postgres.py)",
    )
    return parser.parse_args()


def main() -> None:
    args = options()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is missing: ./scripts/bench_api installs it")
    work = Path(tempfile.mkdtemp(prefix="elicence-bench-"))
    home = work / "home"
    home.mkdir()
    helpers: list[subprocess.Popen[bytes]] = []
    chain_args = start_chain(args.chain, home, helpers)
    store_args, stop_store = start_store(args.database)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {**os.environ, "ELICENCE_HOME": str(home)}
    service = subprocess.Popen(
        [
            str(ELICENCE),
            "serve",
            "--home",
            str(home),
            "--port",
            str(port),
            "--demo",
            "--log-level",
            "warning",
            "--workers",
            str(args.workers),
            *chain_args,
            *store_args,
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=(work / "service.log").open("wb"),
        start_new_session=True,
    )
    try:
        wait_ready(url, service)
        key = subprocess.run(
            [
                str(ELICENCE),
                "apikey",
                "create",
                "--home",
                str(home),
                "--name",
                "bench",
                "--rate",
                "1000000",
                *store_args,
            ],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        # Every VALID demo licence (business and food) in turn, so that no answer is
        # the same request as the one before it.
        bodies = []
        for path in sorted((home / "demo" / "qr").glob("*.el1")):
            body = json.dumps({"qr": path.read_text().strip(), "purpose": "bench"})
            request = urllib.request.Request(
                url + "/v1/verifications",
                body.encode(),
                method="POST",
                headers={"Content-Type": "application/json", "Authorization": f"Bearer {key}"},
            )
            with urllib.request.urlopen(request, timeout=10) as answer:
                if json.loads(answer.read())["status"] == "VALID":
                    bodies.append(body)
        assert bodies, "no VALID demo licence"
        payload = json.loads(bodies[0])["qr"]
        script = work / "verify.lua"
        script.write_text(LUA.format(bodies=", ".join(json.dumps(b) for b in bodies), key=key))
        wrk(url, script, 32, 2)  # warm-up
        rows = []
        for connections in (32, 320):
            r = wrk(url, script, connections, args.duration)
            rows.append(
                f"| {args.chain} | {args.database} | {connections} | {r['rps']:,.0f} | "
                f"{r['p50'] / 1000:.1f} | "
                f"{r['p90'] / 1000:.1f} | {r['p99'] / 1000:.1f} | {int(r['errors'])} |"
            )
        with urllib.request.urlopen(url + "/metrics", timeout=10) as answer:
            checks = [
                line
                for line in answer.read().decode().splitlines()
                if line.startswith("elicence_head_checks_total ")
            ]
        times = in_process(home, payload)
    finally:
        os.killpg(service.pid, signal.SIGTERM)
        service.wait(timeout=30)
        for helper in helpers:
            helper.terminate()
            helper.wait(timeout=10)
        stop_store()
    print(f"{args.workers} worker(s), {len(bodies)} licences in turn, {os.cpu_count()} CPUs")
    print("| chain | store | connections | verifications/s | p50 ms | p90 ms | p99 ms | errors |")
    print("|---|---|---|---|---|---|---|---|")
    print("\n".join(rows))
    print(f"head checks made: {checks[0].split()[1] if checks else '?'}")
    print(
        f"in process, per licence: decode EL2 payload {times['decode_us']:.0f} µs, "
        f"verify {times['verify_us']:.0f} µs, verdict JSON {times['answer_us']:.0f} µs"
    )
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
