"""The registry index kept fresh for every answer, and reopened when the chain returns.

Freshness rule: a verification reflects every transaction whose receipt came back
before the request arrived. So before answering, the service asks the chain for its head
(one eth_blockNumber) and indexes what is new. Requests share that question
(single-flight): a request joins a head check only if the check *started after* the
request arrived; one that arrives while a check is already under way waits for the next
one, which starts as soon as the current one ends and serves every request that arrived
meanwhile. So under load there is at most one head check running and one gathering
requests, whatever the number of connections.

When the chain is this home's embedded node, its head is read from the page the node
publishes it in (ledger.head_page) before it answers any request that moved it: no
question, no wait, and a request whose index is already at that head is answered at
once. Otherwise, and whenever the page cannot be trusted (the node stopped or was
killed), the head check speaks HTTP on the event loop (HeadProbe). Indexing new blocks,
which takes web3 calls, runs in a worker thread. When the chain cannot be read the check
raises CouldNotCheck (an HTTP 503 at the edge, never a verdict), and the next request
simply tries again: nothing needs restarting when the chain comes back, including when
it was down at start-up.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from ledger.errors import ChainUnreachable, LedgerError
from ledger.head_page import HeadPage
from ledger.index import RegistryIndex
from ledger.registry import Agency, Anchor, LeafState, PublishedType, Registry, SealKey
from verifier.errors import CouldNotCheck

OpenRegistry = Callable[[], Registry]
PROBE_TIMEOUT_S = 5.0
# How often a head page that could not be opened, or went stale, is looked for again
# (a node started, or restarted with its home recreated, after the service).
PAGE_RETRY_S = 5.0


class HeadProbe:
    """eth_blockNumber over one kept-alive HTTP/1.1 connection, on the event loop.

    Called for nearly every request under load, so it costs what it must and no more:
    web3's `eth.block_number` spent ~3 ms of client-side processing per call against the
    embedded node's ~1 ms round trip, and a blocking call in a worker thread waited for
    the GIL behind the busy event loop (one slow probe delays every request waiting for
    it). This speaks the one JSON-RPC call with asyncio streams instead.
    """

    def __init__(self, url: str) -> None:
        parsed = urlsplit(url)
        if parsed.scheme not in {"http", "https"} or not parsed.hostname:
            raise ValueError(f"not an http(s) URL: {url}")
        self._tls = parsed.scheme == "https"
        self._host = parsed.hostname
        self._port = parsed.port or (443 if self._tls else 80)
        body = json.dumps(
            {"jsonrpc": "2.0", "id": 1, "method": "eth_blockNumber", "params": []}
        ).encode()
        self._request = (
            f"POST {parsed.path or '/'} HTTP/1.1\r\nHost: {parsed.netloc}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        ).encode("latin-1") + body
        self._streams: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None

    async def __call__(self) -> int:
        """The chain's head; ChainUnreachable when it does not answer."""
        # A kept-alive connection may have been closed by the node meanwhile (a restart):
        # one retry on a fresh connection tells that apart from a node that is down.
        for attempt in range(2):
            try:
                async with asyncio.timeout(PROBE_TIMEOUT_S):
                    if self._streams is None:
                        self._streams = await asyncio.open_connection(
                            self._host, self._port, ssl=self._tls or None
                        )
                    reader, writer = self._streams
                    writer.write(self._request)
                    status, raw, keep = await _read_response(reader)
                if not keep:
                    self.close()
            except (
                OSError,
                TimeoutError,
                asyncio.IncompleteReadError,
                asyncio.LimitOverrunError,
                ValueError,
            ) as exc:
                self.close()
                if attempt == 1:
                    reason = "no answer in time" if isinstance(exc, TimeoutError) else exc
                    raise ChainUnreachable(f"no answer to eth_blockNumber: {reason}") from exc
                continue
            if status != 200:
                raise ChainUnreachable(f"eth_blockNumber answered HTTP {status}")
            try:
                return int(json.loads(raw)["result"], 16)
            except (ValueError, KeyError, TypeError) as exc:
                raise ChainUnreachable(f"a malformed answer to eth_blockNumber: {exc}") from exc
        raise AssertionError("unreachable")

    def close(self) -> None:
        """Drop the connection (the next call opens a new one)."""
        if self._streams is not None:
            self._streams[1].close()
            self._streams = None


_MAX_ANSWER_BYTES = 1 << 20


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bytes, bool]:
    """One HTTP/1.1 response: status, body, and whether the connection stays open.
    ValueError for anything that is not one."""
    status_line = await reader.readuntil(b"\r\n")
    version, _, rest = status_line.partition(b" ")
    if not version.startswith(b"HTTP/1."):
        raise ValueError(f"not an HTTP/1.x answer: {status_line[:40]!r}")
    status = int(rest[:3])
    length: int | None = None
    chunked = False
    keep = version == b"HTTP/1.1"
    while (line := await reader.readuntil(b"\r\n")) != b"\r\n":
        name, _, value = line.partition(b":")
        name, value = name.strip().lower(), value.strip().lower()
        if name == b"content-length":
            length = int(value)
        elif name == b"transfer-encoding":
            chunked = value.endswith(b"chunked")
        elif name == b"connection":
            keep = value == b"keep-alive" or (keep and value != b"close")
    if chunked:
        parts = []
        total = 0
        while size := int((await reader.readuntil(b"\r\n")).split(b";")[0], 16):
            total += size
            if total > _MAX_ANSWER_BYTES:
                raise ValueError("an oversized answer")
            parts.append(await reader.readexactly(size + 2))
        await reader.readuntil(b"\r\n")  # no trailers are sent to a JSON-RPC client
        return status, b"".join(p[:-2] for p in parts), keep
    if length is None or length > _MAX_ANSWER_BYTES:
        raise ValueError("an answer without a usable Content-Length")
    return status, await reader.readexactly(length), keep


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

    def compromised_from(self, agency_id: int, key_number: int) -> int | None:
        """The block from which an agency key was reported compromised, or None."""
        return self.index.compromised_from(agency_id, key_number)

    def seal_key_at(self, agency_id: int, block_number: int) -> SealKey | None:
        """The agency's seal key for batches anchored in `block_number`, or None."""
        return self.index.seal_key_at(agency_id, block_number)

    def licence_type(self, code: int, version: int) -> PublishedType | None:
        """A published licence type version, or None."""
        return self.index.licence_type(code, version)


class LiveIndex:
    """A RegistryIndex at `path` over the registry `open_registry` connects to."""

    def __init__(
        self,
        path: Path,
        open_registry: OpenRegistry,
        *,
        confirmations: int = 0,
        on_checked: Callable[[int], None] = lambda height: None,
        head_page: Path | None = None,
    ) -> None:
        """`head_page`: where this home's embedded node publishes its head
        (ledger.head_page.head_page_path), read when the chain URL is that node's."""
        self._path = path
        self._head_page_path = head_page
        self._page: HeadPage | None = None
        self._page_looked_for = -PAGE_RETRY_S
        self._chain_url: str | None = None
        self._on_checked = on_checked  # told the height after every head check
        self._open_registry = open_registry
        self._confirmations = confirmations
        self._index: RegistryIndex | None = None
        self._http_probe: HeadProbe | None = None
        self._chain_head: Callable[[], int] | None = None
        self._open_lock = threading.Lock()
        self._running: asyncio.Future[int] | None = None
        self._waiting: asyncio.Future[int] | None = None
        self._transactions: dict[tuple[bytes, int], str | None] = {}

    @property
    def index(self) -> RegistryIndex | None:
        """The open index, or None while the chain has not been reached yet."""
        return self._index

    def catch_up_blocking(self) -> int:
        """Open the index if needed and bring it to the chain's head; the height it reflects.

        Blocking (start-up, and in a worker thread). Raises CouldNotCheck when the chain
        (or the registry on it) cannot be read.
        """
        try:
            index = self._open_blocking()
            assert self._chain_head is not None  # set with the index
            return self._synced_to(index, self._chain_head())
        except LedgerError as exc:
            raise CouldNotCheck(f"the chain could not be read: {exc}") from exc

    def _open_blocking(self) -> RegistryIndex:
        with self._open_lock:
            if self._index is None:
                registry = self._open_registry()
                url = registry.chain.url
                self._http_probe = HeadProbe(url) if url.startswith(("http:", "https:")) else None
                self._chain_url = url
                self._chain_head = registry.chain.block_number
                self._index = RegistryIndex(self._path, registry, confirmations=self._confirmations)
            return self._index

    def _page_head(self) -> int | None:
        """The head from this home's node's page, or None (no such page, or not to be
        trusted now)."""
        page = self._page
        if page is not None:
            head = page.head()
            if head is not None:
                return head
        if self._head_page_path is None or self._chain_url is None:
            return None
        # Stale or missing: the node may have come back with a new page file.
        now = time.monotonic()
        if now - self._page_looked_for < PAGE_RETRY_S:
            return None
        self._page_looked_for = now
        index = self._index
        assert index is not None  # the URL is known once the index is open
        found = HeadPage.open(self._head_page_path, chain_id=index.chain_id, url=self._chain_url)
        if found is None:
            return None
        if page is not None:
            page.close()
        self._page = found
        return found.head()

    def _synced_to(self, index: RegistryIndex, head: int) -> int:
        if head - index.confirmations > index.synced_block:
            index.sync(head)
        self._on_checked(index.synced_block)
        return index.synced_block

    async def _check(self) -> int:
        loop = asyncio.get_running_loop()
        index, probe = self._index, self._http_probe
        if index is None or probe is None:
            # Not open yet (the chain was down at start-up), or a chain without HTTP
            # (in-process tests): the blocking path, in a worker thread.
            return await loop.run_in_executor(None, self.catch_up_blocking)
        try:
            head = self._page_head()
            if head is None:
                head = await probe()
            if head - index.confirmations <= index.synced_block:
                self._on_checked(index.synced_block)
                return index.synced_block
            # New blocks: reading their logs is web3's work, off the event loop.
            return await loop.run_in_executor(None, self._synced_to, index, head)
        except LedgerError as exc:
            raise CouldNotCheck(f"the chain could not be read: {exc}") from exc

    async def fresh(self) -> IndexView:
        """The index, caught up with the head the node's page shows now, or else with a head
        check that started after this call."""
        index = self._index
        if index is not None and self._page is not None:
            # The page shows the head as of now: already indexed, nothing to wait for.
            head = self._page.head()
            if head is not None and head - index.confirmations <= index.synced_block:
                return IndexView(index, index.synced_block)
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
        running = asyncio.ensure_future(self._check())
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
        """Close the index file, the head page and the head probe's connection."""
        if self._http_probe is not None:
            self._http_probe.close()
        if self._page is not None:
            self._page.close()
            self._page = None
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
