"""The embedded node's head block, published in a page of shared memory for the verifier
processes of the same home.

Every verification must reflect every transaction confirmed before its request arrived,
so the service learns the chain's head before each answer. Over HTTP that question
(`eth_blockNumber`) cost the embedded node about 100 µs of CPU and each service worker a
round trip its requests waited for: with the node, two workers and the load on two
cores, 1,505 checks a second took 0.17 of a core in the node and about 12 µs of each
request's CPU in the service (docs/benchmarks.md, issue 17). The node therefore
also writes its head into HOME/chain/head.page, *before* it answers any request that
moved the head, and a service in the same home reads it without a system call: a
receipt that came back before a request arrived is in a block the page already shows.

The page names the address and port the node listens on and its chain id, and only a
service whose chain URL is that address on loopback reads it: one that talks to another
node never does. The node beats it every BEAT_S; a page not beaten for STALE_S (the
node was killed) or marked stopped (the node closed) is not trusted, and the service
asks over HTTP again, where a node that is down gives 503 `could-not-check` as before.

Layout (little-endian, fixed): magic, sequence, head, beat (CLOCK_MONOTONIC ns, 0 when
stopped), chain id, port, address (16 bytes, IPv4 mapped into IPv6). The writer makes
the sequence odd while it writes and even after (a sequence lock); a reader retries a
read that saw an odd or changed sequence, so it never takes half of one head and half of
another. The freshness rule needs no memory barrier of its own: the node writes the page
before it sends the answer, and the answer's way through the kernel to the client, and
the client's request to the service, order that write before the service's read.
"""

from __future__ import annotations

import ipaddress
import mmap
import os
import struct
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

HEAD_PAGE = "head.page"
MAGIC = b"ELHEAD01"
_LAYOUT = struct.Struct("<8sQQQQQ16s")  # magic, sequence, head, beat, chain id, port, address
_FIELDS = struct.Struct("<QQQQ16s")  # head, beat, chain id, port, address (after the sequence)
_SEQUENCE = struct.Struct("<Q")
_SEQUENCE_AT = 8
_FIELDS_AT = 16
SIZE = mmap.PAGESIZE
BEAT_S = 0.2
# Five beats missed: the node is gone (or frozen, and then nothing can be confirmed).
STALE_S = 1.0
_STALE_NS = int(STALE_S * 1e9)
_READ_ATTEMPTS = 100


def _packed(address: str) -> bytes:
    parsed = ipaddress.ip_address(address)
    if isinstance(parsed, ipaddress.IPv4Address):
        parsed = ipaddress.IPv6Address(f"::ffff:{parsed}")
    return parsed.packed


# A node listening on every address answers at loopback too.
_EVERY_ADDRESS = frozenset({_packed("0.0.0.0"), _packed("::")})
_LOOPBACK = {
    "127.0.0.1": frozenset({_packed("127.0.0.1")}),
    "localhost": frozenset({_packed("127.0.0.1"), _packed("::1")}),
    "::1": frozenset({_packed("::1")}),
}


def head_page_path(node_home: Path) -> Path:
    """Where the node whose chain lives in `node_home` (HOME/chain) publishes its head."""
    return node_home / HEAD_PAGE


class HeadPublisher:
    """The node's side: the page, written in place (a reader's mapping stays valid across
    the node's restarts), and the thread that beats it."""

    def __init__(self, path: Path, *, chain_id: int, address: tuple[str, int]) -> None:
        """`address`: the (host, port) the node's socket is bound to."""
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
        try:
            os.ftruncate(fd, SIZE)
            self._page = mmap.mmap(fd, SIZE, access=mmap.ACCESS_WRITE)
        finally:
            os.close(fd)
        self._chain_id, self._port = chain_id, address[1]
        self._address = _packed(address[0])
        self._lock = threading.Lock()  # request threads and the beating thread
        self._stop = threading.Event()
        self._head = 0
        self._beater: threading.Thread | None = None
        with self._lock:
            # Stopped until the first `publish`; the sequence goes on from where a
            # previous node left it, so that no reader mistakes one write for another.
            self._write(0)
            self._page[: len(MAGIC)] = MAGIC

    def publish(self, head: int) -> None:
        """Show `head` (call before answering the request that moved it); nothing once
        closed."""
        with self._lock:
            if self._page.closed:
                return
            self._head = head
            self._write(time.monotonic_ns())

    def start_beating(self) -> None:
        """Beat every BEAT_S until `close`."""
        self._beater = threading.Thread(target=self._beat, name="elicence-head-page", daemon=True)
        self._beater.start()

    def close(self) -> None:
        """Mark the page stopped (readers turn to HTTP at once) and stop beating."""
        self._stop.set()
        if self._beater is not None:
            self._beater.join()
        with self._lock:
            if not self._page.closed:
                self._write(0)
                self._page.close()

    def _beat(self) -> None:
        while not self._stop.wait(BEAT_S):
            with self._lock:
                if self._stop.is_set():
                    return
                self._write(time.monotonic_ns())

    def _write(self, beat: int) -> None:
        sequence = _SEQUENCE.unpack_from(self._page, _SEQUENCE_AT)[0] | 1
        _SEQUENCE.pack_into(self._page, _SEQUENCE_AT, sequence)  # odd: being written
        _FIELDS.pack_into(
            self._page, _FIELDS_AT, self._head, beat, self._chain_id, self._port, self._address
        )
        _SEQUENCE.pack_into(self._page, _SEQUENCE_AT, sequence + 1)


class HeadPage:
    """The service's side: the head as the node last published it, or None when the page
    cannot be trusted (stopped, not beaten for STALE_S, another node's, or never
    settled)."""

    def __init__(
        self, page: mmap.mmap, *, chain_id: int, port: int, addresses: frozenset[bytes]
    ) -> None:
        self._page = page
        self._chain_id, self._port = chain_id, port
        self._addresses = addresses | _EVERY_ADDRESS

    @classmethod
    def open(cls, path: Path, *, chain_id: int, url: str) -> HeadPage | None:
        """The page at `path` of the node that answers at `url` for `chain_id`, or None when
        `url` is not plain HTTP on loopback or there is no such page (no node in this home,
        or not readable by this account)."""
        parsed = urlsplit(url)
        addresses = _LOOPBACK.get(parsed.hostname or "")
        if parsed.scheme != "http" or addresses is None:
            return None
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
        except OSError:
            return None
        try:
            if os.fstat(fd).st_size < _LAYOUT.size:
                return None
            page = mmap.mmap(fd, SIZE, access=mmap.ACCESS_READ)
        except (OSError, ValueError):
            return None
        finally:
            os.close(fd)
        if page[:8] != MAGIC:
            page.close()
            return None
        return cls(page, chain_id=chain_id, port=parsed.port or 80, addresses=addresses)

    def head(self) -> int | None:
        """The node's head block now, or None when the page cannot say."""
        page = self._page
        for _ in range(_READ_ATTEMPTS):
            before = _SEQUENCE.unpack_from(page, _SEQUENCE_AT)[0]
            if before & 1:
                continue
            head, beat, chain_id, port, address = _FIELDS.unpack_from(page, _FIELDS_AT)
            if _SEQUENCE.unpack_from(page, _SEQUENCE_AT)[0] != before:
                continue
            if chain_id != self._chain_id or port != self._port or address not in self._addresses:
                return None
            # A beat from the future is a page left from before this machine started.
            if beat == 0 or not 0 <= time.monotonic_ns() - beat <= _STALE_NS:
                return None
            return int(head)
        return None  # a writer that never finishes: ask over HTTP

    def close(self) -> None:
        """Unmap the page."""
        self._page.close()
