"""Reading the registry's events in bulk: bounded eth_getLogs ranges, direct decoding.

The index (``ledger.index``) reads the registry's logs block range by block range. Nodes
bound what one ``eth_getLogs`` may ask: Besu refuses more than 5,000 blocks by default,
public endpoints and elicence's own node more than 10,000 results, and any node is slow
to send a huge answer. So the range adapts (:class:`RangePlanner`): it starts small,
grows while answers stay under ``TARGET_LOGS``, shrinks when one is larger, and is
halved when the node refuses it, the halved size becoming its ceiling; a single block
the node refuses is an error (:class:`~ledger.errors.ChainReadFailed`).

Logs are decoded without web3's per-log machinery (result formatters, AttributeDicts,
``process_log``, which cost more than the rest of indexing together): each event's
layout is read once from the contract's ABI (its topic hash, which inputs are topics,
which 32-byte words of the data hold the others) and a log is cut by slicing its hex
strings (:class:`EventDecoder`). Values come out in the index journal's JSON form:
``bytesN`` as 0x-hex, integers as ``int``, addresses checksummed; events with dynamic
data (strings, arrays) go through eth_abi for their data.

Over HTTP the JSON-RPC answers are taken raw from the provider (``make_request``), as
the node sent them; the in-process eth-tester chain of the tests is read through web3
and given the same shape.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Protocol, cast

from eth_abi.abi import decode as abi_decode
from eth_typing import ABIEvent, ChecksumAddress
from eth_utils.abi import event_abi_to_log_topic
from eth_utils.address import to_checksum_address
from web3 import HTTPProvider, Web3
from web3.types import FilterParams, RPCEndpoint

from ledger.chain import translate_errors
from ledger.errors import ChainReadFailed, IndexMismatch, TransactionFailed

__all__ = [
    "FIRST_SPAN",
    "MAX_SPAN",
    "TARGET_LOGS",
    "EventDecoder",
    "LogReader",
    "RangePlanner",
    "RegistryEvent",
    "log_reader",
]

# Blocks asked for first: small, because a chain can carry thousands of registry events
# in one block (an anvil or a busy consortium chain) as well as one in ten thousand.
FIRST_SPAN = 16
# Beyond this many blocks an answer takes long even when it is empty (nodes scan blooms
# block by block), and a refusal costs a wasted request.
MAX_SPAN = 100_000
# Logs per answer aimed at: large enough that the round trip is amortised (~0.3 ms per
# 1,000 logs on anvil), small enough to stay under the 10,000-result limits and a few
# megabytes of JSON.
TARGET_LOGS = 5_000

_WORD = 64  # hex characters in a 32-byte ABI word


@dataclass(frozen=True, slots=True)
class RegistryEvent:
    """One registry event, its arguments in JSON form (bytes as 0x-hex).

    ``timestamp`` is its block's time when known (always for anchors, whose time
    verdicts show; for the others when the node sends it with the log), else 0.
    """

    block_number: int
    log_index: int
    tx_hash: str
    name: str
    args: dict[str, Any]
    timestamp: int


# A reader takes a hex string (a topic, or the log's data, with its "0x") and the offset
# of a 32-byte word in it, and returns the value in JSON form.
_Reader = Callable[[str, int], Any]


def _word_reader(abi_type: str) -> _Reader | None:
    """How to read `abi_type` from its word (for dynamic types: the word holding its
    offset), or None for a type read through eth_abi."""
    if abi_type.startswith("uint"):
        return lambda text, at: int(text[at : at + _WORD], 16)
    if abi_type.startswith("int"):
        bits = int(abi_type[3:] or 256)

        def signed(text: str, at: int) -> int:
            value = int(text[at : at + _WORD], 16) & ((1 << bits) - 1)
            return value - (1 << bits) if value >> (bits - 1) else value

        return signed
    if abi_type == "bool":
        return lambda text, at: int(text[at : at + _WORD], 16) != 0
    if abi_type == "address":
        return lambda text, at: to_checksum_address("0x" + text[at + 24 : at + _WORD])
    if abi_type.startswith("bytes") and abi_type[5:].isdigit():
        width = 2 * int(abi_type[5:])
        return lambda text, at: "0x" + text[at : at + width]
    if abi_type in {"string", "bytes"}:
        return _bytes_reader(as_text=abi_type == "string")
    if abi_type.endswith("[]"):
        element = _word_reader(abi_type[:-2])
        if element is not None and not _is_dynamic(abi_type[:-2]):
            return _array_reader(element)
    return None


def _is_dynamic(abi_type: str) -> bool:
    return abi_type in {"string", "bytes"} or abi_type.endswith("]")


def _tail(text: str, at: int) -> tuple[int, int]:
    """Where a dynamic value's tail starts (after its length word), and its length."""
    start = 2 + 2 * int(text[at : at + _WORD], 16)
    length = int(text[start : start + _WORD], 16)
    return start + _WORD, length


def _bytes_reader(*, as_text: bool) -> _Reader:
    def read(text: str, at: int) -> Any:
        start, length = _tail(text, at)
        if start + 2 * length > len(text):
            raise ValueError("a value past the end of the data")
        raw = text[start : start + 2 * length]
        return bytes.fromhex(raw).decode("utf-8") if as_text else "0x" + raw

    return read


def _array_reader(element: _Reader) -> _Reader:
    def read(text: str, at: int) -> list[Any]:
        start, length = _tail(text, at)
        if start + length * _WORD > len(text):
            raise ValueError("an array past the end of the data")
        return [element(text, start + k * _WORD) for k in range(length)]

    return read


def _jsonable(value: Any, abi_type: str) -> Any:
    if abi_type == "address":
        return to_checksum_address(value)
    if isinstance(value, bytes):
        return "0x" + value.hex()
    if isinstance(value, list | tuple):
        inner = abi_type[: abi_type.rindex("[")] if abi_type.endswith("]") else ""
        return [_jsonable(v, inner) for v in value]
    return value


@dataclass(frozen=True)
class _Layout:
    """Where each input of one event is found in its log."""

    name: str
    topic_count: int
    data_words: int
    # In ABI order: (name, topic number or 0 for the data, offset of its word, reader).
    fields: tuple[tuple[str, int, int, _Reader], ...]
    # Set when a data input has a type the readers do not know: eth_abi decodes the data.
    abi_names: tuple[str, ...] = ()
    abi_types: tuple[str, ...] = ()

    def decode(self, topics: Sequence[str], data: str) -> dict[str, Any]:
        if len(topics) != self.topic_count or len(data) < 2 + self.data_words * _WORD:
            raise ValueError(f"a {self.name} log whose shape its ABI does not describe")
        args: dict[str, Any] = {}
        for name, topic, at, read in self.fields:
            args[name] = read(topics[topic] if topic else data, at)
        if self.abi_types:
            values = abi_decode(self.abi_types, bytes.fromhex(data[2:]))
            for name, value, abi_type in zip(self.abi_names, values, self.abi_types, strict=True):
                args[name] = _jsonable(value, abi_type)
        return args


def _layout(item: Mapping[str, Any]) -> _Layout:
    inputs = item["inputs"]
    data_inputs = [p for p in inputs if not p.get("indexed")]
    readers = {str(p["name"]): _word_reader(str(p["type"])) for p in data_inputs}
    fallback = not all(readers.values())
    fields: list[tuple[str, int, int, _Reader]] = []
    topic, word = 1, 0
    for param in inputs:
        name, abi_type = str(param["name"]), str(param["type"])
        if param.get("indexed"):
            # An indexed dynamic value is only its hash: kept as the topic.
            read = None if _is_dynamic(abi_type) else _word_reader(abi_type)
            fields.append((name, topic, 2, read or (lambda text, at: text)))
            topic += 1
        else:
            if not fallback:
                fields.append((name, 0, 2 + word * _WORD, cast(_Reader, readers[name])))
            word += 1
    return _Layout(
        name=str(item["name"]),
        topic_count=topic,
        data_words=word,
        fields=tuple(fields),
        abi_names=tuple(str(p["name"]) for p in data_inputs) if fallback else (),
        abi_types=tuple(str(p["type"]) for p in data_inputs) if fallback else (),
    )


class EventDecoder:
    """Decodes raw logs of a contract into :class:`RegistryEvent` by its ABI's events."""

    def __init__(self, abi: Iterable[Mapping[str, Any]]) -> None:
        self._layouts: dict[str, _Layout] = {
            "0x" + event_abi_to_log_topic(cast(ABIEvent, item)).hex(): _layout(item)
            for item in abi
            if item.get("type") == "event" and not item.get("anonymous")
        }

    def topic_of(self, name: str) -> str:
        """The topic hash (0x-hex) of the event called `name`."""
        for topic, layout in self._layouts.items():
            if layout.name == name:
                return topic
        raise LookupError(f"the ABI has no event {name}")

    def decode(self, log: Mapping[str, Any]) -> RegistryEvent | None:
        """The event `log` (a JSON-RPC log object) records; None for a log the ABI does
        not describe. IndexMismatch for a log whose topic is known but shape is not."""
        topics = log["topics"]
        layout = self._layouts.get(topics[0].lower()) if topics else None
        if layout is None:
            return None
        try:
            args = layout.decode(topics, log["data"])
        except (ValueError, IndexError, TypeError) as exc:
            raise IndexMismatch(f"cannot decode a registry log: {exc}") from exc
        stamp = log.get("blockTimestamp")
        return RegistryEvent(
            block_number=int(log["blockNumber"], 16),
            log_index=int(log["logIndex"], 16),
            tx_hash=log["transactionHash"],
            name=layout.name,
            args=args,
            timestamp=int(stamp, 16) if stamp is not None else 0,
        )


class _Refused(Exception):
    """The node refused one eth_getLogs range (too many blocks, or too many results)."""


class LogReader(Protocol):
    """The three reads indexing needs, in JSON-RPC's raw shapes."""

    def logs(self, address: ChecksumAddress, low: int, high: int) -> list[dict[str, Any]]:
        """The logs of `address` in blocks low..high (raises _Refused when refused)."""

    def block_hash(self, number: int) -> str:
        """The hash (0x-hex) of block `number`."""

    def timestamps(self, numbers: Sequence[int]) -> dict[int, int]:
        """The times of the blocks `numbers`."""


class _RawReader:
    """JSON-RPC through the HTTP provider, its answers as the node sent them."""

    def __init__(self, provider: HTTPProvider) -> None:
        self._provider = provider

    def _call(self, method: str, params: list[Any]) -> Any:
        with translate_errors():
            response = self._provider.make_request(RPCEndpoint(method), params)
        error = response.get("error")
        if error is not None:
            message = error.get("message", error) if isinstance(error, dict) else error
            raise ChainReadFailed(f"{method} was refused: {message}")
        return response.get("result")

    def logs(self, address: ChecksumAddress, low: int, high: int) -> list[dict[str, Any]]:
        query = {"address": address, "fromBlock": hex(low), "toBlock": hex(high)}
        try:
            found = self._call("eth_getLogs", [query])
        except ChainReadFailed as exc:
            raise _Refused(str(exc)) from exc
        return cast(list[dict[str, Any]], found)

    def block_hash(self, number: int) -> str:
        block = self._call("eth_getBlockByNumber", [hex(number), False])
        if block is None:
            raise ChainReadFailed(f"the node has no block {number}")
        return str(block["hash"])

    def timestamps(self, numbers: Sequence[int]) -> dict[int, int]:
        if not numbers:
            return {}
        requests = [
            (RPCEndpoint("eth_getBlockByNumber"), [hex(number), False]) for number in numbers
        ]
        with translate_errors():
            answers = self._provider.make_batch_request(requests)
        if not isinstance(answers, list):  # a node without batches answers one error
            return {number: int(self._block(number)["timestamp"], 16) for number in numbers}
        found: dict[int, int] = {}
        for number, answer in zip(numbers, answers, strict=True):
            block = answer.get("result")
            if block is None:
                raise ChainReadFailed(f"the node has no block {number}")
            found[number] = int(block["timestamp"], 16)
        return found

    def _block(self, number: int) -> dict[str, Any]:
        block = self._call("eth_getBlockByNumber", [hex(number), False])
        if block is None:
            raise ChainReadFailed(f"the node has no block {number}")
        return cast(dict[str, Any], block)


class _Web3Reader:
    """Any other provider (the in-process eth-tester chain): through web3, its answers
    turned back into JSON-RPC's shape."""

    def __init__(self, w3: Web3) -> None:
        self._w3 = w3

    def logs(self, address: ChecksumAddress, low: int, high: int) -> list[dict[str, Any]]:
        query = cast(FilterParams, {"address": address, "fromBlock": low, "toBlock": high})
        try:
            with translate_errors():
                found = self._w3.eth.get_logs(query)
        except TransactionFailed as exc:  # the node's error answer, translated
            raise _Refused(str(exc)) from exc
        return [
            {
                "topics": ["0x" + bytes(t).hex() for t in log["topics"]],
                "data": "0x" + bytes(log["data"]).hex(),
                "blockNumber": hex(log["blockNumber"]),
                "logIndex": hex(log["logIndex"]),
                "transactionHash": log["transactionHash"].to_0x_hex(),
            }
            for log in found
        ]

    def block_hash(self, number: int) -> str:
        with translate_errors():
            return self._w3.eth.get_block(number)["hash"].to_0x_hex()

    def timestamps(self, numbers: Sequence[int]) -> dict[int, int]:
        with translate_errors():
            return {n: int(self._w3.eth.get_block(n)["timestamp"]) for n in numbers}


def log_reader(w3: Web3) -> LogReader:
    """The fastest reader `w3`'s provider allows."""
    if isinstance(w3.provider, HTTPProvider):
        return _RawReader(w3.provider)
    return _Web3Reader(w3)


class RangePlanner:
    """How many blocks to ask for next: adapted to the answers and refusals so far."""

    def __init__(
        self, *, first: int = FIRST_SPAN, ceiling: int = MAX_SPAN, target: int = TARGET_LOGS
    ) -> None:
        self.ceiling = max(1, ceiling)
        self.span = max(1, min(first, self.ceiling))
        self._target = target

    def answered(self, blocks: int, logs: int) -> None:
        """An answer of `logs` logs for `blocks` blocks: aim the next at the target."""
        if logs > 2 * self._target:
            self.span = max(1, blocks * self._target // logs)
        elif logs < self._target and blocks >= self.span:
            # At most 8x at a time: density changes along a chain's history.
            grown = blocks * 8 if logs == 0 else blocks * self._target // logs
            self.span = min(self.ceiling, max(blocks + 1, min(grown, blocks * 8)))

    def refused(self, blocks: int) -> bool:
        """The node refused `blocks` blocks: halve (and never ask as many again).
        False when a single block was refused: nothing smaller can be asked."""
        if blocks <= 1:
            return False
        self.ceiling = max(1, blocks // 2)
        self.span = self.ceiling
        return True


def read_ranges(
    reader: LogReader,
    address: ChecksumAddress,
    start: int,
    end: int,
    planner: RangePlanner,
) -> Iterator[tuple[int, int, list[dict[str, Any]]]]:
    """(low, high, logs) for consecutive ranges covering start..end, in order.

    Over HTTP the next range is asked for while the caller applies this one, so the
    node's work and the index's overlap (one request ahead, no more).

    Raises:
        ChainReadFailed: the node refuses the logs of a single block.
        ChainUnreachable: the node stopped answering.
    """
    ahead = isinstance(reader, _RawReader)
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="elicence-logs") as pool:
        low = start
        pending: Future[list[dict[str, Any]]] | None = None
        while low <= end:
            high = min(end, low + planner.span - 1)
            if pending is None:
                pending = pool.submit(reader.logs, address, low, high)
            try:
                logs = pending.result()
            except _Refused as exc:
                if not planner.refused(high - low + 1):
                    raise ChainReadFailed(
                        f"the node refuses the logs of block {low}: {exc}"
                    ) from exc
                continue
            finally:
                pending = None
            planner.answered(high - low + 1, len(logs))
            if ahead and high < end:
                pending = pool.submit(reader.logs, address, high + 1, min(end, high + planner.span))
            yield low, high, logs
            low = high + 1
