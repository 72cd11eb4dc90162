"""The registry index kept fresh for every answer, and reopened when the chain returns.

Freshness rule: a verification reflects every transaction whose receipt came back
before the request arrived. So before answering, the service asks the chain for its head
(one eth_blockNumber) and indexes what is new. Requests share that question
(single-flight): a request joins a head check only if the check *started after* the
request arrived; one that arrives while a check is already under way waits for the next
one, which starts as soon as the current one ends and serves every request that arrived
meanwhile. So under load there is at most one head check running and one gathering
requests, whatever the number of connections.

The blocking web3 call runs in a worker thread, off the event loop. When the chain
cannot be read the check raises CouldNotCheck (an HTTP 503 at the edge, never a verdict),
and the next request simply tries again: nothing needs restarting when the chain comes
back, including when it was down at start-up.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from ledger.errors import ChainUnreachable, LedgerError
from ledger.index import RegistryIndex
from ledger.registry import Agency, Anchor, LeafState, Registry
from verifier.errors import CouldNotCheck

OpenRegistry = Callable[[], Registry]
PROBE_TIMEOUT_S = 5.0


class HeadProbe:
    """eth_blockNumber over one kept-alive HTTP connection, without web3.

    Measured here: web3's `eth.block_number` costs ~3 ms of client-side processing per
    call against the embedded node's ~1 ms round trip; this probe is called for nearly
    every request under load, so it speaks the one JSON-RPC call itself.
    """

    def __init__(self, url: str) -> None:
        parsed = urlsplit(url)
        if parsed.scheme not in {"http", "https"} or not parsed.hostname:
            raise ValueError(f"not an http(s) URL: {url}")
        self._https = parsed.scheme == "https"
        self._host = parsed.hostname
        self._port = parsed.port
        self._path = parsed.path or "/"
        self._connection: http.client.HTTPConnection | None = None
        self._body = json.dumps(
            {"jsonrpc": "2.0", "id": 1, "method": "eth_blockNumber", "params": []}
        ).encode()

    def _connect(self) -> http.client.HTTPConnection:
        if self._https:
            return http.client.HTTPSConnection(self._host, self._port, timeout=PROBE_TIMEOUT_S)
        return http.client.HTTPConnection(self._host, self._port, timeout=PROBE_TIMEOUT_S)

    def __call__(self) -> int:
        """The chain's head; ChainUnreachable when it does not answer."""
        # A kept-alive connection may have been closed by the node meanwhile (a restart):
        # one retry on a fresh connection tells that apart from a node that is down.
        for attempt in range(2):
            if self._connection is None:
                self._connection = self._connect()
            try:
                self._connection.request(
                    "POST", self._path, self._body, {"Content-Type": "application/json"}
                )
                response = self._connection.getresponse()
                raw = response.read()
                if response.status != 200:
                    raise ChainUnreachable(f"eth_blockNumber answered HTTP {response.status}")
                return int(json.loads(raw)["result"], 16)
            except (OSError, http.client.HTTPException) as exc:
                self._connection.close()
                self._connection = None
                if attempt == 1:
                    raise ChainUnreachable(f"no answer to eth_blockNumber: {exc}") from exc
            except (ValueError, KeyError, TypeError) as exc:
                raise ChainUnreachable(f"a malformed answer to eth_blockNumber: {exc}") from exc
        raise AssertionError("unreachable")


@dataclass(frozen=True)
class IndexView:
    """The index as one answer sees it: a LedgerSource whose height is the one the
    freshness check established (read once, not once per question)."""

    index: RegistryIndex
    height: int

    @property
    def chain_id(self) -> int:
        """The chain the registry lives on."""
        return self.index.chain_id

    @property
    def registry_address(self) -> str:
        """The trusted registry."""
        return self.index.registry_address

    def block_number(self) -> int:
        """The block height this answer reflects."""
        return self.height

    def anchor_of(self, root: bytes) -> Anchor | None:
        """The anchor of a batch root, or None."""
        return self.index.anchor_of(root)

    def agency(self, agency_id: int) -> Agency:
        """An agency by id."""
        return self.index.agency(agency_id)

    def status_of(self, root: bytes, leaf: bytes) -> LeafState:
        """A licence's status under its root."""
        return self.index.status_of(root, leaf)


class LiveIndex:
    """A RegistryIndex at `path` over the registry `open_registry` connects to."""

    def __init__(self, path: Path, open_registry: OpenRegistry, *, confirmations: int = 0) -> None:
        self._path = path
        self._open_registry = open_registry
        self._confirmations = confirmations
        self._index: RegistryIndex | None = None
        self._probe: Callable[[], int] | None = None
        self._open_lock = threading.Lock()
        self._running: asyncio.Future[int] | None = None
        self._waiting: asyncio.Future[int] | None = None
        self._transactions: dict[tuple[bytes, int], str | None] = {}
        self.head_checks = 0  # how many head checks ran (observability and tests)
        self.last_height: int | None = None

    @property
    def index(self) -> RegistryIndex | None:
        """The open index, or None while the chain has not been reached yet."""
        return self._index

    def catch_up_blocking(self) -> int:
        """Open the index if needed and bring it to the chain's head; the height it reflects.

        Raises CouldNotCheck when the chain (or the registry on it) cannot be read.
        """
        try:
            with self._open_lock:
                if self._index is None:
                    registry = self._open_registry()
                    url = registry.chain.url
                    self._probe = (
                        HeadProbe(url)
                        if url.startswith(("http:", "https:"))
                        else registry.chain.block_number
                    )
                    self._index = RegistryIndex(
                        self._path, registry, confirmations=self._confirmations
                    )
                index, probe = self._index, self._probe
            assert probe is not None
            self.head_checks += 1
            head = probe()
            if head - index.confirmations > index.synced_block:
                index.sync(head)
            height = index.synced_block
        except LedgerError as exc:
            raise CouldNotCheck(f"the chain could not be read: {exc}") from exc
        self.last_height = height
        return height

    async def fresh(self) -> IndexView:
        """The index, caught up with a head check that started after this call."""
        if self._running is None:
            future = self._start()
        else:
            if self._waiting is None:
                self._waiting = asyncio.get_running_loop().create_future()
            future = self._waiting
        # shield: a client that hangs up must not cancel the check others share.
        height = await asyncio.shield(future)
        assert self._index is not None  # a successful check opened it
        return IndexView(self._index, height)

    def _start(self) -> asyncio.Future[int]:
        loop = asyncio.get_running_loop()
        running = loop.run_in_executor(None, self.catch_up_blocking)
        self._running = running
        running.add_done_callback(self._finished)
        return running

    def _finished(self, done: asyncio.Future[int]) -> None:
        self._running = None
        waiting, self._waiting = self._waiting, None
        if done.cancelled():
            return
        done.exception()  # retrieved here: every waiter may have gone away
        if waiting is not None:
            _chain(self._start(), waiting)

    def anchor_transaction(self, anchor: Anchor) -> str | None:
        """The transaction that anchored a batch, remembered per (root, block): the
        journal look-up runs once per batch, not once per verification."""
        key = (anchor.root, anchor.block_number)
        if key not in self._transactions:
            index = self._index
            found = index.anchor_transaction(anchor.root) if index is not None else None
            if found is None:
                return None
            self._transactions[key] = found
        return self._transactions[key]

    def close(self) -> None:
        """Close the index file."""
        if self._index is not None:
            self._index.close()


def _chain(source: asyncio.Future[int], target: asyncio.Future[int]) -> None:
    """Complete `target` as `source` completes."""

    def copy(done: asyncio.Future[int]) -> None:
        if target.done():
            return
        if done.cancelled():
            target.cancel()
        elif (exc := done.exception()) is not None:
            target.set_exception(exc)
        else:
            target.set_result(done.result())

    source.add_done_callback(copy)
    # Every waiter may have hung up; look at the outcome so that none goes unreported.
    target.add_done_callback(lambda done: done.cancelled() or done.exception())
