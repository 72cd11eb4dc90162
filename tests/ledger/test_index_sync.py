"""Fast index sync: logs decoded as web3 decodes them, ranges that adapt to what the node
accepts, and a sync cut off half-way that resumes with nothing lost or doubled."""

from __future__ import annotations

import dataclasses
import json
import sqlite3
import threading
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account
from eth_utils.abi import event_abi_to_log_topic

from contracts import load_artifact
from ledger import Registry, connect
from ledger.errors import ChainReadFailed, ChainUnreachable
from ledger.index import RegistryIndex
from ledger.sync import EventDecoder, RangePlanner
from licence.catalogue import LicenceType, catalogue
from licence.statuses import LeafStatus
from tests.conftest import ANVIL_FAUCET_KEY, publish_types

ROOTS = [bytes([0xA0, i]) * 8 for i in range(6)]


def leaf(n: int) -> bytes:
    return (0x1EAF << 112 | n).to_bytes(16, "big")


def busy_registry(url: str) -> tuple[Registry, list[tuple[bytes, bytes]]]:
    """A registry on `url` with every kind of event, spread over many blocks: published
    types (two versions of one), anchors, single and bulk status changes, supersessions,
    a batch revocation, type changes, a key rotation and a compromised key. Returns it
    and the (root, leaf) pairs touched."""
    chain = connect(url, faucet_key=ANVIL_FAUCET_KEY)
    governor, first, second = Account.create(), Account.create(), Account.create()
    for account in (governor, first, second):
        chain.fund(account.address, 10**20)
    registry = Registry.deploy(chain, governor)
    publish_types(registry, governor, {1, 2, 3})
    registry.register_agency(
        governor, "91110108551385082Q", "海淀区市场监督管理局", first.address, [1, 2]
    )
    registry.register_agency(
        governor, "91310115000000001U", "浦东新区市场监督管理局", second.address, [1, 3]
    )
    touched: list[tuple[bytes, bytes]] = []
    registry.anchor(first, ROOTS[0], 1, 100)
    registry.anchor(second, ROOTS[1], 3, 100)
    registry.anchor(first, ROOTS[2], 2, 100)
    registry.publish_licence_type(governor, second_version(1))
    registry.anchor(first, ROOTS[5], 1, 100, type_version=2)
    for n in range(12):
        root = ROOTS[n % 2]
        registry.revoke(first if n % 2 == 0 else second, root, leaf(n), 1 + n % 5)
        touched.append((root, leaf(n)))
    registry.suspend(first, ROOTS[0], leaf(20), 9)
    registry.reinstate(first, ROOTS[0], leaf(20), 2)
    bulk = [leaf(30 + n) for n in range(40)]
    registry.set_statuses(first, ROOTS[2], bulk, LeafStatus.SUSPENDED, 4)
    registry.set_statuses(second, ROOTS[1], bulk[:7], LeafStatus.CANCELLED, 3)
    registry.supersede(first, ROOTS[0], leaf(21), leaf(22), 5)
    touched += [(ROOTS[0], leaf(n)) for n in (20, 21, 22)]
    touched += [(ROOTS[2], b) for b in bulk] + [(ROOTS[1], b) for b in bulk[:7]]
    registry.revoke_batch(governor, ROOTS[2], 7)
    registry.set_agency_types(governor, 2, [1])
    registry.mark_signer_compromised(governor, first.address, registry.chain.block_number())
    rotated = Account.create()
    chain.fund(rotated.address, 10**19)
    registry.rotate_signer(governor, 1, rotated.address)
    registry.anchor(rotated, ROOTS[3], 1, 10)
    registry.revoke(rotated, ROOTS[3], leaf(50), 1)
    touched += [(ROOTS[3], leaf(50)), (ROOTS[2], leaf(99)), (ROOTS[4], leaf(0))]
    registry.retire_agency(governor, 2)
    return registry, touched


def second_version(code: int) -> LicenceType:
    """Version 2 of a shipped type (its definition with another version number)."""
    first = catalogue().by_code(code)
    definition = first.definition.replace(b'"version":1', b'"version":2')
    return dataclasses.replace(first, version=2, definition=definition)


def assert_matches_the_chain(index: RegistryIndex, registry: Registry, touched) -> None:
    published = [(t.code, t.version) for t in index.published_types()]
    assert published == [(1, 1), (1, 2), (2, 1), (3, 1)]
    for code, version in published:
        assert index.licence_type(code, version) == registry.licence_type(code, version)
        definition = index.licence_type_definition(code, version)
        assert definition == registry.licence_type_definition(code, version)
    for code in (1, 2, 3, 4):
        assert index.latest_type_version(code) == registry.latest_type_version(code)
    for agency_id in (1, 2):
        assert index.agency(agency_id) == registry.agency(agency_id)
        for key_number in (1, 2):
            assert index.compromised_from(agency_id, key_number) == registry.compromised_from(
                agency_id, key_number
            )
    for root in ROOTS:
        assert index.anchor_of(root) == registry.anchor_of(root)
    for root, leaf_id in touched:
        assert index.status_of(root, leaf_id) == registry.status_of(root, leaf_id), (root, leaf_id)


def journal(path: Path) -> list[tuple[Any, ...]]:
    db = sqlite3.connect(path)
    try:
        rows = db.execute(
            "SELECT block_number, log_index, tx_hash, name, args FROM events "
            "ORDER BY block_number, log_index"
        ).fetchall()
    finally:
        db.close()
    return [(b, i, t, n, json.loads(a)) for b, i, t, n, a in rows]


def web3_journal(registry: Registry) -> list[tuple[Any, ...]]:
    """The journal as the index wrote it before fast sync: every registry log decoded by
    web3's own process_log."""
    w3 = registry.chain.w3
    contract = w3.eth.contract(abi=list(load_artifact().abi))
    names = {
        "0x" + event_abi_to_log_topic(item).hex(): item["name"]
        for item in load_artifact().abi
        if item["type"] == "event"
    }
    rows = []
    for log in w3.eth.get_logs({"address": registry.address, "fromBlock": 0, "toBlock": "latest"}):
        name = names.get(log["topics"][0].to_0x_hex())
        if name is None:
            continue
        args = contract.events[name]().process_log(log)["args"]
        rows.append(
            (
                log["blockNumber"],
                log["logIndex"],
                log["transactionHash"].to_0x_hex(),
                name,
                {k: _jsonable(v) for k, v in args.items()},
            )
        )
    return rows


def _jsonable(value: Any) -> Any:
    if isinstance(value, bytes):
        return "0x" + value.hex()
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


class RefusingProxy:
    """A JSON-RPC proxy in front of a node that refuses eth_getLogs over more than
    `max_blocks` blocks, as Besu does past its --rpc-max-logs-range (or every one, or
    fails with HTTP 503 after `fail_after` of them)."""

    def __init__(self, upstream: str, max_blocks: int, fail_after: int | None = None) -> None:
        self.upstream, self.max_blocks, self.fail_after = upstream, max_blocks, fail_after
        self.ranges: list[tuple[int, int, bool]] = []  # (low, high, answered)
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                status, answer = proxy.answer(body)
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def answer(self, body: bytes) -> tuple[int, bytes]:
        request = json.loads(body)
        if isinstance(request, dict) and request.get("method") == "eth_getLogs":
            query = request["params"][0]
            low, high = int(query["fromBlock"], 16), int(query["toBlock"], 16)
            gets = sum(1 for r in self.ranges if r[2])
            if self.fail_after is not None and gets >= self.fail_after:
                return 503, b"{}"
            if high - low + 1 > self.max_blocks:
                self.ranges.append((low, high, False))
                error = {"code": -32005, "message": "Requested range exceeds maximum range limit"}
                return 200, json.dumps(
                    {"jsonrpc": "2.0", "id": request["id"], "error": error}
                ).encode()
            self.ranges.append((low, high, True))
        forwarded = urllib.request.Request(
            self.upstream, body, {"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(forwarded, timeout=30) as response:
            return 200, response.read()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def busy(anvil_url: str) -> tuple[Registry, list[tuple[bytes, bytes]]]:
    return busy_registry(anvil_url)


@pytest.fixture
def proxy_factory() -> Iterator[Any]:
    made: list[RefusingProxy] = []

    def make(upstream: str, max_blocks: int, fail_after: int | None = None) -> RefusingProxy:
        made.append(RefusingProxy(upstream, max_blocks, fail_after))
        return made[-1]

    yield make
    for proxy in made:
        proxy.close()


def through(proxy: RefusingProxy, registry: Registry) -> Registry:
    return Registry.at(connect(proxy.url), registry.address)


pytestmark = pytest.mark.anvil


def test_fast_sync_writes_the_journal_web3_decodes_and_the_state_the_views_report(tmp_path, busy):
    registry, touched = busy
    index = RegistryIndex(tmp_path / "index.sqlite", registry)
    report = index.sync()
    assert report.events == len(web3_journal(registry))
    assert journal(tmp_path / "index.sqlite") == web3_journal(registry)
    assert_matches_the_chain(index, registry, touched)
    assert index.status_of(ROOTS[2], leaf(99)).batch_revoked is True
    assert index.anchor_of(ROOTS[3]).key_number == 2


def test_reopened_index_reads_its_state_from_the_file_without_the_chain(tmp_path, busy):
    registry, touched = busy
    path = tmp_path / "index.sqlite"
    RegistryIndex(path, registry).sync()
    reopened = RegistryIndex(path, registry)
    assert_matches_the_chain(reopened, registry, touched)


def test_decoder_reads_every_event_kind_as_web3_does(busy):
    registry, _ = busy
    decoder = EventDecoder(load_artifact().abi)
    raw = registry.chain.w3.provider.make_request(
        "eth_getLogs", [{"address": registry.address, "fromBlock": "0x0", "toBlock": "latest"}]
    )["result"]
    decoded = [decoder.decode(log) for log in raw]
    got = [(e.block_number, e.log_index, e.tx_hash, e.name, e.args) for e in decoded if e]
    assert got == web3_journal(registry)
    assert {row[3] for row in got} >= {
        "AgencyRegistered", "BatchAnchored", "LeafStatusChanged", "LeafStatusesChanged",
        "LeafSuperseded", "BatchRevoked", "SignerCompromised", "SignerRotated",
        "AgencyTypeAuthorised", "AgencyRetired", "LicenceTypePublished",
    }  # fmt: skip


def test_node_refusing_large_ranges_is_asked_for_smaller_ones(tmp_path, busy, proxy_factory):
    registry, touched = busy
    proxy = proxy_factory(registry.chain.url, max_blocks=3)
    index = RegistryIndex(tmp_path / "index.sqlite", through(proxy, registry))
    index.sync()
    assert journal(tmp_path / "index.sqlite") == web3_journal(registry)
    assert_matches_the_chain(index, registry, touched)
    refused = [r for r in proxy.ranges if not r[2]]
    assert refused, "the first range asked for was larger than the node allows"
    # Once refused, the index never asks for as many blocks again.
    after = proxy.ranges[proxy.ranges.index(refused[-1]) + 1 :]
    assert after and all(high - low + 1 <= 3 for low, high, _ in after)


def test_node_refusing_a_single_block_stops_sync_with_a_named_error(tmp_path, busy, proxy_factory):
    registry, _ = busy
    proxy = proxy_factory(registry.chain.url, max_blocks=0)
    index = RegistryIndex(tmp_path / "index.sqlite", through(proxy, registry))
    with pytest.raises(ChainReadFailed, match="refuses the logs of block 0"):
        index.sync()
    assert index.synced_block == -1


def test_sync_cut_off_half_way_resumes_with_nothing_lost_or_doubled(tmp_path, busy, proxy_factory):
    registry, touched = busy
    path = tmp_path / "index.sqlite"
    proxy = proxy_factory(registry.chain.url, max_blocks=2, fail_after=4)
    cut = RegistryIndex(path, through(proxy, registry))
    with pytest.raises(ChainUnreachable):
        cut.sync()
    assert 0 < cut.synced_block < registry.chain.block_number()
    cut.close()
    # A new process on the same file: it goes on from the last committed range.
    resumed = RegistryIndex(path, registry)
    report = resumed.sync()
    assert report.from_block == cut.synced_block + 1
    assert journal(path) == web3_journal(registry)
    assert_matches_the_chain(resumed, registry, touched)


def test_failed_commit_leaves_memory_as_the_file_is(tmp_path, busy):
    registry, touched = busy
    path = tmp_path / "index.sqlite"
    index = RegistryIndex(path, registry, step=2)
    middle = registry.chain.block_number() // 2
    # The disk fails (as when full) while a range past the middle is written.
    db = sqlite3.connect(path)
    db.execute(
        f"CREATE TRIGGER full_disk BEFORE INSERT ON leaves WHEN NEW.block_number > {middle} "
        "BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END"
    )
    db.commit()
    with pytest.raises(sqlite3.DatabaseError, match="disk is full"):
        index.sync()
    # Stopped at the range that failed: past the middle only as far as the first range
    # that changes a leaf there, never at the head.
    assert 0 < index.synced_block < registry.chain.block_number()
    reread = RegistryIndex(path, registry)
    assert index.synced_block == reread.synced_block
    assert index.counts() == reread.counts()
    db.execute("DROP TRIGGER full_disk")
    db.commit()
    db.close()
    index.sync()
    assert_matches_the_chain(index, registry, touched)
    assert journal(path) == web3_journal(registry)


@pytest.mark.parametrize(
    ("blocks", "logs", "span"),
    [
        (16, 0, 128),  # empty: grow, at most 8x
        (16, 2_500, 32),  # half the target: grow toward it
        (16, 5_000, 16),  # on target: keep
        (16, 40_000, 2),  # far over: shrink to the target's share
        (1, 40_000, 1),  # one block can only be one block
    ],
)
def test_range_adapts_to_the_density_of_the_chain(blocks, logs, span):
    planner = RangePlanner(first=blocks, ceiling=100_000, target=5_000)
    planner.answered(blocks, logs)
    assert planner.span == span


def test_refused_range_is_halved_and_never_asked_again():
    planner = RangePlanner(first=1_000, ceiling=100_000)
    assert planner.refused(1_000) is True
    planner.answered(500, 0)
    assert planner.span == 500
    assert planner.refused(1) is False
