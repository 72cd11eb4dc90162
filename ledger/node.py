"""The embedded node: a durable eth-tester chain behind the standard Ethereum JSON-RPC.

`elicence ledger serve` runs it over HTTP so that agencies' scripts, the verifier
service and foreign clients (ethers.js, foundry's cast) reach one chain by URL.

Durability: the chain lives in `<home>/chain.sqlite` (see ledger.tester.SqliteStore).
Every request that changes the chain (a raw transaction, a mined block) is committed to
disk before its answer leaves, so a transaction whose hash or receipt a client has seen
survives kill -9; one that was cut off before its answer is lost whole, never half.

Logs: eth-tester answers eth_getLogs by re-reading every block's receipts, which takes
seconds over a few thousand transactions; the node instead writes each new block's logs
to a table beside the chain, in the same transaction, and answers eth_getLogs from it.

The node holds no agency keys. It refuses eth_sendTransaction and the signing methods
and reports no accounts: clients sign locally and send raw transactions. Gas costs
nothing in practice: before a raw transaction runs, a sender whose balance is below
`TOP_UP_BELOW` wei receives `TOP_UP_AMOUNT` from the node's own faucet account.

Anyone who reaches the port is a possible attacker (ledger.config.NodeSettings):
- without dev mode, top-ups go only to senders the operator or the registry vouches for
  (allowed deployers, the registry's governors and agency signers), only allowed
  deployers may create contracts, evm_mine is refused, and the public keys of
  eth-tester's genesis accounts (the faucet among them) may not send at all;
- every eth_call and eth_estimateGas runs with at most `call_gas` gas and for at most
  `call_seconds` (tester.CallGuard), a raw transaction may ask for at most `tx_gas`;
- a body nested deeper than `MAX_NESTING` is refused before it is parsed: eth_account
  raises Python's recursion limit, so json.loads of ~100,000 `[` would overflow the C
  stack and kill the process.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

from eth_account import Account
from eth_account.signers.local import LocalAccount
from web3 import Web3
from web3.types import RPCEndpoint

from ledger.config import NodeSettings
from ledger.errors import LedgerError, NodeBusy
from ledger.head_page import HeadPublisher
from ledger.private import private_folder

ETHER = 10**18
TOP_UP_BELOW = 1 * ETHER
TOP_UP_AMOUNT = 100 * ETHER
MAX_REQUEST_BYTES = 4 * 1024 * 1024
MAX_BATCH = 100
MAX_NESTING = 64
MAX_BRACKETS = 65_536  # arrays and objects in one body; a full batch holds a few hundred
MAX_MINE = 1_000  # blocks per evm_mine (dev mode)
CLIENT_VERSION = "elicence-embedded-node/1 (eth-tester, py-evm)"

# What web3.py, ethers.js and cast ask of a node, minus everything that needs its keys
# or would rewrite its history.
ALLOWED = frozenset(
    {
        "web3_clientVersion",
        "web3_sha3",
        "net_version",
        "net_listening",
        "net_peerCount",
        "eth_chainId",
        "eth_syncing",
        "eth_blockNumber",
        "eth_getBalance",
        "eth_getTransactionCount",
        "eth_getCode",
        "eth_getStorageAt",
        "eth_call",
        "eth_estimateGas",
        "eth_sendRawTransaction",
        "eth_getTransactionReceipt",
        "eth_getTransactionByHash",
        "eth_getBlockByNumber",
        "eth_getBlockByHash",
        "eth_getBlockTransactionCountByNumber",
        "eth_getBlockTransactionCountByHash",
        "eth_getLogs",
        "eth_gasPrice",
        "eth_maxPriorityFeePerGas",
        "eth_feeHistory",
        "eth_newFilter",
        "eth_newBlockFilter",
        "eth_getFilterChanges",
        "eth_getFilterLogs",
        "eth_uninstallFilter",
        "evm_mine",
    }
)
KEYLESS = frozenset(
    {
        "eth_sendTransaction",
        "eth_sign",
        "eth_signTransaction",
        "eth_signTypedData",
        "eth_signTypedData_v4",
        "personal_sign",
        "personal_sendTransaction",
        "personal_unlockAccount",
        "personal_newAccount",
        "personal_importRawKey",
    }
)
MUTATING = frozenset({"eth_sendRawTransaction", "evm_mine"})
DEV_ONLY = frozenset({"evm_mine"})
LIMITED = frozenset({"eth_call", "eth_estimateGas"})

PARSE_ERROR, INVALID_REQUEST, METHOD_NOT_FOUND, INVALID_PARAMS, INTERNAL = (
    -32700,
    -32600,
    -32601,
    -32602,
    -32603,
)
# EIP-1474's codes for a refused transaction and an exceeded limit.
SERVER_ERROR, TRANSACTION_REJECTED, LIMIT_EXCEEDED = -32000, -32003, -32005


def to_wire(value: Any) -> Any:
    """A result in JSON-RPC form: quantities as 0x-hex, bytes as 0x-hex."""
    if isinstance(value, bool) or value is None or isinstance(value, float | str):
        return value
    if isinstance(value, int):
        return hex(value)
    if isinstance(value, bytes | bytearray):
        return "0x" + bytes(value).hex()
    if isinstance(value, dict):
        return {str(k): to_wire(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_wire(v) for v in value]
    return str(value)


class Node:
    """One durable chain in a home folder, answering JSON-RPC requests one at a time."""

    def __init__(self, home: Path, settings: NodeSettings | None = None) -> None:
        """Open (or create) the chain in `home`; its registry is read from the home
        folder above it (`home` is HOME/chain)."""
        from ledger.tester import CallGuard, Provider, faucet_of, persistent

        private_folder(home)  # 0700 (ledger.private)
        self.home = home
        self.settings = settings or NodeSettings()
        self._lock_file = _exclusive_lock(home / "node.lock")
        self._guard = CallGuard()
        self._tester, self._backend, self._store = persistent(home / "chain.sqlite", self._guard)
        self._backend.gas_cap = self.settings.call_gas
        # The genesis accounts' keys ship with eth-tester: anyone can sign with them.
        self._public_keys = frozenset(
            Account.from_key(key.to_bytes()).address.lower() for key in self._backend.account_keys
        )
        provider = Provider(self._tester)
        self._w3 = Web3(provider, middleware=[])
        self._request: Callable[[RPCEndpoint, Any], Any] = provider.request_func(
            self._w3, self._w3.middleware_onion
        )
        self.faucet: LocalAccount = faucet_of(self._backend)
        self.chain_id = int(self._w3.eth.chain_id)
        self._sql = self._store.sql
        self._create_log_tables()
        self._record_logs()  # a chain made before the log table existed
        self._store.commit()
        # eth-tester and py-evm are not thread-safe; one request at a time.
        self._lock = threading.Lock()
        # The head, kept up to date inside the lock by every request that can move it,
        # before that request is answered: every verifier asks for it before each answer
        # (freshness), and through web3 and the lock it cost ~0.6 ms of this process's
        # CPU per question. With a head page (`publish_head`), verifiers in this home read
        # it there without asking at all.
        self._head = int(self._w3.eth.block_number)
        self._head_page: HeadPublisher | None = None

    def block_number(self) -> int:
        """The head block's number."""
        return self._head

    def publish_head(self, page: HeadPublisher) -> None:
        """Show the head in `page` from now on, updated before any answer that moved it
        (ledger.head_page); the page is stopped when the node closes."""
        with self._lock:
            self._head_page = page
            page.publish(self._head)
        page.start_beating()

    def stop_publishing_head(self) -> None:
        """Mark the head page stopped: verifiers ask over HTTP from now on."""
        if self._head_page is not None:
            self._head_page.close()

    def _head_moved(self) -> None:
        """Read the head after a request that may have moved it, before answering it."""
        head = int(self._w3.eth.block_number)
        # The page first: eth_blockNumber reads `_head` without the lock, and nobody may
        # learn of a block before a verifier in this home can.
        if self._head_page is not None:
            self._head_page.publish(head)
        self._head = head

    def answer_at_once(self, body: bytes) -> bytes | None:
        """The answer to a lone eth_blockNumber request, which needs no chain access;
        None for anything else (answered by `handle`)."""
        if len(body) > 512 or b"eth_blockNumber" not in body:
            return None
        try:
            request = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            return None
        if not isinstance(request, dict) or request.get("method") != "eth_blockNumber":
            return None
        if request.get("params", []) not in ([], None):
            return None
        return _dump(_result(request.get("id"), hex(self._head)))

    def handle(self, body: bytes) -> bytes:
        """Answer one HTTP body: a JSON-RPC request or a batch of them."""
        if len(body) > MAX_REQUEST_BYTES:
            return _dump(_error(None, INVALID_REQUEST, f"request over {MAX_REQUEST_BYTES} bytes"))
        problem = json_shape_problem(body)
        if problem is not None:
            return _dump(_error(None, PARSE_ERROR, f"parse error: {problem}"))
        try:
            payload = json.loads(body)
        except (ValueError, UnicodeDecodeError, RecursionError) as exc:
            return _dump(_error(None, PARSE_ERROR, f"parse error: {exc}"))
        if isinstance(payload, list):
            if not payload or len(payload) > MAX_BATCH:
                return _dump(_error(None, INVALID_REQUEST, f"a batch holds 1 to {MAX_BATCH} calls"))
            return _dump([self.answer(item) for item in payload])
        return _dump(self.answer(payload))

    def answer(self, request: object) -> dict[str, Any]:
        """Answer one decoded JSON-RPC request object."""
        if not isinstance(request, dict) or not isinstance(request.get("method"), str):
            return _error(None, INVALID_REQUEST, "a request is an object with a method")
        request_id = request.get("id")
        try:
            return self._answer(request_id, request["method"], request)
        except Exception as exc:  # whatever broke, the caller gets an answer
            return _error(request_id, INTERNAL, f"internal error: {type(exc).__name__}")

    def _answer(self, request_id: Any, method: str, request: dict[str, Any]) -> dict[str, Any]:
        params = request.get("params", [])
        if not isinstance(params, list):
            return _error(request_id, INVALID_PARAMS, "params must be a list")
        if method == "eth_accounts":
            return _result(request_id, [])
        if method in KEYLESS:
            return _error(
                request_id,
                METHOD_NOT_FOUND,
                f"{method} is not available: this node holds no keys; sign locally and "
                "send with eth_sendRawTransaction",
            )
        if method not in ALLOWED:
            return _error(request_id, METHOD_NOT_FOUND, f"method {method} is not supported")
        if method in DEV_ONLY and not self.settings.dev:
            return _error(
                request_id,
                METHOD_NOT_FOUND,
                f"{method} is available only on a node started in dev mode (--dev)",
            )
        if method == "evm_mine" and not _mine_count_ok(params):
            return _error(request_id, INVALID_PARAMS, f"evm_mine mines 1 to {MAX_MINE} blocks")
        try:
            params = _normalised(method, params, self.settings.call_gas)
        except (TypeError, ValueError) as exc:
            return _error(request_id, INVALID_PARAMS, f"{method}: {exc}")
        with self._lock:
            return self._answer_locked(request_id, method, params)

    def _answer_locked(self, request_id: Any, method: str, params: list[Any]) -> dict[str, Any]:
        topped_up = False
        if method == "eth_getLogs":
            return self._get_logs(request_id, params)
        try:
            sender = _sender_of(method, params)
            if method == "eth_sendRawTransaction":
                refusal = self._refusal(params[0] if params else None)
                if refusal is not None:
                    return _error(request_id, TRANSACTION_REJECTED, refusal)
            if sender is not None and (self.settings.dev or self._vouched_for(sender)):
                topped_up = self._top_up(sender)
            if method in LIMITED:
                if topped_up:
                    self._record_logs()
                    self._store.commit()
                    self._head_moved()
                return self._limited(request_id, method, params)
            response = self._request(RPCEndpoint(method), params)
            if method in MUTATING or topped_up:
                self._record_logs()
                self._store.commit()
                self._head_moved()
        except Exception as exc:  # any failure must become an answer, not a dead request
            if method in MUTATING or topped_up:
                self._recover()
                self._head_moved()
            return _error(request_id, INVALID_PARAMS, f"{method} failed: {exc}")
        return _answer(request_id, response)

    def _limited(self, request_id: Any, method: str, params: list[Any]) -> dict[str, Any]:
        """A call or estimate under the gas cap and the time limit."""
        settings = self.settings
        failure: Exception | None = None
        with self._guard.armed(settings.call_seconds) as guard:
            try:
                response: Any = self._request(RPCEndpoint(method), params)
            except Exception as exc:  # reported below, as any node would
                failure = exc
        message = str(failure) if failure is not None else str(response.get("error", ""))
        if guard.stopped or ("Out of gas" in message and _asked_cap(params, settings.call_gas)):
            used = guard.gas_used_at_stop if guard.stopped else settings.call_gas
            limit = (
                f"stopped after {settings.call_seconds:g} s"
                if guard.stopped
                else f"ran out of the {settings.call_gas:,} gas cap"
            )
            error = _error(
                request_id,
                SERVER_ERROR,
                f"call limit: {method} {limit} (calls may use up to {settings.call_gas:,} "
                f"gas and {settings.call_seconds:g} s)",
            )
            error["error"]["data"] = {"gasUsed": hex(used), "gasCap": hex(settings.call_gas)}
            return error
        if failure is not None:
            return _error(request_id, INVALID_PARAMS, f"{method} failed: {failure}")
        return _answer(request_id, response)

    def _refusal(self, raw: object) -> str | None:
        """Why a raw transaction may not be sent here, or None when it may."""
        if self.settings.dev or not isinstance(raw, str):
            return None
        try:
            transaction = (
                self._backend.chain.get_vm()
                .get_transaction_builder()
                .decode(bytes.fromhex(raw.removeprefix("0x")))
            )
            sender = Web3.to_checksum_address(transaction.sender)
        except Exception:  # eth-tester gives the precise error for these
            return None
        if sender.lower() in self._public_keys:
            return (
                f"{sender} is an eth-tester genesis account whose key is public; it may "
                "send only on a node in dev mode (--dev)"
            )
        if not transaction.to and not self._may_deploy(sender):
            return (
                f"contract creation is refused: {sender} is not an allowed deployer (start "
                "the node with --deployer ADDRESS, or --dev)"
            )
        if transaction.gas > self.settings.tx_gas:
            return (
                f"a transaction may ask for at most {self.settings.tx_gas:,} gas "
                f"(this one asks for {transaction.gas:,})"
            )
        return None

    def _may_deploy(self, sender: str) -> bool:
        """An allowed deployer: named by the operator, or the home's governor key (read
        each time: `elicence registry deploy` makes that key on first use, while the
        node runs)."""
        from ledger.config import governor_of

        address = sender.lower()
        return address in self.settings.deployers or address == governor_of(self.home.parent)

    def _vouched_for(self, sender: str) -> bool:
        """Whether the operator or the registry vouches for `sender` (who then gets gas
        without dev mode): an allowed deployer, or a governor or agency signer of the
        registry configured in the home folder."""
        from ledger.config import HomeConfig

        if sender.lower() in self.settings.deployers:
            return True
        if int(self._w3.eth.get_balance(Web3.to_checksum_address(sender))) >= TOP_UP_BELOW:
            return False  # no top-up due: spare the registry look-up
        if self._may_deploy(sender):
            return True
        try:
            registry = HomeConfig.load(self.home.parent).registry
        except LedgerError:
            return False
        if registry is None or not Web3.is_address(registry):
            return False
        return self._registry_knows(Web3.to_checksum_address(registry), sender)

    def _registry_knows(self, registry: str, sender: str) -> bool:
        from contracts import load_artifact

        contract = self._w3.eth.contract(
            address=Web3.to_checksum_address(registry), abi=list(load_artifact().abi)
        )
        account = Web3.to_checksum_address(sender)
        try:
            if int(contract.functions.agencyIdOf(account).call()) != 0:
                return True
            role = contract.functions.GOVERNOR_ROLE().call()
            return bool(contract.functions.hasRole(role, account).call())
        except Exception:  # not our registry (or none): nobody is known
            return False

    def _top_up(self, sender: str) -> bool:
        """Fund `sender` from the faucet when it is short; True if a transfer was made."""
        if int(self._w3.eth.get_balance(Web3.to_checksum_address(sender))) >= TOP_UP_BELOW:
            return False
        faucet = self.faucet
        transfer: dict[str, Any] = {
            "to": sender,
            "value": TOP_UP_AMOUNT,
            "gas": 21_000,
            "maxFeePerGas": 2 * int(self._w3.eth.get_block("latest")["baseFeePerGas"]) + 10**9,
            "maxPriorityFeePerGas": 10**9,
            "nonce": int(self._w3.eth.get_transaction_count(faucet.address)),
            "chainId": self.chain_id,
            "type": 2,
        }
        raw = faucet.sign_transaction(transfer).raw_transaction
        response = self._request(RPCEndpoint("eth_sendRawTransaction"), ["0x" + raw.hex()])
        if "error" in response:
            raise LedgerError(f"could not fund {sender}: {response['error']}")
        return True

    def _create_log_tables(self) -> None:
        for statement in _LOG_SCHEMA:
            self._sql.execute(statement)

    def _logged_up_to(self) -> int:
        row = self._sql.execute("SELECT value FROM node_meta WHERE key = 'logs_up_to'").fetchone()
        return int(row[0]) if row else 0

    def _record_logs(self) -> None:
        """Copy the logs of blocks mined since the last call into the log table."""
        head = int(self._w3.eth.block_number)
        first = self._logged_up_to() + 1
        rows = []
        for number in range(first, head + 1):
            block = self._request(RPCEndpoint("eth_getBlockByNumber"), [number, False])["result"]
            for tx_hash in block["transactions"]:
                receipt = self._request(RPCEndpoint("eth_getTransactionReceipt"), [tx_hash])
                for log in receipt["result"]["logs"]:
                    wire = to_wire(log)
                    rows.append(
                        (
                            number,
                            int(log["logIndex"]),
                            str(wire["address"]).lower(),
                            json.dumps(wire, separators=(",", ":")),
                        )
                    )
        self._sql.executemany("INSERT OR REPLACE INTO node_logs VALUES (?, ?, ?, ?)", rows)
        self._sql.execute(
            "INSERT OR REPLACE INTO node_meta VALUES ('logs_up_to', ?)", (max(head, first - 1),)
        )

    def _get_logs(self, request_id: Any, params: list[Any]) -> dict[str, Any]:
        query = params[0] if params else {}
        if not isinstance(query, dict):
            return _error(request_id, INVALID_PARAMS, "eth_getLogs takes one filter object")
        try:
            low, high = self._log_range(query)
            addresses = _addresses(query.get("address"))
            topics = _topic_filter(query.get("topics"))
        except (ValueError, TypeError, KeyError) as exc:
            return _error(request_id, INVALID_PARAMS, f"eth_getLogs: {exc}")
        sql = "SELECT body FROM node_logs WHERE block BETWEEN ? AND ?"
        args: list[Any] = [low, high]
        if addresses is not None:
            sql += f" AND address IN ({','.join('?' * len(addresses))})"
            args += addresses
        rows = self._sql.execute(sql + " ORDER BY block, log_index", args).fetchall()
        found = [log for (body,) in rows if _matches(log := json.loads(body), topics)]
        if len(found) > MAX_LOGS:
            return _error(
                request_id,
                -32005,
                f"query returned more than {MAX_LOGS} results; ask for fewer blocks",
            )
        return _result(request_id, found)

    def _log_range(self, query: dict[str, Any]) -> tuple[int, int]:
        if "blockHash" in query:
            block = self._request(RPCEndpoint("eth_getBlockByHash"), [query["blockHash"], False])
            if block.get("result") is None:
                raise ValueError(f"unknown block {query['blockHash']}")
            number = int(block["result"]["number"])
            return number, number
        head = int(self._w3.eth.block_number)
        return _block_number(query.get("fromBlock", "latest"), head), _block_number(
            query.get("toBlock", "latest"), head
        )

    def _recover(self) -> None:
        # A failed mutation may have written part of a block: drop it and rebuild the
        # chain object from what is on disk.
        from ledger.tester import reopen

        self._store.rollback()
        reopen(self._backend, self._store)

    def close(self) -> None:
        """Stop the head page, close the chain file and release the home folder."""
        self.stop_publishing_head()
        with self._lock:
            self._store.close()
            self._lock_file.close()


def _exclusive_lock(path: Path) -> Any:
    handle = path.open("a+")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        raise NodeBusy(f"another node is already running on {path.parent}") from None
    handle.seek(0)
    handle.truncate()
    handle.write(str(os.getpid()))
    handle.flush()
    return handle


def _normalised(method: str, params: list[Any], gas_cap: int) -> list[Any]:
    """Call objects as eth-tester takes them: `input` (the current name, sent by cast and
    ethers) as `data`, no fees on calls, and at most `gas_cap` gas."""
    if method in LIMITED and params and not isinstance(params[0], dict):
        raise TypeError("the first parameter is a call object")
    if method in LIMITED and params and isinstance(params[0], dict):
        call = dict(params[0])
        call["gas"] = hex(min(_quantity(call.get("gas", gas_cap)), gas_cap))
        if method == "eth_call" and len(params) == 1:
            params = [*params, "latest"]  # as geth and anvil take it
        if "input" in call:
            data = call.pop("input")
            call.setdefault("data", data)
        if method == "eth_call":
            # A call pays nothing, but py-evm checks the caller can pay for its gas. cast
            # calls "from" the zero address, which has no balance: run those as the
            # node's own funded account (a view does not depend on its caller).
            for fee in ("gasPrice", "maxFeePerGas", "maxPriorityFeePerGas"):
                call.pop(fee, None)
            if str(call.get("from", "")).lower() == "0x" + "00" * 20:
                del call["from"]
        return [call, *params[1:]]
    return params


def _quantity(raw: object) -> int:
    if isinstance(raw, int) and not isinstance(raw, bool) and raw >= 0:
        return raw
    if isinstance(raw, str) and raw.startswith("0x") and 2 < len(raw) <= 66:
        return int(raw, 16)
    raise ValueError(f"{raw!r} is not a quantity (0x-hex)")


def _asked_cap(params: list[Any], gas_cap: int) -> bool:
    """Whether a normalised call ran with the cap as its gas (so running out is ours)."""
    call = params[0] if params and isinstance(params[0], dict) else {}
    return call.get("gas") == hex(gas_cap)


def _mine_count_ok(params: list[Any]) -> bool:
    if not params:
        return True
    try:
        count = _quantity(params[0])
    except ValueError:
        return False
    return 1 <= count <= MAX_MINE


# A string from its opening quote to its closing one, or to the end of an unterminated
# body; possessive, so no input makes it backtrack.
_STRING = re.compile(rb'"(?:[^"\\]++|\\.?)*+"?', re.DOTALL)
# Brackets as one kind: nesting depth is all that is measured (a `[}` mix is not JSON
# and fails to parse anyway, within the depth measured here).
_BRACKETS = bytes.maketrans(b"{}", b"[]")
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")


def json_shape_problem(body: bytes, limit: int = MAX_NESTING) -> str | None:
    """Why JSON `body` may not be parsed here: nested more than `limit` deep (brackets
    that do not pair up count as too deep: such a body is not JSON anyway), or more than
    MAX_BRACKETS arrays and objects; None when it may.

    Without recursion and at C speed: strings are dropped, then everything but
    brackets, then each of at most `limit` passes deletes the innermost pairs.
    """
    if body.count(b"[") + body.count(b"{") <= limit:
        return None  # too few brackets to nest that deep, strings or not
    brackets = _STRING.sub(b"", body).translate(_BRACKETS, _NOT_BRACKETS)
    if len(brackets) > 2 * MAX_BRACKETS:
        return f"more than {MAX_BRACKETS} arrays and objects"
    for _ in range(limit):
        if not brackets:
            return None
        shorter = brackets.replace(b"[]", b"")
        if len(shorter) == len(brackets):
            break  # nothing pairs up: unbalanced
        brackets = shorter
    return f"JSON nested deeper than {limit}" if brackets else None


def _sender_of(method: str, params: list[Any]) -> str | None:
    """Who will pay for gas: the signer of a raw transaction, or the `from` of an estimate
    (nodes check the balance when estimating too)."""
    if method == "eth_sendRawTransaction" and params and isinstance(params[0], str):
        try:
            return str(Account.recover_transaction(params[0]))
        except Exception:
            return None
    if method == "eth_estimateGas" and params and isinstance(params[0], dict):
        sender = params[0].get("from")
        if isinstance(sender, str) and Web3.is_address(sender):
            return Web3.to_checksum_address(sender)
    return None


MAX_LOGS = 10_000
_LOG_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS node_logs (block INTEGER NOT NULL, log_index INTEGER NOT NULL,"
    " address TEXT NOT NULL, body TEXT NOT NULL, PRIMARY KEY (block, log_index))",
    "CREATE INDEX IF NOT EXISTS node_logs_by_address ON node_logs (address, block)",
    "CREATE TABLE IF NOT EXISTS node_meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL)",
)


def _block_number(tag: object, head: int) -> int:
    if tag in ("latest", "safe", "finalized", "pending", None):
        return head
    if tag == "earliest":
        return 0
    if isinstance(tag, str) and tag.startswith("0x"):
        return int(tag, 16)
    raise ValueError(f"bad block {tag!r}")


def _addresses(raw: object) -> list[str] | None:
    if raw is None:
        return None
    values = [raw] if isinstance(raw, str) else raw
    if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
        raise TypeError("address must be an address or a list of addresses")
    return [v.lower() for v in values]


def _topic_filter(raw: object) -> list[set[str] | None]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise TypeError("topics must be a list")
    wanted: list[set[str] | None] = []
    for entry in raw:
        if entry is None:
            wanted.append(None)
        elif isinstance(entry, str):
            wanted.append({entry.lower()})
        elif isinstance(entry, list):
            wanted.append({str(t).lower() for t in entry} if entry else None)
        else:
            raise TypeError("a topic is a hash, a list of hashes or null")
    return wanted


def _matches(log: dict[str, Any], wanted: list[set[str] | None]) -> bool:
    topics = [str(t).lower() for t in log.get("topics", [])]
    for position, options in enumerate(wanted):
        if options is None:
            continue
        if position >= len(topics) or topics[position] not in options:
            return False
    return True


def _result(request_id: Any, result: Any) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": request_id, "result": result}


def _answer(request_id: Any, response: Any) -> dict[str, Any]:
    """eth-tester's answer to a request, as the wire carries it."""
    answer = dict(cast(dict[str, Any], response))
    answer["id"] = request_id
    answer["jsonrpc"] = "2.0"
    if "result" in answer:
        answer["result"] = to_wire(answer["result"])
    return answer


def _error(request_id: Any, code: int, message: str) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": request_id, "error": {"code": code, "message": message}}


def _dump(answer: object) -> bytes:
    return json.dumps(answer, separators=(",", ":")).encode()
