"""The embedded node against a hostile caller on its port.

A production node (no --dev) serves reads to anyone, but mines, funds and deploys only
for the accounts its operator or its registry vouches for; every call runs under a gas
cap and a time limit; each client address has a token bucket; no body, however
malformed, crashes the process or gets an HTTP 500.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest
from eth_account import Account

from ledger import Registry, connect
from ledger.config import HomeConfig
from ledger.errors import LedgerError
from ledger.node import MAX_NESTING, json_shape_problem
from ledger.registry import DIGEST_BYTES
from tests.conftest import AGENCY_CODE, AGENCY_NAME, NodeProcess, key_for, publish_types

GOVERNOR = key_for("hostile-governor")
AGENCY = key_for("hostile-agency")
STRANGER = key_for("hostile-stranger")
# eth-tester's first genesis account: the node's faucet, whose key everyone knows.
PUBLIC_FAUCET = Account.from_key(b"\x00" * 31 + b"\x01")
ENDLESS_LOOP = "0x5b600056"  # JUMPDEST PUSH1 0 JUMP, run as creation code
RPC_ERROR_CODES = {-32700, -32600, -32601, -32602, -32603, -32000, -32003, -32005, 3}


def post(url: str, body: bytes) -> tuple[int, object]:
    """POST a raw body; the HTTP status and the decoded JSON answer, whatever the status."""
    request = urllib.request.Request(url, body, {"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def rpc(url: str, method: str, *params: object) -> dict:
    request = {"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)}
    _, answer = post(url, json.dumps(request).encode())
    assert isinstance(answer, dict)
    return answer


def head(url: str) -> int:
    return int(rpc(url, "eth_blockNumber")["result"], 16)


def balance(url: str, address: str) -> int:
    return int(rpc(url, "eth_getBalance", address, "latest")["result"], 16)


@pytest.fixture(scope="module")
def production(tmp_path_factory) -> Iterator[NodeProcess]:
    """A node without --dev whose operator allows GOVERNOR to deploy."""
    home = tmp_path_factory.mktemp("hostile") / "home"
    node = NodeProcess(home, dev=False, options=("--deployer", GOVERNOR.address)).start()
    try:
        yield node
    finally:
        node.stop()


@pytest.fixture(scope="module")
def registry(production: NodeProcess) -> Registry:
    """GOVERNOR's registry on the production node, with AGENCY registered; the node's
    home names it, so the node vouches for its governors and agencies."""
    chain = connect(production.url)
    deployed = Registry.deploy(chain, GOVERNOR)
    publish_types(deployed, GOVERNOR, {1, 2, 3})
    deployed.register_agency(GOVERNOR, AGENCY_CODE, AGENCY_NAME, AGENCY.address, [1])
    HomeConfig(production.url, chain.chain_id, deployed.address).save(production.home)
    return deployed


def signed_creation(account, url: str, code: str = "0x00") -> str:
    chain = connect(url)
    tx = {
        "chainId": chain.chain_id,
        "nonce": chain.w3.eth.get_transaction_count(account.address),
        "gas": 100_000,
        "maxFeePerGas": 10**10,
        "maxPriorityFeePerGas": 10**9,
        "data": code,
        "value": 0,
        "type": 2,
    }
    return "0x" + account.sign_transaction(tx).raw_transaction.hex()


def test_deeply_nested_body_gets_an_error_and_the_node_keeps_serving(production):
    status, answer = post(production.url, b"[" * 120_000)
    assert status < 500
    assert isinstance(answer, dict)
    assert answer["error"]["code"] in {-32700, -32600}
    assert "nest" in answer["error"]["message"]
    assert production.process is not None and production.process.poll() is None
    assert head(production.url) >= 0


@pytest.mark.parametrize(
    ("body", "too_deep"),
    [
        (b"[" * MAX_NESTING + b"]" * MAX_NESTING, False),
        (b"[" * (MAX_NESTING + 1) + b"]" * (MAX_NESTING + 1), True),
        (b'{"a": [{"b": [' * 16 + b"1" + b"]}]" * 16, False),
        (b'{"a": [{"b": [' * 17 + b"1" + b"]}]" * 17, True),
        (b'["' + b"[" * 10_000 + b'"]', False),  # brackets inside a string do not nest
        (rb'["\\", "\"[[[", {"k\"": []}]', False),  # escaped quotes and backslashes
        (b"[" * 120_000, True),
        (b"[" * 70 + b"}" * 70, True),  # kinds mixed up: depth is what counts
        (b'{"jsonrpc": "2.0", "method": "eth_chainId"}', False),
    ],
)
def test_nesting_is_measured_without_parsing(body, too_deep):
    problem = json_shape_problem(body)
    assert (problem == f"JSON nested deeper than {MAX_NESTING}") is too_deep
    assert too_deep or problem is None


def test_a_body_of_too_many_arrays_is_refused_before_parsing():
    assert json_shape_problem(b"[" + b"[]," * 70_000 + b"[]]") == (
        "more than 65536 arrays and objects"
    )


def test_nesting_within_the_limit_is_still_parsed(production):
    answer = rpc(production.url, "eth_getBalance", [[[[[[[[1]]]]]]]], "latest")
    # A bad address, but parsed and answered as one.
    assert answer["error"]["code"] not in {-32700, -32600}
    assert "nest" not in answer["error"]["message"]


def test_an_oversized_body_gets_a_readable_error(production):
    status, answer = post(production.url, b" " * (5 * 1024 * 1024))
    assert status == 413
    assert isinstance(answer, dict)
    assert answer["error"]["code"] == -32600
    assert "bytes" in answer["error"]["message"]


@pytest.mark.parametrize(
    "body",
    [
        b"[1, 2, 3]",
        b'[{"jsonrpc": "2.0", "id": 1, "method": "eth_chainId"}, 7, []]',
        b"[[]]",
        b"[" + b'{"jsonrpc":"2.0","id":1,"method":"eth_chainId"},' * 100 + b"{}]",
        b'{"jsonrpc": "2.0", "id": 1, "method": 5}',
        b'{"jsonrpc": "2.0", "id": {"a": [1]}, "method": "eth_chainId", "params": {}}',
        b'{"jsonrpc": "2.0", "id": 1, "method": "eth_getBalance", "params": ['
        + b"9" * 5000
        + b"]}",
        b'{"jsonrpc": "2.0", "id": 1, "method": "eth_getBalance", "params": ["0x'
        + b"f" * 5000
        + b'", "latest"]}',
        b'{"jsonrpc": "2.0", "id": 1, "method": "eth_getBalance", "params": [1e999, 2]}',
        b'{"jsonrpc": "2.0", "id": "\\ud800", "method": "\\udfff"}',
        b'{"jsonrpc": "2.0", "id": 1, "method": "eth_call", "params": [{"\\ud800": 1}]}',
        b'{"jsonrpc": "2.0", "id": 1, "method": "eth_call", "params": [{"data": "\\ud800"}]}',
        b'{"jsonrpc": "2.0", "id": 1, "method": "eth_call", "params": [5, {}]}',
        b'{"jsonrpc": "2.0", "id": 1, "method": "eth_estimateGas", "params": [{"gas": [1]}]}',
        b'{"jsonrpc": "2.0", "id": 1, "method": "eth_getLogs", "params": [{"blockHash": 5}]}',
        b'{"jsonrpc": "2.0", "id": 1, "method": "eth_getLogs", "params": [{"fromBlock": "0xzz"}]}',
        b'{"jsonrpc": "2.0", "id": 1, "method": "eth_getBlockByNumber", "params": ["0x'
        + b"f" * 80
        + b'", false]}',
        b'{"jsonrpc": "2.0", "id": 1, "method": "eth_sendRawTransaction", "params": [[]]}',
        b'{"jsonrpc": "2.0", "id": 1, "method": "eth_getFilterChanges", "params": ["0x1"]}',
        b"\xff\xfe{}",
        b"",
        b"null",
        b'"eth_chainId"',
    ],
)
def test_malformed_json_rpc_gets_a_json_rpc_error(production, body):
    status, answer = post(production.url, body)
    assert status < 500
    answers = answer if isinstance(answer, list) else [answer]
    assert answers
    for one in answers:  # each a JSON-RPC answer: a result, or an error of a known kind
        assert isinstance(one, dict)
        assert "result" in one or one["error"]["code"] in RPC_ERROR_CODES
    assert production.process is not None and production.process.poll() is None


def test_evm_mine_is_refused_without_dev_mode(production):
    before = head(production.url)
    answer = rpc(production.url, "evm_mine", 1_000_000)
    assert answer["error"]["code"] == -32601
    assert "--dev" in answer["error"]["message"]
    assert head(production.url) == before


def test_estimate_gas_from_a_stranger_neither_funds_it_nor_mines(production):
    before = head(production.url)
    call = {"from": STRANGER.address, "to": "0x" + "11" * 20, "value": "0x1"}
    for _ in range(3):
        rpc(production.url, "eth_estimateGas", call)
    assert balance(production.url, STRANGER.address) == 0
    assert head(production.url) == before


def test_endless_loop_call_is_stopped_by_the_caps_and_the_node_keeps_answering(production):
    finished: list[tuple[str, dict]] = []

    def ask(label: str, method: str, *params: object) -> None:
        finished.append((label, rpc(production.url, method, *params)))

    loop = threading.Thread(target=ask, args=("loop", "eth_call", {"data": ENDLESS_LOOP}))
    loop.start()
    time.sleep(0.05)  # the loop is running (or about to): ask for the head meanwhile
    ask("head", "eth_blockNumber")
    ask("balance", "eth_getBalance", GOVERNOR.address, "latest")
    loop.join()
    order = [label for label, _ in finished]
    assert order.index("head") < order.index("loop")  # not held up by the loop
    answers = dict(finished)
    assert "result" in answers["balance"]
    error = answers["loop"]["error"]
    assert error["code"] == -32000
    assert "call limit" in error["message"]


@pytest.mark.parametrize("method", ["eth_call", "eth_estimateGas"])
def test_endless_loop_stops_at_the_cap_well_below_the_block_gas_limit(production, method):
    answer = rpc(production.url, method, {"data": ENDLESS_LOOP, "gas": hex(10**9)})
    error = answer["error"]
    assert "call limit" in error["message"]
    block = rpc(production.url, "eth_getBlockByNumber", "latest", False)["result"]
    used = int(error["data"]["gasUsed"], 16)
    assert used <= int(error["data"]["gasCap"], 16) < int(block["gasLimit"], 16) // 4


def test_contract_creation_from_an_unknown_address_is_refused(production, registry):
    for account in (STRANGER, AGENCY):  # unknown, and known only as an agency
        raw = signed_creation(account, production.url)
        answer = rpc(production.url, "eth_sendRawTransaction", raw)
        assert answer["error"]["code"] == -32003
        assert "contract creation" in answer["error"]["message"]


def test_the_public_faucet_key_cannot_send_on_a_production_node(production):
    raw = signed_creation(PUBLIC_FAUCET, production.url)
    answer = rpc(production.url, "eth_sendRawTransaction", raw)
    assert answer["error"]["code"] == -32003
    assert "public" in answer["error"]["message"]


def test_the_allowed_governor_and_its_agencies_work_without_dev_mode(production, registry):
    # The governor was topped up and deployed; the registered agency is topped up too.
    sent = registry.anchor(AGENCY, b"\x5a" * DIGEST_BYTES, 1, 2)
    assert registry.anchor_of(b"\x5a" * DIGEST_BYTES).block_number == sent.block_number


def test_a_stranger_gets_no_gas_on_a_production_node(production, registry):
    chain = connect(production.url)
    with pytest.raises(LedgerError, match="insufficient funds"):
        chain.transact(STRANGER, to=GOVERNOR.address, value=1)


def test_a_burst_beyond_the_rate_limit_gets_the_rate_limit_error(tmp_path):
    # A token every 1,000 s: whatever the machine's speed, the burst is all there is.
    node = NodeProcess(tmp_path / "home", dev=False, options=("--rate", "0.001", "--burst", "5"))
    node.start()
    try:
        body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "eth_chainId"}).encode()
        answers = [post(node.url, body) for _ in range(12)]
    finally:
        node.stop()
    limited = [answer for status, answer in answers if status == 429]
    assert len(limited) == 12 - 5
    assert all(answer["error"]["code"] == -32005 for answer in limited)  # type: ignore[index]
    assert "rate limit" in limited[0]["error"]["message"]  # type: ignore[index]


def test_dev_mode_still_allows_the_conveniences(tmp_path):
    node = NodeProcess(tmp_path / "home", dev=True).start()
    try:
        before = head(node.url)
        assert "result" in rpc(node.url, "evm_mine", 3)
        assert head(node.url) == before + 3
        call = {"from": STRANGER.address, "to": "0x" + "11" * 20, "value": "0x1"}
        assert "result" in rpc(node.url, "eth_estimateGas", call)
        assert balance(node.url, STRANGER.address) > 0  # topped up from the faucet
        raw = signed_creation(STRANGER, node.url)
        assert "result" in rpc(node.url, "eth_sendRawTransaction", raw)
    finally:
        node.stop()
