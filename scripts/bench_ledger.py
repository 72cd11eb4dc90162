"""Measure the ledger: see scripts/bench_ledger. Prints a Markdown table."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from eth_account import Account  # noqa: E402

from issuer.batch import wrap_batch  # noqa: E402
from ledger import Registry, connect  # noqa: E402
from ledger.index import RegistryIndex  # noqa: E402
from licence.catalogue import catalogue  # noqa: E402
from licence.document import parse_document  # noqa: E402
from licence.statuses import LeafStatus  # noqa: E402
from tests.conftest import ANVIL, ELICENCE, free_port  # noqa: E402
from tests.conftest import ANVIL_FAUCET_KEY as ANVIL_KEY  # noqa: E402
from tests.samples import AUTHORITY, business_licence  # noqa: E402
from verifier.chain_source import RegistrySource  # noqa: E402
from verifier.checks import verify  # noqa: E402

BUSINESS = catalogue().get("business-licence")


def rpc(url: str, method: str, params: list[object]) -> object:
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}).encode()
    request = urllib.request.Request(url, body, {"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=600) as response:
        return json.loads(response.read())["result"]


def start_node(home: Path, port: int) -> tuple[subprocess.Popen[bytes], float]:
    """Start `elicence ledger serve`; the seconds until it answers eth_blockNumber."""
    began = time.perf_counter()
    process = subprocess.Popen(
        # --dev: the benchmark mines on demand and deploys from a fresh key.
        [str(ELICENCE), "ledger", "serve", "--home", str(home), "--port", str(port), "--dev"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    while True:
        try:
            rpc(url, "eth_blockNumber", [])
            return process, time.perf_counter() - began
        except OSError:
            if process.poll() is not None or time.perf_counter() - began > 120:
                raise RuntimeError("node did not start") from None
            time.sleep(0.02)


def stop(process: subprocess.Popen[bytes]) -> None:
    process.send_signal(signal.SIGTERM)
    process.wait(timeout=60)


def startup_against_length(work: Path, lengths: list[int]) -> list[tuple[int, float, float]]:
    """(blocks, seconds to mine them, start-up seconds with them behind)."""
    home = work / "startup-home"
    port = free_port()
    rows = []
    mined = 0
    for length in lengths:
        process, _ = start_node(home, port)
        url = f"http://127.0.0.1:{port}"
        began = time.perf_counter()
        while mined < length:
            step = min(1_000, length - mined)
            rpc(url, "evm_mine", [step])
            mined += step
        mining = time.perf_counter() - began
        stop(process)
        starts = []
        for _ in range(3):
            process, seconds = start_node(home, port)
            starts.append(seconds)
            stop(process)
        rows.append((length, mining, statistics.median(starts)))
    return rows


def deployed(url: str, faucet: str | None) -> tuple[Registry, object]:
    chain = connect(url, faucet_key=faucet)
    governor, agency = Account.create(), Account.create()
    if chain.faucet is not None:
        for account in (governor, agency):
            chain.fund(account.address, 10**21)
    registry = Registry.deploy(chain, governor)
    registry.publish_licence_types(governor, [BUSINESS])
    registry.register_agency(governor, "91110108551385082Q", AUTHORITY, agency.address, [1])
    return registry, agency


def transactions_per_second(registry: Registry, agency: object, count: int) -> float:
    began = time.perf_counter()
    for i in range(count):
        registry.anchor(agency, (10_000_000 + i).to_bytes(16, "big"), 1, 1)  # type: ignore[arg-type]
    return count / (time.perf_counter() - began)


def index_sync_rate(
    registry: Registry, agency: object, work: Path, anchors: int
) -> tuple[int, float]:
    """Make `anchors` anchors and as many single status changes, then sync an index from
    nothing: (events, events per second)."""
    for i in range(anchors):
        root = (20_000_000 + i).to_bytes(16, "big")
        registry.anchor(agency, root, 1, 1)  # type: ignore[arg-type]
        registry.set_statuses(agency, root, [root], LeafStatus.SUSPENDED, 9)  # type: ignore[arg-type]
    path = work / f"index-{registry.address}.sqlite"
    began = time.perf_counter()
    report = RegistryIndex(path, registry).sync()
    return report.events, report.events / (time.perf_counter() - began)


def verify_costs(registry: Registry, agency: object, work: Path, count: int) -> tuple[float, float]:
    """Microseconds per verification: from the index, and by chain calls."""
    chain = registry.chain
    batch = wrap_batch(
        BUSINESS,
        [business_licence(i) for i in range(count)],
        chain_id=chain.chain_id,
        registry=registry.address,
    )
    registry.anchor(agency, batch.root, 1, count)  # type: ignore[arg-type]
    raw = [d.to_json() for d in batch.documents]
    index = RegistryIndex(work / f"verify-index-{registry.address}.sqlite", registry)
    index.sync()
    by_chain = RegistrySource(registry)

    def per_licence(source: object) -> float:
        documents = [parse_document(r) for r in raw]  # fresh: no hashes cached
        began = time.perf_counter()
        for document in documents:
            assert verify(document, source).is_valid  # type: ignore[arg-type]
        return (time.perf_counter() - began) / len(documents) * 1e6

    return per_licence(index), per_licence(by_chain)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke run")
    args = parser.parse_args()
    lengths = [0, 1_000] if args.quick else [0, 1_000, 10_000]
    tx_count, anchors, verify_count = (20, 20, 50) if args.quick else (200, 500, 1_000)
    work = Path(tempfile.mkdtemp(prefix="bench-ledger-"))
    try:
        rows = startup_against_length(work, lengths)
        print("| blocks behind | mining them (s) | node start-up, median of 3 (s) |")
        print("|---|---|---|")
        for length, mining, start in rows:
            print(f"| {length:,} | {mining:.1f} | {start:.2f} |")

        node_port = free_port()
        node, _ = start_node(work / "bench-home", node_port)
        anvil_port = free_port()
        anvil = subprocess.Popen(
            [str(ANVIL), "--host", "127.0.0.1", "--port", str(anvil_port), "--silent"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        time.sleep(1.5)
        try:
            print()
            print(
                "| chain | anchors/s, one sender | index sync: events | events/s "
                "| verify from index (µs) | verify by chain calls (µs) |"
            )
            print("|---|---|---|---|---|---|")
            for name, url, faucet in (
                ("embedded node (HTTP)", f"http://127.0.0.1:{node_port}", None),
                ("anvil 1.7.1 (HTTP)", f"http://127.0.0.1:{anvil_port}", ANVIL_KEY),
            ):
                registry, agency = deployed(url, faucet)
                tps = transactions_per_second(registry, agency, tx_count)
                events, rate = index_sync_rate(registry, agency, work, anchors)
                from_index, by_calls = verify_costs(registry, agency, work, verify_count)
                print(
                    f"| {name} | {tps:.1f} | {events:,} | {rate:,.0f} | {from_index:.0f} "
                    f"| {by_calls:,.0f} |"
                )
        finally:
            stop(node)
            anvil.terminate()
            anvil.wait(timeout=30)
        print()
        quick = " --quick" if args.quick else ""
        print(f"measured {dt.date.today()} with `scripts/bench_ledger{quick}`")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
