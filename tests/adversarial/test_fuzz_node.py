"""Fuzzing every route of a real `elicence ledger serve` node (dev mode, the widest).

Seeded hostile JSON-RPC (every allowed and refused method, wrong params, huge numbers,
deep nesting, batches, broken framing) and the seed corpus: not one answer of 500 or
more, the node alive, its memory bounded, and the chain still answering afterwards.
"""

from __future__ import annotations

import inspect
import json
import os
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any
from unittest.mock import MagicMock

import httpx
import pytest
from starlette.routing import Route

from ledger import Registry, connect
from ledger.node import ALLOWED, KEYLESS, Node
from ledger.server import create_app
from tests.adversarial import fuzzing as fz
from tests.conftest import AGENCY_CODE, AGENCY_NAME, NodeProcess, key_for, publish_types

SEED = 16
INPUTS = int(os.environ.get("ELICENCE_NODE_FUZZ_INPUTS", "4000"))
RSS_GROWTH_MB = 300
PEAK_MB = 1500


def node_routes(home: Path) -> list[str]:
    """Every route of the node's HTTP app, as "METHOD /path"."""
    try:
        app = create_app(MagicMock(spec=Node))  # routes close over the node; none is called
    except (AttributeError, TypeError, ValueError):
        node = Node(home)  # create_app reads the node's settings: a real one, then
        try:
            app = create_app(node)
        finally:
            node.close()
    routes = []
    for route in app.routes:
        assert isinstance(route, Route), route
        routes += [f"{m} {route.path}" for m in sorted((route.methods or set()) - {"HEAD"})]
    return routes


class NodeInputs:
    """Seeded hostile JSON-RPC requests."""

    def __init__(self, rng: random.Random, registry: str) -> None:
        self.rng = rng
        self.values = fz.Values(rng)
        self.registry = registry
        self.methods = [
            *sorted(ALLOWED | KEYLESS),
            "",
            "eth_",
            "debug_traceTransaction",
            "admin_addPeer",
            "evm_revert",
            "evm_snapshot",
            "ETH_CHAINID",
            "eth_chainId\u0000",
            "\ud800",
        ]

    def param(self) -> Any:
        rng = self.rng
        registry = self.registry
        makers: list[Callable[[], Any]] = [
            lambda: rng.choice(["latest", "pending", "earliest", "0x0", "0xzz", "", registry]),
            lambda: "0x" + "f" * rng.choice([1, 16, 64, 65, 1000]),
            lambda: "0x" + "00" * 20,
            lambda: rng.choice([-1, 2**256, 1.5, None, True, [], {}]),
            lambda: {
                "to": registry,
                "data": "0x" + rng.randbytes(rng.choice([0, 4, 36, 200])).hex(),
            },
            lambda: {
                "from": "0x" + rng.randbytes(20).hex(),
                "to": registry,
                "data": "0x",
                "gas": hex(rng.choice([0, 21000, 10**6, 2**64])),
            },
            lambda: {
                "fromBlock": "0x0",
                "toBlock": "latest",
                "address": registry,
                "topics": [["0x" + "00" * 32] * rng.choice([1, 4, 100])],
            },
            lambda: {"fromBlock": hex(rng.randint(0, 2**40)), "toBlock": "0x0"},
            lambda: "0x" + rng.randbytes(rng.choice([1, 32, 110, 3000])).hex(),
            self.values.string,
        ]
        return rng.choice(makers)()

    def call(self) -> dict[str, Any]:
        rng = self.rng
        method = rng.choice(self.methods)
        if method == "evm_mine":
            # Counts that would stall a node without its caps are the corpus's (stall-*).
            params: Any = rng.choice([[], [1], ["0x1"], [{"blocks": 2}], [-1], ["x"], [1.5]])
        else:
            params = [self.param() for _ in range(rng.choice([0, 1, 2, 3, 8]))]
            if rng.random() < 0.05:
                params = rng.choice(["x", 7, {"a": 1}, None])
        request: dict[str, Any] = {
            "jsonrpc": rng.choice(["2.0", "2.0", "2.0", "1.0", 2, None]),
            "method": method,
            "params": params,
        }
        pick = rng.random()
        if pick < 0.8:
            request["id"] = rng.choice([1, "x", None, 2**80, [], {"a": 1}, 1.5, -1])
        if rng.random() < 0.05:
            del request["method"]
        return request

    def body(self) -> bytes:
        rng = self.rng
        pick = rng.random()
        if pick < 0.6:
            text = json.dumps(self.call(), ensure_ascii=rng.random() < 0.5)
        elif pick < 0.75:
            text = json.dumps(
                [self.call() for _ in range(rng.choice([0, 1, 2, 10, 100, 101, 150]))]
            )
        elif pick < 0.9:
            text = self.values.value()
        else:
            text = rng.choice(
                [
                    "",
                    "{",
                    '{"jsonrpc":"2.0","id":1,"method":"eth_chainId","method":"eth_accounts","params":[]}',
                    '{"jsonrpc":"2.0","id":'
                    + "9" * 5000
                    + ',"method":"eth_blockNumber","params":[]}',
                    fz.deep(rng.choice([500, 2000, 3000])).decode(),
                    '{"jsonrpc":"2.0","id":1,"method":"eth_blockNumber","params":'
                    + fz.deep(400).decode()
                    + "}",
                ]
            )
        data = text.encode("utf-8", "surrogatepass")
        if rng.random() < 0.05:
            data = fz.mutate_bytes(rng, data)
        return data

    def post_probe(self, route: str) -> fz.Probe:
        rng = self.rng
        kind = rng.choice(
            [
                "application/json",
                "application/json",
                "text/plain",
                "",
                "application/json; charset=utf-16",
            ]
        )
        headers = [("Content-Type", kind)] if kind else []
        if rng.random() < 0.1:
            headers.append(
                ("Authorization", "Bearer " + rng.choice(["x", "\u00ff" * 10, "a" * 5000]))
            )
        return fz.Probe(route, "rpc", fz.http_request("POST", "/", self.body(), headers))

    def get_probe(self, route: str) -> fz.Probe:
        rng = self.rng
        path = rng.choice(["/", "/?a=1", "/?" + "x" * 5000, "/%00", "/../etc/passwd"])
        return fz.Probe(
            route, "get", fz.http_request("GET", path, b"" if rng.random() < 0.9 else self.body())
        )

    def header_probe(self, route: str) -> fz.Probe:
        rng = self.rng
        method = route.split(" ", 1)[0]
        body = self.body()[:2000]
        pick = rng.randrange(5)
        if pick == 0:
            headers = [("Content-Length", str(len(body) + rng.randint(1, 10**7)))]
        elif pick == 1:
            headers = [("Content-Length", rng.choice(["-5", "x", "99999999999999999999"]))]
        elif pick == 2:
            headers = [("Transfer-Encoding", "chunked")]
            body = fz.mutate_bytes(rng, f"{len(body):x}\r\n".encode() + body + b"\r\n0\r\n\r\n")
        elif pick == 3:
            headers = [(f"X-{i}", "v" * 100) for i in range(300)]
        else:
            method = rng.choice(["PUT", "DELETE", "PATCH", "OPTIONS", "TRACE"])
            headers = []
        return fz.Probe(
            route, f"headers-{pick}", fz.http_request(method, "/", body, headers), well_formed=False
        )


def _corpus_probes() -> list[fz.Probe]:
    probes = []
    for path in fz.corpus_files("node"):
        route = fz.route_of_folder(path.parent.name)
        name = f"corpus {path.parent.name}/{path.name}"
        data = path.read_bytes()
        if path.suffix == ".http":
            probes.append(fz.Probe(route, name, data, well_formed=False))
        else:
            probes.append(fz.json_probe(route, name, "/", data))
    body = b'{"jsonrpc":"2.0","id":1,"method":"eth_chainId","params":["' + b"a" * 5_000_000 + b'"]}'
    probes.insert(0, fz.json_probe("POST /", "body-5mb", "/", body))
    return probes


@pytest.fixture(scope="module")
def node(tmp_path_factory):
    """A node in dev mode (rate limits lifted, when the node has them) with a registry."""
    folder = tmp_path_factory.mktemp("fuzz-node")
    options: dict[str, Any] = {}
    if "options" in inspect.signature(NodeProcess).parameters:
        options["options"] = ["--rate", "1000000", "--burst", "1000000"]
    process = NodeProcess(folder / "home", **options).start()
    try:
        chain = connect(process.url)
        governor, agency = key_for("fuzz-node-governor"), key_for("fuzz-node-agency")
        registry = Registry.deploy(chain, governor)
        publish_types(registry, governor, [1])
        registry.register_agency(governor, AGENCY_CODE, AGENCY_NAME, agency.address, [1])
        registry.anchor(agency, b"\x42" * 16, 1, 1)
        yield process, registry
    finally:
        if process.process is not None:
            process.process.kill()
            process.process.wait()
            process.process = None


def test_fuzzing_every_node_route_gives_no_server_error_and_the_node_survives(node, tmp_path):
    process, registry = node
    assert process.process is not None
    routes = node_routes(tmp_path / "routes-node")
    rng = random.Random(SEED)
    inputs = NodeInputs(rng, registry.address)
    makers = []
    for route in routes:
        maker = inputs.post_probe if route.startswith("POST") else inputs.get_probe
        weight = 10.0 if route.startswith("POST") else 1.0
        makers.append((weight, lambda m=maker, r=route: m(r)))
        makers.append((weight * 0.05, lambda r=route: inputs.header_probe(r)))
    probes = fz.weighted(rng, makers, INPUTS)
    fz.fuzz_and_check(
        "node",
        process.port,
        process.process,
        probes,
        _corpus_probes(),
        routes,
        concurrency=4,
        rss_growth_mb=RSS_GROWTH_MB,
        peak_mb=PEAK_MB,
    )
    # The chain still answers, and what was anchored is still there.
    assert Registry.at(connect(process.url), registry.address).anchor_of(b"\x42" * 16) is not None
    head = httpx.post(
        process.url,
        json={"jsonrpc": "2.0", "id": 1, "method": "eth_blockNumber", "params": []},
        timeout=60,
    )
    assert head.status_code == 200 and head.json()["result"].startswith("0x")


def test_the_node_corpus_names_real_routes(tmp_path):
    folders = {p.parent.name for p in fz.corpus_files("node")}
    assert {fz.route_of_folder(f) for f in folders} <= set(node_routes(tmp_path / "node"))
