"""Serving the embedded node's JSON-RPC over HTTP (uvicorn), on loopback by default.

Each client address has a token bucket (`NodeSettings.rate` per second, up to
`NodeSettings.burst`): a request that reaches the chain takes a token, and an empty
bucket answers HTTP 429 with JSON-RPC error -32005 and Retry-After. The head-number
question every verifier asks before each answer is exempt: it never touches the chain.
A verifier in the node's home need not ask at all: the node publishes its head in a
shared page (ledger.head_page) once it listens.
"""

from __future__ import annotations

import contextlib
import math
import socket
import sys
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ledger.config import NodeSettings
from ledger.errors import CannotListen
from ledger.head_page import HeadPublisher, head_page_path
from ledger.node import LIMIT_EXCEEDED, MAX_REQUEST_BYTES, Node

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8545
# An over-size body is read (and dropped) up to this size so that the client, still
# sending, can read the 413; past it the connection is closed.
DRAIN_LIMIT = 64 * 1024 * 1024
MAX_CLIENTS = 10_000


class TokenBuckets:
    """One token bucket per client address; the table forgets clients that went quiet."""

    def __init__(
        self, rate: float, burst: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.rate, self.burst, self._clock = rate, burst, clock
        self._buckets: dict[str, tuple[float, float]] = {}  # client -> (tokens, when)

    def take(self, client: str) -> float:
        """Take a token: 0.0 when there was one, else the seconds until there is."""
        now = self._clock()
        tokens, last = self._buckets.get(client, (self.burst, now))
        tokens = min(self.burst, tokens + (now - last) * self.rate)
        if tokens >= 1.0:
            if len(self._buckets) >= MAX_CLIENTS and client not in self._buckets:
                self._forget_full(now)
            self._buckets[client] = (tokens - 1.0, now)
            return 0.0
        self._buckets[client] = (tokens, now)
        return math.inf if self.rate <= 0 else (1.0 - tokens) / self.rate

    def _forget_full(self, now: float) -> None:
        for client, (tokens, last) in list(self._buckets.items()):
            if tokens + (now - last) * self.rate >= self.burst:
                del self._buckets[client]


def _rpc_error(code: int, message: str, status: int, **headers: str) -> JSONResponse:
    body = {"jsonrpc": "2.0", "id": None, "error": {"code": code, "message": message}}
    return JSONResponse(body, status_code=status, headers=headers)


async def _body_within_limit(request: Request) -> bytes | None:
    """The body, or None when it is over MAX_REQUEST_BYTES (then read and dropped)."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > DRAIN_LIMIT:
            break
        if size <= MAX_REQUEST_BYTES:
            chunks.append(chunk)
    return b"".join(chunks) if size <= MAX_REQUEST_BYTES else None


def create_app(node: Node) -> Starlette:
    """The HTTP face of a node: POST / takes JSON-RPC; GET / says what this is."""
    buckets = TokenBuckets(node.settings.rate, node.settings.burst)
    too_large = f"request over {MAX_REQUEST_BYTES} bytes"

    async def rpc(request: Request) -> Response:
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > DRAIN_LIMIT:
            return _rpc_error(-32600, too_large, 413, Connection="close")
        body = await _body_within_limit(request)
        if body is None:
            return _rpc_error(-32600, too_large, 413)
        answer = node.answer_at_once(body)
        if answer is None:
            wait = buckets.take(request.client.host if request.client else "")
            if wait:
                return _rpc_error(
                    LIMIT_EXCEEDED,
                    f"rate limit: {buckets.rate:g} requests per second per client address "
                    f"(bursts of {buckets.burst:g}); retry later",
                    429,
                    **{"Retry-After": str(max(1, math.ceil(min(wait, 3600))))},
                )
            answer = await run_in_threadpool(node.handle, body)
        return Response(answer, media_type="application/json")

    async def about(_: Request) -> Response:
        head = node.block_number()
        return JSONResponse(
            {
                "node": "elicence embedded node",
                "chainId": node.chain_id,
                "blockNumber": head,
                "dev": node.settings.dev,
                "rpc": "POST JSON-RPC 2.0 to this URL",
            }
        )

    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        yield
        # Here, not after uvicorn returns: on SIGTERM it re-raises the signal once it has
        # shut down, and the process ends before any code after it runs.
        node.stop_publishing_head()

    return Starlette(
        routes=[Route("/", rpc, methods=["POST"]), Route("/", about, methods=["GET"])],
        lifespan=lifespan,
    )


def serve(
    home: Path,
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    settings: NodeSettings | None = None,
) -> None:
    """Run the node until SIGINT/SIGTERM; the chain file is closed on the way out.

    Raises:
        CannotListen: the address is taken or not this machine's.
    """
    import uvicorn

    node = Node(home, settings)
    try:
        try:
            family = socket.AF_INET6 if ":" in host else socket.AF_INET
            listening = socket.create_server((host, port), family=family)
        except OSError as exc:
            raise CannotListen(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from exc
        # Published once the port is ours, so that no verifier reads this node's head
        # page while another process answers at that port.
        bound = listening.getsockname()
        port = bound[1]
        try:
            page = HeadPublisher(head_page_path(home), chain_id=node.chain_id, address=bound[:2])
        except OSError as exc:
            # Verifiers then ask over HTTP, as they do a node elsewhere: slower, as fresh.
            print(f"elicence node: no head page ({exc}); verifiers will ask", file=sys.stderr)
        else:
            node.publish_head(page)
        mode = "DEV MODE (anyone may mine, deploy and get gas)" if node.settings.dev else "no dev"
        print(
            f"elicence node: chain id {node.chain_id}, head block {node.block_number()}, "
            f"data in {home}, listening on http://{host}:{port}, {mode}",
            flush=True,
        )
        config = uvicorn.Config(create_app(node), log_level="warning", access_log=False)
        uvicorn.Server(config).run(sockets=[listening])
    finally:
        node.close()
