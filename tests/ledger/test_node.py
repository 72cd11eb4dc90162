"""The embedded node as a real process: JSON-RPC, durability across stops and kill -9."""

from __future__ import annotations

import json
import signal
import subprocess
import threading
import time
import urllib.request

import pytest
from eth_account import Account
from eth_utils.abi import event_abi_to_log_topic

from contracts import load_artifact
from ledger import Registry, connect
from ledger.errors import RegistryRejected
from ledger.registry import DIGEST_BYTES
from tests.conftest import AGENCY_CODE, AGENCY_NAME, CAST, ELICENCE, key_for, publish_types


def rpc(url, method, params=(), raw=None):
    body = (
        raw
        if raw is not None
        else json.dumps(
            {"jsonrpc": "2.0", "id": 7, "method": method, "params": list(params)}
        ).encode()
    )
    request = urllib.request.Request(url, body, {"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


def deploy_with_agency(url):
    chain = connect(url)
    governor, agency = key_for("node-governor"), key_for("node-agency")
    registry = Registry.deploy(chain, governor)
    publish_types(registry, governor, {1, 2, 3})
    registry.register_agency(governor, AGENCY_CODE, AGENCY_NAME, agency.address, [1])
    return chain, registry, agency


def test_unfunded_keys_transact_without_manual_funding(node_process):
    _, registry, agency = deploy_with_agency(node_process.url)
    sent = registry.anchor(agency, b"\x42" * DIGEST_BYTES, 1, 3)
    assert registry.anchor_of(b"\x42" * DIGEST_BYTES).block_number == sent.block_number


def test_node_holds_no_keys(node_process):
    assert rpc(node_process.url, "eth_accounts")["result"] == []
    answer = rpc(node_process.url, "eth_sendTransaction", [{"to": "0x" + "11" * 20}])
    assert "holds no keys" in answer["error"]["message"]
    assert "eth_sendRawTransaction" in answer["error"]["message"]


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        (b"{not json", -32700),
        (b"[]", -32600),
        (b'{"id": 1}', -32600),
        (b'{"jsonrpc": "2.0", "id": 1, "method": "debug_traceTransaction", "params": []}', -32601),
        (b'{"jsonrpc": "2.0", "id": 1, "method": "eth_getBalance", "params": "x"}', -32602),
        (
            b'{"jsonrpc": "2.0", "id": 1, "method": "eth_sendRawTransaction", "params": ["0x12"]}',
            -32602,
        ),
    ],
)
def test_bad_requests_get_json_rpc_errors_and_the_node_keeps_serving(node_process, raw, code):
    assert rpc(node_process.url, "", raw=raw)["error"]["code"] == code
    assert rpc(node_process.url, "eth_blockNumber")["result"].startswith("0x")


def test_batch_requests_are_answered_in_order(node_process):
    raw = json.dumps(
        [
            {"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []},
            {"jsonrpc": "2.0", "id": 2, "method": "eth_blockNumber", "params": []},
        ]
    ).encode()
    answers = rpc(node_process.url, "", raw=raw)
    assert [a["id"] for a in answers] == [1, 2]


def test_state_and_block_hashes_survive_a_restart(node_process):
    chain, registry, agency = deploy_with_agency(node_process.url)
    registry.anchor(agency, b"\x01" * DIGEST_BYTES, 1, 10)
    head = chain.block_number()
    hashes = [chain.w3.eth.get_block(n)["hash"] for n in range(head + 1)]
    node_process.stop()
    node_process.start()
    again = connect(node_process.url)
    assert again.block_number() == head
    assert [again.w3.eth.get_block(n)["hash"] for n in range(head + 1)] == hashes
    assert Registry.at(again, registry.address).anchor_of(b"\x01" * DIGEST_BYTES).count == 10


def test_a_second_node_on_the_same_home_is_refused(node_process):
    result = subprocess.run(
        [str(ELICENCE), "ledger", "serve", "--home", str(node_process.home), "--port", "1"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert "another node is already running" in result.stderr


@pytest.mark.slow
def test_kill_9_during_a_burst_loses_no_transaction_whose_receipt_was_returned(node_process):
    chain = connect(node_process.url)
    senders = [Account.from_key(bytes([i + 1]) * 32) for i in range(3)]
    confirmed: list[tuple[str, int, bytes | None]] = []
    stop = threading.Event()

    def burst(sender):
        while not stop.is_set():
            try:
                sent = chain.transact(sender, to="0x" + "00" * 19 + "01", value=1)
            except Exception:  # the node died under us: expected
                return
            try:
                block_hash = bytes(chain.w3.eth.get_block(sent.block_number)["hash"])
            except Exception:  # killed between the receipt and this: the receipt still counts
                confirmed.append((sent.tx_hash, sent.block_number, None))
                return
            confirmed.append((sent.tx_hash, sent.block_number, block_hash))

    threads = [threading.Thread(target=burst, args=(s,)) for s in senders]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 60
    while len(confirmed) < 25 and time.monotonic() < deadline:
        time.sleep(0.05)
    node_process.stop(signal.SIGKILL)  # mid-burst: requests are in flight
    stop.set()
    for thread in threads:
        thread.join(timeout=30)
    assert len(confirmed) >= 25
    node_process.start()
    again = connect(node_process.url)
    for tx_hash, block_number, block_hash in confirmed:
        receipt = again.w3.eth.get_transaction_receipt(tx_hash)
        assert receipt["blockNumber"] == block_number
        if block_hash is not None:
            assert bytes(again.w3.eth.get_block(block_number)["hash"]) == block_hash
    # And the node goes on from where it was.
    again.transact(senders[0], to="0x" + "00" * 19 + "01", value=1)


def test_cast_reads_the_registry_through_the_node(node_process):
    if not CAST.exists():
        pytest.skip("cast missing: run npm ci")
    _, registry, _ = deploy_with_agency(node_process.url)
    result = subprocess.run(
        [
            str(CAST),
            "call",
            registry.address,
            "agencyCount()(uint32)",
            "--rpc-url",
            node_process.url,
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "1"


def test_a_failed_transaction_does_not_disturb_the_chain(node_process):
    chain, registry, agency = deploy_with_agency(node_process.url)
    registry.anchor(agency, b"\x07" * DIGEST_BYTES, 1, 1)
    head = chain.block_number()
    with pytest.raises(RegistryRejected) as caught:
        registry.anchor(agency, b"\x07" * DIGEST_BYTES, 1, 1)
    assert caught.value.error_name == "LicenceRegistryAlreadyAnchored"
    assert chain.block_number() == head
    assert registry.anchor_of(b"\x07" * DIGEST_BYTES).count == 1


def test_logs_are_served_by_range_address_and_topic_and_survive_a_restart(node_process):
    chain, registry, agency = deploy_with_agency(node_process.url)
    roots = [bytes([0x30 + i]) * DIGEST_BYTES for i in range(3)]
    for root in roots:
        registry.anchor(agency, root, 1, 1)
    (event,) = [e for e in load_artifact().abi if e.get("name") == "BatchAnchored"]
    topic = "0x" + event_abi_to_log_topic(event).hex()
    query = {"fromBlock": 0, "toBlock": "latest", "address": registry.address, "topics": [topic]}
    assert len(chain.w3.eth.get_logs(query)) == 3
    assert chain.w3.eth.get_logs({**query, "address": "0x" + "00" * 20}) == []
    head = chain.block_number()
    assert len(chain.w3.eth.get_logs({**query, "fromBlock": head, "toBlock": head})) == 1
    node_process.stop()
    node_process.start()
    again = connect(node_process.url)
    assert len(again.w3.eth.get_logs(query)) == 3


def test_the_head_number_moves_before_a_transaction_is_answered(node_process):
    # Verifiers ask eth_blockNumber before every answer; the node answers it from a
    # number it keeps, which must never lag a receipt it has returned.
    before = int(rpc(node_process.url, "eth_blockNumber")["result"], 16)
    chain = connect(node_process.url)
    sender, receiver = key_for("head-sender"), key_for("head-receiver")
    receipt = chain.transact(sender, to=receiver.address, value=1)
    assert receipt.block_number > before
    assert int(rpc(node_process.url, "eth_blockNumber")["result"], 16) == receipt.block_number
    mined = rpc(node_process.url, "evm_mine")
    assert "error" not in mined
    head = rpc(node_process.url, "eth_blockNumber")
    assert head == {"jsonrpc": "2.0", "id": 7, "result": hex(receipt.block_number + 1)}
    # The same number whichever way it is asked (in a batch it takes the chain's path).
    batch = json.dumps([{"jsonrpc": "2.0", "id": 1, "method": "eth_blockNumber", "params": []}])
    assert rpc(node_process.url, "", raw=batch.encode())[0]["result"] == head["result"]
