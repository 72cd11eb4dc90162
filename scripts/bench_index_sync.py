"""Measure index sync from anvil: see scripts/bench_index_sync. Prints a Markdown table."""

from __future__ import annotations

import argparse
import datetime as dt
import http.client
import json
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from eth_utils.abi import function_signature_to_4byte_selector  # noqa: E402

from ledger import Registry, connect  # noqa: E402
from ledger.index import RegistryIndex  # noqa: E402
from ledger.snapshot import export_snapshot, import_snapshot  # noqa: E402
from licence.catalogue import catalogue  # noqa: E402
from licence.statuses import LeafStatus  # noqa: E402
from tests.conftest import ANVIL, ANVIL_FAUCET_KEY, free_port, key_for  # noqa: E402

# Events per mined block: anvil's cost per block grows with the registry's state (it
# copies it for each block), so fewer, fuller blocks keep generation from slowing down.
PER_BLOCK = 2_000
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


def forwarder_code(target: str) -> str:
    """Init code of a minimal forwarder: its calldata is a sequence of (2-byte length,
    call) records, each sent to `target` in order, the first failure reverting all.
    Assembled here (two dozen opcodes) so that the benchmark needs no compiler."""
    label, ref = "label", "ref"  # ("label", name) marks a JUMPDEST; ("ref", name) its PUSH2
    program: list[int | tuple[str, str]] = [
        0x60, 0x00,  # PUSH1 0: p
        (label, "loop"), 0x36, 0x81, 0x10, 0x15, (ref, "end"), 0x57,  # while p < calldatasize
        0x80, 0x35, 0x60, 0xF0, 0x1C,  # len = calldataload(p) >> 240
        0x80, 0x60, 0x02, 0x83, 0x01, 0x60, 0x00, 0x37,  # calldatacopy(0, p + 2, len)
        0x60, 0x00, 0x60, 0x00, 0x82, 0x60, 0x00, 0x60, 0x00,  # ret 0,0; args 0,len; value 0
        0x73, *bytes.fromhex(target.removeprefix("0x")), 0x5A, 0xF1,  # call(gas, target, ...)
        0x15, (ref, "fail"), 0x57,  # a failed call reverts with its reason
        0x60, 0x02, 0x01, 0x01, (ref, "loop"), 0x56,  # p += 2 + len
        (label, "end"), 0x00,
        (label, "fail"), 0x3D, 0x60, 0x00, 0x60, 0x00, 0x3E, 0x3D, 0x60, 0x00, 0xFD,
    ]  # fmt: skip
    labels: dict[str, int] = {}
    size = 0
    for item in program:
        if isinstance(item, tuple):
            if item[0] == label:
                labels[item[1]] = size
            size += 1 if item[0] == label else 3
        else:
            size += 1
    runtime = bytearray()
    for item in program:
        if isinstance(item, int):
            runtime.append(item)
        elif item[0] == label:
            runtime.append(0x5B)  # JUMPDEST
        else:
            runtime += bytes([0x61]) + labels[item[1]].to_bytes(2, "big")  # PUSH2
    # PUSH2 size, DUP1, PUSH2 13, PUSH1 0, CODECOPY, PUSH1 0, RETURN: 13 bytes of init.
    init = bytes([0x61, *len(runtime).to_bytes(2, "big"), 0x80, 0x61, 0x00, 0x0D, 0x60, 0x00])
    init += bytes([0x39, 0x60, 0x00, 0xF3])
    return "0x" + init.hex() + runtime.hex()


class Generator:
    """Registry events made cheaply. Anvil's unlocked dev accounts send, so anvil signs;
    calldata is encoded by hand (fixed layouts, no eth_abi per call); a block's
    transactions go as one JSON-RPC batch written as text over one kept-alive
    connection, and a block is mined every PER_BLOCK events.

    Per 100 events: 10 anchors, 85 single revocations and 5 bulk suspensions of
    LEAVES_PER_BULK leaves (one LeafStatusesChanged log each), so 125 status changes.
    With ``per_tx`` 1 each event is its own transaction to the registry (the agencies'
    signers are the dev accounts); with more, an agency's signer is a forwarder contract
    (:func:`forwarder_code`) and one transaction carries ``per_tx`` registry calls, so
    anvil's per-transaction cost (~240 µs, most of the generation time) is paid once per
    ``per_tx`` events. The logs are the same registry logs either way; only how many
    share a transaction hash differs."""

    def __init__(
        self, rpc: Rpc, registry: Registry, senders: list[tuple[str, str]], per_tx: int
    ) -> None:
        self.rpc = rpc
        self.registry = registry
        self.senders = senders  # (account that sends, address the registry sees)
        self.per_tx = per_tx
        self.nonces = {s: int(rpc("eth_getTransactionCount", s, "pending"), 16) for s, _ in senders}
        self.selectors = {
            name: function_signature_to_4byte_selector(signature).hex()
            for name, signature in (
                ("anchor", "anchor(bytes16,uint16,uint16,uint32)"),
                ("revoke", "revoke(bytes16,bytes16,uint8)"),
                ("bulk", "setStatuses(bytes16,bytes16[],uint8,uint8)"),
            )
        }
        self.made = 0
        self.leaves = 0
        self.sample: list[tuple[bytes, bytes]] = []  # (root, leaf) revoked, for checks
        self._next_id = 1
        parts = urllib.parse.urlsplit(rpc.url)
        self._connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=600)

    def _id(self) -> str:
        """A fresh bytes16 id as the 64 hex characters of its ABI word."""
        self._next_id += 1
        return f"e1{self._next_id:030x}" + "0" * 32

    def _group(self) -> tuple[int, list[str]]:
        """Calldata of the next 100 events (one agency's), and which sender makes them."""
        sender = (self.made // 100) % len(self.senders)
        calls: list[str] = []
        root = ""
        for n in range(100):
            if n % 10 == 0:
                root = self._id()
                # type 1, version 1, 1,000 licences
                calls.append(self.selectors["anchor"] + root + f"{1:064x}" * 2 + f"{1000:064x}")
            elif n % 20 == 1:
                leaves = "".join(self._id() for _ in range(LEAVES_PER_BULK))
                calls.append(
                    self.selectors["bulk"] + root + f"{0x80:064x}"
                    + f"{int(LeafStatus.SUSPENDED):064x}" + f"{9:064x}"
                    + f"{LEAVES_PER_BULK:064x}" + leaves
                )  # fmt: skip
                self.leaves += LEAVES_PER_BULK
            else:
                leaf = self._id()
                calls.append(self.selectors["revoke"] + root + leaf + f"{1:064x}")
                self.leaves += 1
                if (self.made + n) % 997 == 2:
                    self.sample.append((bytes.fromhex(root[:32]), bytes.fromhex(leaf[:32])))
        self.made += 100
        return sender, calls

    def _transactions(self, groups: int) -> list[tuple[str, str, str, int]]:
        """(from, to, data, gas) of the next `groups` groups of 100 events."""
        txs: list[tuple[str, str, str, int]] = []
        for _ in range(groups):
            sender, calls = self._group()
            account, signer = self.senders[sender]
            if self.per_tx == 1:
                txs += [(account, self.registry.address, data, GAS) for data in calls]
                continue
            for first in range(0, len(calls), self.per_tx):
                chunk = calls[first : first + self.per_tx]
                data = "".join(f"{len(c) // 2:04x}" + c for c in chunk)
                txs.append((account, signer, data, GAS * len(chunk) // 2))
        return txs

    def _send(self, body: str) -> bytes:
        self._connection.request("POST", "/", body.encode(), {"Content-Type": "application/json"})
        return self._connection.getresponse().read()

    def make(self, total: int, deadline: float) -> None:
        """Add events until `total` exist (or the deadline passes), printing progress."""
        began, start = time.perf_counter(), self.made
        last = began
        fees = f'"maxFeePerGas":"{hex(10**10)}","maxPriorityFeePerGas":"{hex(10**9)}"'
        while self.made < total and time.perf_counter() < deadline:
            # Whole groups of 100, so that every revocation follows its anchor.
            groups = max(1, min(PER_BLOCK, total - self.made) // 100)
            items = []
            for k, (account, to, data, gas) in enumerate(self._transactions(groups)):
                nonce = self.nonces[account]
                self.nonces[account] = nonce + 1
                items.append(
                    f'{{"jsonrpc":"2.0","id":{k},"method":"eth_sendTransaction","params":'
                    f'[{{"from":"{account}","to":"{to}","data":"0x{data}","nonce":"{hex(nonce)}",'
                    f'"gas":"{hex(gas)}",{fees}}}]}}'
                )
            answers = json.loads(self._send("[" + ",".join(items) + "]"))
            refused = [a for a in answers if "error" in a]
            if refused:
                raise RuntimeError(f"anvil refused a transaction: {refused[0]}")
            self._send('{"jsonrpc":"2.0","id":1,"method":"evm_mine","params":[]}')
            if self.per_tx > 1:  # a forwarder's failure reverts its calls without a word
                receipts = self.rpc.post(
                    [
                        {"jsonrpc": "2.0", "id": k, "method": "eth_getTransactionReceipt",
                         "params": [a["result"]]}
                        for k, a in enumerate(answers)
                    ]
                )  # fmt: skip
                failed = [r for r in receipts if r["result"]["status"] != "0x1"]
                if failed:
                    raise RuntimeError(f"a generated transaction failed: {failed[0]}")
            now = time.perf_counter()
            if now - last > 15 or self.made >= total:
                rate = (self.made - start) / (now - began)
                print(
                    f"  generated {self.made:,} events ({rate:,.0f}/s)", file=sys.stderr, flush=True
                )
                last = now


def start_anvil(state: Path | None = None) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    command = [
        str(ANVIL), "--host", "127.0.0.1", "--port", str(port), "--silent",
        "--gas-limit", str(GAS * PER_BLOCK * 4), "--accounts", "4",
        # Keeping every block's state in memory made anvil grow by ~13 MiB a block (4 GiB
        # at 150,000 events) and slow down as it grew; logs and blocks are kept anyway.
        "--prune-history", "16",
    ]  # fmt: skip
    if state is not None:
        # Loaded if the file exists, written when anvil stops: a rerun need not regenerate.
        command += ["--state", str(state)]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    for _ in range(6000):
        try:
            Rpc(url)("eth_blockNumber")
            return process, url
        except OSError:
            time.sleep(0.05)
    process.kill()
    raise RuntimeError("anvil did not start")


def setup(url: str, per_tx: int) -> tuple[Rpc, Registry, Generator, int]:
    rpc = Rpc(url)
    chain = connect(url, faucet_key=ANVIL_FAUCET_KEY)
    governor = key_for("bench-index-governor")
    chain.fund(governor.address, 10**21)
    registry = Registry.deploy(chain, governor)
    accounts = rpc("eth_accounts")[1:3]
    senders = [(a, a) for a in accounts]
    if per_tx > 1:
        senders = []
        for account in accounts:
            code = forwarder_code(registry.address)
            sent = rpc("eth_sendTransaction", {"from": account, "data": code})
            receipt = rpc("eth_getTransactionReceipt", sent)
            if receipt is None:  # not mined at once: mine it
                rpc("evm_mine")
                receipt = rpc("eth_getTransactionReceipt", sent)
            deployed = rpc("eth_getCode", receipt["contractAddress"], "latest")
            if receipt["status"] != "0x1" or deployed == "0x":
                raise RuntimeError(f"the forwarder was not deployed: {receipt}")
            senders.append((account, receipt["contractAddress"]))
    codes = ("91110108551385082Q", "91310115000000001U")
    registry.publish_licence_types(governor, [catalogue().by_code(1)])
    for number, ((_, signer), code) in enumerate(zip(senders, codes, strict=True), 1):
        registry.register_agency(governor, code, f"基准测试局 {number}", signer, [1])
    rpc("evm_setAutomine", False)
    return rpc, registry, Generator(rpc, registry, senders, per_tx), len(senders) * 2 + 3


def child(argv: list[str]) -> None:
    """Run in a fresh interpreter, as a new replica would (and with the code as it is
    now, the same for every step): `sync URL REGISTRY SAMPLE INDEX [SNAPSHOT]` syncs a
    fresh index and exports it; `import URL REGISTRY SAMPLE SNAPSHOT INDEX` imports the
    snapshot and catches up. Both check the SAMPLE leaves (JSON) against the chain's own
    views, and print events, seconds and peak RSS as JSON."""
    import resource

    kind, url, address, sample_file, *paths = argv
    began, cpu = time.perf_counter(), time.process_time()
    registry = Registry.at(connect(url), address)
    if kind == "import":
        import_snapshot(Path(paths[0]), Path(paths[1]), registry)
        paths = paths[1:]
    index = RegistryIndex(Path(paths[0]), registry)
    report = index.sync()
    seconds = time.perf_counter() - began
    cpu = time.process_time() - cpu
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    for root, leaf in json.loads(Path(sample_file).read_text())[:50]:
        root_b, leaf_b = bytes.fromhex(root), bytes.fromhex(leaf)
        state = index.status_of(root_b, leaf_b)
        assert state == registry.status_of(root_b, leaf_b), (root, leaf)
        assert state.status is LeafStatus.REVOKED, (root, leaf)
    answer = {"events": report.events, "seconds": seconds, "cpu_seconds": cpu, "peak_rss": peak}
    answer["leaves"] = index.counts()["changedLeaves"]
    if kind == "sync" and len(paths) > 1:
        began = time.perf_counter()
        export_snapshot(index.path, Path(paths[1]))
        answer["export_seconds"] = time.perf_counter() - began
    index.close()
    print(json.dumps(answer))


def in_child(generator: Generator, work: Path, *argv: str) -> dict[str, Any]:
    """`child(argv)` in a new Python process; its answer, plus its whole wall time
    (interpreter and imports included)."""
    sample = work / "sample.json"
    sample.write_text(json.dumps([[r.hex(), leaf.hex()] for r, leaf in generator.sample]))
    began = time.perf_counter()
    done = subprocess.run(
        [sys.executable, __file__, "--child", argv[0], argv[1], argv[2], str(sample), *argv[3:]],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"{argv[0]} failed: {done.stderr[-2000:]}")
    answer: dict[str, Any] = json.loads(done.stdout.splitlines()[-1])
    answer["process_seconds"] = time.perf_counter() - began
    return answer


def main() -> None:
    if sys.argv[1:2] == ["--child"]:
        child(sys.argv[2:])
        return
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
        "--per-tx",
        type=int,
        default=100,
        help="registry calls per generated transaction, through a forwarder contract "
        "(1: one transaction per event, ~5 times slower to generate)",
    )
    parser.add_argument(
        "--minutes", type=float, default=40, help="give up generating events after this long"
    )
    parser.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="sync each size this many times from nothing (on a shared machine the "
        "fastest shows what the indexer can do, the slowest what the load costs)",
    )
    args = parser.parse_args()
    sizes = sorted(args.events or [100_000, 1_000_000])
    work = Path(tempfile.mkdtemp(prefix="bench-index-sync-"))
    process, url = start_anvil()
    deadline = time.perf_counter() + args.minutes * 60
    rows: list[str] = []
    try:
        _, registry, generator, setup_events = setup(url, args.per_tx)
        for size in sizes:
            began = time.perf_counter()
            generator.make(size, deadline)
            made = time.perf_counter() - began
            if generator.made < size:
                rows.append(
                    f"| {size:,} | not reached: {generator.made:,} events generated in "
                    f"{args.minutes:g} min | | | | | |"
                )
                break
            path = work / f"index-{size}.sqlite"
            snapshot = work / f"snapshot-{size}.elidx"
            extra = [str(snapshot)] if args.snapshot else []
            runs = []
            for _ in range(max(1, args.repeat)):
                path.unlink(missing_ok=True)
                runs.append(
                    in_child(generator, work, "sync", url, registry.address, str(path), *extra)
                )
            answer = min(runs, key=lambda run: float(run["seconds"]))
            events, seconds = answer["events"], answer["seconds"]
            if len(runs) > 1:
                walls = ", ".join(f"{run['seconds']:.1f}" for run in runs)
                print(f"  {size:,}: syncs took {walls} s", file=sys.stderr, flush=True)
            row = (
                f"| {size:,} ({generator.leaves:,} status changes; generated in {made:,.0f} s) "
                f"| {events:,} | {seconds:.1f} | {events / seconds:,.0f} "
                f"| {answer['cpu_seconds']:.1f} ({events / answer['cpu_seconds']:,.0f}/CPU-s) "
                f"| {answer['peak_rss'] / 2**20:,.0f} MiB "
                f"| {answer['leaves']:,} leaves, {path.stat().st_size / 2**20:,.0f} MiB"
            )
            if args.snapshot:
                row += " | " + snapshot_row(url, registry, generator, answer, snapshot, work)
            rows.append(row + " |")
            print(row + " |", file=sys.stderr, flush=True)
            path.unlink()
    finally:
        process.terminate()
        process.wait(timeout=60)
        shutil.rmtree(work, ignore_errors=True)
    print_table(rows, snapshot=args.snapshot, repeat=args.repeat)
    print()
    flags = "".join(f" --events {n}" for n in sizes) + (" --snapshot" if args.snapshot else "")
    flags += f" --per-tx {args.per_tx}" if args.per_tx != 100 else ""
    flags += f" --repeat {args.repeat}" if args.repeat > 1 else ""
    print(
        f"`./scripts/bench_index_sync{flags}` on {dt.date.today().isoformat()}; "
        f"{args.per_tx} registry call(s) per transaction; {setup_events} set-up events "
        "(deployment, agencies) come on top."
    )


def print_table(rows: list[str], *, snapshot: bool, repeat: int) -> None:
    fastest = f", fastest of {repeat}" if repeat > 1 else ""
    print()
    print(
        f"| events on chain | events indexed | sync from nothing (s{fastest}) | events/s "
        "| indexer CPU (s) | peak RSS | index |"
        + (
            " snapshot: export (s), file, import + catch-up (s), whole process (s), peak RSS |"
            if snapshot
            else ""
        )
    )
    print("|---|---|---|---|---|---|---|" + ("---|" if snapshot else ""))
    for row in rows:
        print(row)


def snapshot_row(  # noqa: PLR0917
    url: str,
    registry: Registry,
    generator: Generator,
    synced: dict[str, Any],
    snapshot: Path,
    work: Path,
) -> str:
    """Add 1,000 events to the chain after the snapshot, then time a new replica's
    import of it and its catch-up (in a new process)."""
    generator.make(generator.made + 1_000, float("inf"))
    replica = work / f"replica-{snapshot.stem}.sqlite"
    answer = in_child(generator, work, "import", url, registry.address, str(snapshot), str(replica))
    replica.unlink()
    return (
        f"{synced['export_seconds']:.1f}, {snapshot.stat().st_size / 2**20:,.0f} MiB, "
        f"{answer['seconds']:.1f} ({answer['events']:,} new events; "
        f"{answer['cpu_seconds']:.1f} CPU s), "
        f"{answer['process_seconds']:.1f}, {answer['peak_rss'] / 2**20:,.0f} MiB"
    )


if __name__ == "__main__":
    main()
