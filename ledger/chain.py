"""A chain at a URL, and sending locally signed transactions to it.

web3 is the one seam to any chain: ``connect("embedded")`` runs an in-process
eth-tester (py-evm) node behind web3's provider interface, ``connect("http://...")``
talks JSON-RPC to anvil, Besu, geth or a consortium chain. Everything above this module
sees the same :class:`Chain` either way.

Keys never leave the process: every transaction is built here (EIP-1559 fees and the
'pending' nonce from the node, gas from ``eth_estimateGas`` plus a margin), signed with
eth_account and sent with ``eth_sendRawTransaction``; accounts held by the node are
never used.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, cast

from eth_abi.exceptions import DecodingError
from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_typing import ABIError, ABIEvent, ChecksumAddress, HexStr
from eth_utils.abi import (
    abi_to_signature,
    event_abi_to_log_topic,
    function_signature_to_4byte_selector,
)
from hexbytes import HexBytes
from web3 import Web3
from web3.exceptions import (
    ContractCustomError,
    ContractLogicError,
    ContractPanicError,
    ProviderConnectionError,
    RequestTimedOut,
    TimeExhausted,
    Web3RPCError,
)
from web3.types import TxParams, TxReceipt, Wei

from ledger.errors import (
    ChainUnreachable,
    InsufficientFunds,
    InvalidValue,
    LedgerError,
    RegistryRejected,
    RegistryUnauthorised,
    TransactionFailed,
    WrongChain,
)

__all__ = [
    "EMBEDDED_URLS",
    "Chain",
    "EventLog",
    "Sent",
    "connect",
]

EMBEDDED_URLS = frozenset({"embedded", "eth-tester://"})
CONNECT_TIMEOUT_S = 5.0
RECEIPT_TIMEOUT_S = 120.0
RECEIPT_POLL_S = 0.01
# Estimates are exact for the state they ran against; the margin covers state that
# changes between estimate and inclusion (e.g. a slot written meanwhile).
GAS_MARGIN_NUM, GAS_MARGIN_DEN = 5, 4

NONCE_RETRIES = 5
_LOCKS_GUARD = threading.Lock()


def _is_nonce_clash(message: str) -> bool:
    """The node's way of saying another transaction took this nonce."""
    lowered = message.lower()
    return "nonce" in lowered or "already known" in lowered or "underpriced" in lowered


# Errors that mean "you may not", as opposed to "this cannot be done".
_UNAUTHORISED = frozenset(
    {
        "AccessControlUnauthorizedAccount",
        "LicenceRegistryNotAgency",
        "LicenceRegistryNotAuthorised",
        "LicenceRegistryAgencyRetired",
        "LicenceRegistryNotBatchIssuer",
        "LicenceRegistryNotSignerOrGovernor",
        "LicenceRegistrySignerCompromised",
    }
)

ABI = Sequence[dict[str, Any]]


@dataclass(frozen=True)
class EventLog:
    """One decoded event from a receipt; bytes values are plain ``bytes``."""

    name: str
    args: dict[str, Any]
    address: ChecksumAddress
    log_index: int


@dataclass(frozen=True)
class Sent:
    """A mined, successful transaction."""

    tx_hash: str
    block_number: int
    gas_used: int
    contract_address: ChecksumAddress | None = None
    events: tuple[EventLog, ...] = field(default=())

    def event(self, name: str) -> EventLog:
        """The first event called ``name``; LookupError if the transaction emitted none."""
        for log in self.events:
            if log.name == name:
                return log
        raise LookupError(f"transaction {self.tx_hash} emitted no {name} event")


@dataclass(eq=False)
class Chain:
    """A connected chain: web3 handle, chain id, and an optional faucet account."""

    w3: Web3
    url: str
    chain_id: int
    faucet: LocalAccount | None = None
    _locks: dict[str, threading.Lock] = field(default_factory=dict, repr=False)

    def block_number(self) -> int:
        """The number of the latest block."""
        with translate_errors():
            return int(self.w3.eth.block_number)

    def balance(self, address: str) -> int:
        """Balance of ``address`` in wei."""
        with translate_errors():
            return int(self.w3.eth.get_balance(Web3.to_checksum_address(address)))

    def fund(self, address: str, wei: int) -> Sent:
        """Send ``wei`` from the faucet to ``address``.

        Raises:
            LedgerError: the chain has no faucet, or the transfer failed.
        """
        if self.faucet is None:
            raise LedgerError(f"chain {self.url} has no faucet account")
        return self.transact(self.faucet, to=Web3.to_checksum_address(address), value=wei)

    def transact(
        self,
        sender: LocalAccount,
        *,
        to: ChecksumAddress | None = None,
        data: HexStr | None = None,
        value: int = 0,
        abi: ABI = (),
    ) -> Sent:
        """Build, sign locally, send raw, and wait for one transaction.

        ``abi`` (the target contract's) decodes revert data and the receipt's events.

        Raises:
            RegistryRejected: the call reverts with a custom error (found while
                estimating gas, before anything is sent).
            InsufficientFunds: the sender cannot pay.
            TransactionFailed: mined with status 0, or not mined in time.
            ChainUnreachable: the node stopped answering.
        """
        tx, tx_hash = self._send(sender, to=to, data=data, value=value, abi=abi)
        with translate_errors(abi):
            # Auto-mining nodes answer at once; web3's default 0.1 s poll would dominate.
            receipt = self.w3.eth.wait_for_transaction_receipt(
                tx_hash, timeout=RECEIPT_TIMEOUT_S, poll_latency=RECEIPT_POLL_S
            )
        if receipt["status"] != 1:
            raise TransactionFailed(
                f"transaction {tx_hash.to_0x_hex()} failed in block {receipt['blockNumber']} "
                f"(gas used {receipt['gasUsed']} of {tx['gas']})"
            )
        return _sent(receipt, abi, self.w3)

    def _send(
        self,
        sender: LocalAccount,
        *,
        to: ChecksumAddress | None,
        data: HexStr | None,
        value: int,
        abi: ABI,
    ) -> tuple[TxParams, HexBytes]:
        # One sender's transactions go out one at a time from this process, so two threads
        # never pick the same nonce; another process using the same key can still take a
        # nonce first, which the node reports and a fresh nonce cures.
        with self._sender_lock(sender.address):
            for attempt in range(NONCE_RETRIES):
                try:
                    with translate_errors(abi):
                        tx = self._build(sender, to=to, data=data, value=value)
                        signed = sender.sign_transaction(cast(dict[str, Any], tx))
                        return tx, self.w3.eth.send_raw_transaction(signed.raw_transaction)
                except TransactionFailed as exc:
                    if not _is_nonce_clash(str(exc)) or attempt == NONCE_RETRIES - 1:
                        raise
                    time.sleep(0.05 * (attempt + 1))
        raise AssertionError("unreachable")  # the loop returns or raises

    def _sender_lock(self, address: str) -> threading.Lock:
        with _LOCKS_GUARD:
            return self._locks.setdefault(address, threading.Lock())

    def _build(
        self, sender: LocalAccount, *, to: ChecksumAddress | None, data: HexStr | None, value: int
    ) -> TxParams:
        eth = self.w3.eth
        priority = int(eth.max_priority_fee)
        base_fee = int(eth.get_block("latest").get("baseFeePerGas", 0))
        tx: TxParams = {
            "chainId": self.chain_id,
            "from": sender.address,
            "nonce": eth.get_transaction_count(sender.address, "pending"),
            "value": Wei(value),
            # Twice the base fee survives six full blocks of base-fee growth.
            "maxFeePerGas": Wei(2 * base_fee + priority),
            "maxPriorityFeePerGas": Wei(priority),
            "type": 2,
        }
        if to is not None:
            tx["to"] = to
        if data is not None:
            tx["data"] = data
        tx["gas"] = int(eth.estimate_gas(tx)) * GAS_MARGIN_NUM // GAS_MARGIN_DEN
        return tx


def connect(
    url: str,
    *,
    faucet_key: str | bytes | None = None,
    expected_chain_id: int | None = None,
    timeout: float = CONNECT_TIMEOUT_S,
) -> Chain:
    """Connect to the chain at ``url``.

    ``"embedded"`` (or ``"eth-tester://"``) starts a fresh in-process eth-tester chain
    whose first pre-funded account becomes the faucet; ``http(s)://...`` connects to a
    JSON-RPC node, with a faucet only if ``faucet_key`` is given.

    Raises:
        ChainUnreachable: nothing answers at ``url`` within ``timeout`` seconds.
        WrongChain: the node's chain id differs from ``expected_chain_id``.
        InvalidValue: ``url`` has an unsupported scheme.
    """
    if url in EMBEDDED_URLS:
        w3, faucet = _embedded()
    elif url.startswith(("http://", "https://")):
        w3 = Web3(
            Web3.HTTPProvider(
                url, request_kwargs={"timeout": timeout}, exception_retry_configuration=None
            )
        )
        faucet = None
    else:
        raise InvalidValue(f"unsupported chain URL {url!r}: use 'embedded' or http(s)://")
    if faucet_key is not None:
        faucet = Account.from_key(faucet_key)
    try:
        with translate_errors():
            chain_id = int(w3.eth.chain_id)
    except ChainUnreachable as exc:
        raise ChainUnreachable(f"no Ethereum node answers at {url}: {exc}") from exc
    if expected_chain_id is not None and chain_id != expected_chain_id:
        raise WrongChain(f"{url} serves chain id {chain_id}, expected {expected_chain_id}")
    return Chain(w3=w3, url=url, chain_id=chain_id, faucet=faucet)


def _embedded() -> tuple[Web3, LocalAccount]:
    # eth-tester is heavy and only this path needs it.
    from ledger.tester import in_memory

    return in_memory()


@contextmanager
def translate_errors(abi: ABI = ()) -> Iterator[None]:
    """Turn web3's and the transport's exceptions into ledger errors.

    ``abi`` lets a custom-error revert be decoded into :class:`RegistryRejected`.
    """
    try:
        yield
    except ContractCustomError as exc:
        raise decode_revert(str(exc.data), abi) from exc
    except ContractPanicError as exc:
        raise TransactionFailed(f"contract panicked: {exc.message}") from exc
    except ContractLogicError as exc:
        raise TransactionFailed(str(exc.message or "execution reverted")) from exc
    except TimeExhausted as exc:
        raise TransactionFailed(str(exc)) from exc
    except (ProviderConnectionError, RequestTimedOut, OSError) as exc:
        # requests' errors are OSErrors; so are refused connections and socket timeouts.
        raise ChainUnreachable(str(exc)) from exc
    except Web3RPCError as exc:
        message = _rpc_message(exc)
        if "insufficient funds" in message.lower():
            raise InsufficientFunds(message) from exc
        if "exceeds allowance" in message.lower():
            # anvil and geth estimate gas up to what the balance buys: none, when empty.
            raise InsufficientFunds(
                f"insufficient funds: the sender's balance cannot pay for gas ({message})"
            ) from exc
        raise TransactionFailed(message) from exc


def _rpc_message(exc: Web3RPCError) -> str:
    error = (exc.rpc_response or {}).get("error")
    if isinstance(error, dict) and isinstance(error.get("message"), str):
        return str(error["message"])
    return exc.message


def decode_revert(data: str, abi: ABI) -> RegistryRejected:
    """Decode custom-error revert ``data`` (0x hex) against the errors in ``abi``."""
    raw = HexBytes(data)
    for item in abi:
        if item.get("type") != "error":
            continue
        if function_signature_to_4byte_selector(abi_to_signature(cast(ABIError, item))) != raw[:4]:
            continue
        names = [p["name"] for p in item["inputs"]]
        types = [_abi_type(p) for p in item["inputs"]]
        try:
            values = Web3().codec.decode(types, raw[4:])
        except DecodingError:
            break
        args = {n: _plain(v, t) for n, v, t in zip(names, values, types, strict=True)}
        kind = RegistryUnauthorised if item["name"] in _UNAUTHORISED else RegistryRejected
        return kind(item["name"], args)
    return RegistryRejected("UnknownError", {"data": bytes(raw)})


def _abi_type(param: dict[str, Any]) -> str:
    return str(param["type"])


def _plain(value: Any, abi_type: str) -> Any:
    if abi_type == "address":
        return Web3.to_checksum_address(value)
    if isinstance(value, bytes):
        return bytes(value)
    return value


def _sent(receipt: TxReceipt, abi: ABI, w3: Web3) -> Sent:
    address = receipt.get("contractAddress")
    return Sent(
        tx_hash=receipt["transactionHash"].to_0x_hex(),
        block_number=int(receipt["blockNumber"]),
        gas_used=int(receipt["gasUsed"]),
        contract_address=Web3.to_checksum_address(address) if address else None,
        events=decode_events(receipt, abi, w3),
    )


def decode_events(receipt: TxReceipt, abi: ABI, w3: Web3) -> tuple[EventLog, ...]:
    """The receipt's logs that match an event in ``abi``, decoded, in log order."""
    by_topic = {
        event_abi_to_log_topic(cast(ABIEvent, item)): item
        for item in abi
        if item.get("type") == "event"
    }
    if not by_topic:
        return ()
    contract = w3.eth.contract(abi=list(abi))
    decoded: list[EventLog] = []
    for log in receipt["logs"]:
        topics = log["topics"]
        item = by_topic.get(bytes(topics[0])) if topics else None
        if item is None:
            continue
        event = contract.events[item["name"]]().process_log(log)
        types = {p["name"]: str(p["type"]) for p in item["inputs"]}
        decoded.append(
            EventLog(
                name=item["name"],
                args={k: _plain(v, types[k]) for k, v in event["args"].items()},
                address=Web3.to_checksum_address(log["address"]),
                log_index=int(log["logIndex"]),
            )
        )
    return tuple(decoded)
