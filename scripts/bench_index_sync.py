"""Measure index sync from anvil: see scripts/bench_index_sync. Prints a Markdown table."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import random
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from eth_abi.abi import encode  # noqa: E402
from eth_utils.abi import function_signature_to_4byte_selector  # noqa: E402

from ledger import Registry, connect  # noqa: E402
from ledger.index import RegistryIndex  # noqa: E402
from ledger.snapshot import export_snapshot, import_snapshot  # noqa: E402
from licence.statuses import LeafStatus  # noqa: E402
from tests.conftest import ANVIL, ANVIL_FAUCET_KEY, free_port, key_for  # noqa: E402

PER_BLOCK = 500  # transactions per mined block (anvil's pool slows past a few thousand)
PER_REQUEST = 500  # eth_sendTransaction calls per JSON-RPC batch
GAS = 300_000  # given, so that anvil does not estimate every transaction
LEAVES_PER_BULK = 8


class Rpc:
    """Plain JSON-RPC to anvil, batches included."""

    def __init__(self, url: str) -> None:
        self.url = url

    def post(self, body: object) -> Any:
        request = urllib.request.Request(
            self.url, json.dumps(body).encode(), {"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=600) as response:
            return json.loads(response.read())

    def __call__(self, method: str, *params: object) -> Any:
        answer = self.post({"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)})
        if "error" in answer:
            raise RuntimeError(f"{method}: {answer['error']}")
        return answer["result"]


class Generator:
    """Registry events made cheaply: anvil's unlocked dev accounts are the agencies'
    signers, so anvil signs; transactions go in JSON-RPC batches with their gas given,
    and a block is mined every PER_BLOCK transactions. Per 100 events: 10 anchors, 85
    single revocations and 5 bulk suspensions of LEAVES_PER_BULK leaves."""

    def __init__(self, rpc: Rpc, registry: Registry, signers: list[str]) -> None:
        self.rpc = rpc
        self.registry = registry
        self.signers = signers
        self.nonces = {s: int(rpc("eth_getTransactionCount", s, "pending"), 16) for s in signers}
        self.selectors = {
            name: function_signature_to_4byte_selector(signature)
            for name, signature in (
                ("anchor", "anchor(bytes16,uint8,uint32)"),
                ("revoke", "revoke(bytes16,bytes16,uint8)"),
                ("bulk", "setStatuses(bytes16,bytes16[],uint8,uint8)"),
            )
        }
        self.made = 0
        self.leaves = 0
        self.sample: list[tuple[bytes, bytes]] = []  # (root, leaf) revoked, for checks
        self._next_id = 1

    def _id(self) -> bytes:
        self._next_id += 1
        return (0xE1 << 120 | self._next_id).to_bytes(16, "big")

    def _calls(self, count: int) -> list[tuple[str, bytes]]:
        calls: list[tuple[str, bytes]] = []
        signer = self.signers[(self.made // 100) % len(self.signers)]
        root = b""
        for i in range(count):
            n = (self.made + i) % 100
            if n % 10 == 0:
                root = self._id()
                data = self.selectors["anchor"] + encode(
                    ["bytes16", "uint8", "uint32"], [root, 1, 1000]
                )
                signer = self.signers[((self.made + i) // 100) % len(self.signers)]
            elif n % 20 == 1:
                leaves = [self._id() for _ in range(LEAVES_PER_BULK)]
                data = self.selectors["bulk"] + encode(
                    ["bytes16", "bytes16[]", "uint8", "uint8"],
                    [root, leaves, int(LeafStatus.SUSPENDED), 9],
                )
                self.leaves += LEAVES_PER_BULK
            else:
                leaf = self._id()
                data = self.selectors["revoke"] + encode(
                    ["bytes16", "bytes16", "uint8"], [root, leaf, 1]
                )
                self.leaves += 1
                if random.random() < 0.001:
                    self.sample.append((root, leaf))
            calls.append((signer, data))
        return calls

    def make(self, total: int, deadline: float) -> None:
        """Add events until `total` exist (or the deadline passes), printing progress."""
        began, start = time.perf_counter(), self.made
        last = began
        while self.made < total and time.perf_counter() < deadline:
            # Whole groups of 100, so that every revocation follows its anchor.
            count = min(PER_BLOCK, total - self.made)
            count = max(100, count - count % 100)
            calls = self._calls(count)
            for first in range(0, len(calls), PER_REQUEST):
                batch = []
                for k, (signer, data) in enumerate(calls[first : first + PER_REQUEST]):
                    tx = {
                        "from": signer,
                        "to": self.registry.address,
                        "data": "0x" + data.hex(),
                        "gas": hex(GAS),
                        "nonce": hex(self.nonces[signer]),
                        "maxFeePerGas": hex(10**10),
                        "maxPriorityFeePerGas": hex(10**9),
                    }
                    self.nonces[signer] += 1
                    batch.append(
                        {"jsonrpc": "2.0", "id": k, "method": "eth_sendTransaction", "params": [tx]}
                    )
                answers = self.rpc.post(batch)
                refused = [a for a in answers if "error" in a]
                if refused:
                    raise RuntimeError(f"anvil refused a transaction: {refused[0]}")
            self.rpc("evm_mine")
            self.made += count
            now = time.perf_counter()
            if now - last > 15 or self.made >= total:
                rate = (self.made - start) / (now - began)
                print(
                    f"  generated {self.made:,} events ({rate:,.0f}/s)", file=sys.stderr, flush=True
                )
                last = now
        # Every transaction must have succeeded: the last one of each signer is checked
        # (a failure reverts only itself, so one per signer is a sample, not a proof; the
        # index's event count below is the proof).


def start_anvil() -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    process = subprocess.Popen(
        [
            str(ANVIL), "--host", "127.0.0.1", "--port", str(port), "--silent",
            "--gas-limit", str(GAS * PER_BLOCK * 2), "--accounts", "4",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            Rpc(url)("eth_blockNumber")
            return process, url
        except OSError:
            time.sleep(0.05)
    process.kill()
    raise RuntimeError("anvil did not start")


def setup(url: str) -> tuple[Rpc, Registry, Generator, int]:
    rpc = Rpc(url)
    chain = connect(url, faucet_key=ANVIL_FAUCET_KEY)
    governor = key_for("bench-index-governor")
    chain.fund(governor.address, 10**21)
    registry = Registry.deploy(chain, governor)
    signers = rpc("eth_accounts")[1:3]
    codes = ("91110108551385082Q", "91310115000000001U")
    for number, (signer, code) in enumerate(zip(signers, codes, strict=True), 1):
        registry.register_agency(governor, code, f"基准测试局 {number}", signer, [1])
    rpc("evm_setAutomine", False)
    return rpc, registry, Generator(rpc, registry, signers), len(signers) * 2 + 3


def timed_sync(registry: Registry, path: Path) -> tuple[int, float, RegistryIndex]:
    began = time.perf_counter()
    index = RegistryIndex(path, registry)
    report = index.sync()
    return report.events, time.perf_counter() - began, index


def check(index: RegistryIndex, registry: Registry, generator: Generator) -> None:
    """A sample of the revoked leaves reads as the chain's own views say."""
    for root, leaf in generator.sample[:50]:
        assert index.status_of(root, leaf) == registry.status_of(root, leaf), (root, leaf)
        assert index.status_of(root, leaf).status is LeafStatus.REVOKED


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--events",
        type=int,
        action="append",
        help="registry events on the chain before a fresh index syncs (repeatable, "
        "ascending; default 100000 and 1000000)",
    )
    parser.add_argument(
        "--snapshot",
        action="store_true",
        help="also export the synced index, add events, and time import + catch-up",
    )
    parser.add_argument(
        "--minutes", type=float, default=40, help="give up generating events after this long"
    )
    args = parser.parse_args()
    sizes = sorted(args.events or [100_000, 1_000_000])
    work = Path(tempfile.mkdtemp(prefix="bench-index-sync-"))
    process, url = start_anvil()
    deadline = time.perf_counter() + args.minutes * 60
    rows: list[str] = []
    try:
        _, registry, generator, setup_events = setup(url)
        for size in sizes:
            generator.make(size, deadline)
            if generator.made < size:
                rows.append(
                    f"| {size:,} | not reached: {generator.made:,} events generated in "
                    f"{args.minutes:g} min | | | |"
                )
                break
            path = work / f"index-{size}.sqlite"
            events, seconds, index = timed_sync(registry, path)
            check(index, registry, generator)
            row = (
                f"| {size:,} | {events:,} | {seconds:.1f} | {events / seconds:,.0f} "
                f"| {index.counts()['changedLeaves']:,} leaves, "
                f"{path.stat().st_size / 2**20:,.0f} MiB"
            )
            if args.snapshot:
                row += " | " + snapshot_row(registry, generator, index, work, size)
            rows.append(row + " |")
            index.close()
    finally:
        process.terminate()
        process.wait(timeout=60)
        shutil.rmtree(work, ignore_errors=True)
    print()
    print(
        "| events on chain | events indexed | sync from nothing (s) | events/s | index |"
        + (" snapshot: export (s), file, import + catch-up (s) |" if args.snapshot else "")
    )
    print("|---|---|---|---|---|" + ("---|" if args.snapshot else ""))
    for row in rows:
        print(row)
    print()
    flags = "".join(f" --events {n}" for n in sizes) + (" --snapshot" if args.snapshot else "")
    print(
        f"`./scripts/bench_index_sync{flags}` on {dt.date.today().isoformat()}; "
        f"{setup_events} set-up events (deployment, agencies) come on top."
    )


def snapshot_row(
    registry: Registry, generator: Generator, index: RegistryIndex, work: Path, size: int
) -> str:
    """Export `index`, add 1,000 events to the chain, then time a new replica's import of
    the snapshot and its catch-up."""
    snapshot = work / f"snapshot-{size}.elidx"
    began = time.perf_counter()
    export_snapshot(index.path, snapshot)
    exported = time.perf_counter() - began
    generator.make(generator.made + 1_000, float("inf"))
    replica = work / f"replica-{size}.sqlite"
    began = time.perf_counter()
    import_snapshot(snapshot, replica, registry)
    fresh = RegistryIndex(replica, registry)
    report = fresh.sync()
    ready = time.perf_counter() - began
    check(fresh, registry, generator)
    fresh.close()
    size_mib = snapshot.stat().st_size / 2**20
    return f"{exported:.1f}, {size_mib:,.0f} MiB, {ready:.1f} ({report.events:,} new events)"


if __name__ == "__main__":
    main()
