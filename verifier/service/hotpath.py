"""POST /v1/verifications answered in front of FastAPI's request machinery.

Measured under wrk on this 2-core machine: FastAPI's dependency resolution, its
thread-pool hops for plain dependencies and its eight middleware layers cost about
1.5 ms of CPU per request, against about 0.2 ms for the verification itself, which
capped the service near 600 verifications/s. The one operation approval systems call
at volume is therefore answered by `VerifyFront`, an ASGI layer outside the app's
middleware stack. It applies the same body limit, authentication and rate limits, the
same request schema, the same problems (verifier.service.problems), metrics and audit as
every other route. FastAPI still declares the operation (the OpenAPI document and
/docs), and its route runs the same `SingleVerification.answer`.

Per request, the layer does no work it can do once (issue 17, docs/benchmarks.md): it
is called by the app itself before Starlette's own call (`_VerifyApi.__call__` in
verifier.service.app), so neither Starlette's stack nor the security-header wrapper
runs; the security headers of verifier.service.headers are part of its precomputed
header list instead. Bodies are read by orjson when that is sure to give what
`requests.parse_json` gives (`read_json`), and verdicts are written by orjson.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import orjson
from starlette.types import Receive, Scope, Send
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from verifier.errors import VerifierError
from verifier.service.errors import MalformedRequest, PayloadTooLarge
from verifier.service.headers import api_headers
from verifier.service.models import Channel, VerificationRequest
from verifier.service.problems import (
    MEDIA_TYPE,
    error_answer,
    problem_bytes,
    unexpected_answer,
)
from verifier.service.requests import (
    MAX_JSON_DEPTH,
    drain,
    live_deployment,
    load_licence,
    media_type_of,
    parse_json,
    require_json,
    validate,
)
from verifier.service.settings import MAX_JSON_BYTES

if TYPE_CHECKING:
    from verifier.service.deps import Services

PATH = "/v1/verifications"


@dataclass(frozen=True)
class Answer:
    """An HTTP answer (content-length is added on sending)."""

    status: int
    body: bytes
    media_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)

    def raw_headers(self) -> list[tuple[bytes, bytes]]:
        """The headers as ASGI sends them."""
        return [
            (b"content-type", self.media_type.encode()),
            (b"content-length", str(len(self.body)).encode()),
            *((name.lower().encode(), value.encode()) for name, value in self.headers.items()),
        ]


class SingleVerification:
    """Verifies the licence of one request body for its caller."""

    def __init__(self, services: Services) -> None:
        self._services = services

    async def answer(self, scope: Scope, receive: Receive) -> Answer:
        """The answer to one POST /v1/verifications: a verdict or a problem."""
        try:
            verdict = await self._verify(scope, receive)
        except VerifierError as exc:
            body, headers = error_answer(exc, PATH)
            return _problem(body, headers)
        except Exception as exc:
            return _problem(unexpected_answer("POST", PATH, exc), {})
        return Answer(200, verdict_bytes(verdict))

    async def _verify(self, scope: Scope, receive: Receive) -> dict[str, Any]:
        # The order of the checks is the other routes' (and what clients see): the
        # declared size, then the caller, then the media type, then the body.
        content_type = b""
        authorization: bytes | None = None
        declared: bytes | None = None
        for name, value in scope["headers"]:
            if name == b"content-type":
                content_type = value
            elif name == b"authorization":
                authorization = value
            elif name == b"content-length":
                declared = value
        if declared is not None and declared.isdigit() and int(declared) > MAX_JSON_BYTES:
            await drain(receive, int(declared))
            raise PayloadTooLarge(MAX_JSON_BYTES)
        services = self._services
        client = scope.get("client")
        caller = services.gate.admit(
            None if authorization is None else authorization.decode("latin-1"),
            client[0] if client else "unknown",
        )
        require_json(media_type_of(content_type.decode("latin-1")))
        request = validate(VerificationRequest, read_json(await _body(receive)))
        deployment = live_deployment(services.live)  # what an EL2: payload is read with
        document = await services.verification.read_licence(
            lambda: load_licence(request, deployment)
        )
        return await services.verification.verify_one(
            document, caller, request.purpose, Channel.SINGLE
        )


class VerifyFront:
    """Answers POST /v1/verifications (`handles` says which requests are that): the
    whole answer, security headers included, with no other layer around it."""

    def __init__(self, services: Services) -> None:
        self._route = SingleVerification(services)
        self._observe = services.metrics.route_observer(PATH, "POST")
        # Every answer of this path carries these (verifier.service.headers), after its
        # own; a verdict's list is built once, all but its length.
        self._security = api_headers()
        self._verdict_headers = [(b"content-type", b"application/json"), *self._security]

    @staticmethod
    def handles(scope: Scope) -> bool:
        """Whether `scope` is a request this layer answers."""
        return bool(scope["type"] == "http" and scope["path"] == PATH and scope["method"] == "POST")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        try:
            answer = await self._route.answer(scope, receive)
        except Exception as exc:
            # A bug outside the route's own handling still gets a problem, and is counted.
            answer = _problem(unexpected_answer("POST", PATH, exc), {})
        if answer.headers or answer.media_type != "application/json":
            headers = answer.raw_headers() + self._security
        else:
            headers = self._verdict_headers.copy()
            headers.insert(1, (b"content-length", str(len(answer.body)).encode()))
        try:
            await send({"type": "http.response.start", "status": answer.status, "headers": headers})
            await send({"type": "http.response.body", "body": answer.body})
        finally:
            self._observe(answer.status, time.perf_counter() - started)


def verdict_bytes(verdict: dict[str, Any]) -> bytes:
    """A verdict as UTF-8 JSON: by orjson (a twentieth of json.dumps' time here), or by
    json for what orjson refuses (an integer beyond 64 bits)."""
    try:
        return orjson.dumps(verdict)
    except TypeError:
        return json.dumps(verdict, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def read_json(body: bytes) -> object:
    """What `requests.parse_json(body)` gives (a value, or MalformedRequest), read by
    orjson whenever that is sure to be the same value, by parse_json otherwise.

    orjson refuses NaN and infinite numbers, lone surrogates, invalid UTF-8 and a BOM
    (parse_json then says which), and nests at most as deep as the brackets counted
    here allow. What orjson reads differently is told apart after it: a member named
    twice (it keeps the last; the colons outside strings then outnumber the members it
    kept: a body's colons are counted against orjson's own writing of the value, which
    writes each kept member's colon and the strings' colons as they came, unless a
    string escaped one as \\u003a) and numbers beyond 64-bit integers (which it reads as
    floats; a float is never needed, so any float goes to parse_json).
    """
    if body.count(b"[") + body.count(b"{") <= MAX_JSON_DEPTH:
        try:
            value = orjson.loads(body)
            colons = orjson.dumps(value).count(b":")
        except (orjson.JSONDecodeError, TypeError):
            pass
        else:
            if (
                colons == body.count(b":")
                and b"\\u003a" not in body
                and b"\\u003A" not in body
                and _no_float(value)
            ):
                return value
    return parse_json(body)


def _no_float(value: object) -> bool:
    pending: list[Any] = [value]
    take, add = pending.pop, pending.extend
    while pending:
        item = take()
        kind = type(item)  # orjson makes these exact types
        if kind is dict:
            add(item.values())
        elif kind is list:
            add(item)
        elif kind is float:
            return False
    return True


async def _body(receive: Receive) -> bytes:
    """The request body, refused as soon as it passes the limit (chunked bodies too)."""
    parts: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            # Nobody will read the answer; counted as a client error, not the service's.
            raise MalformedRequest("the client closed the connection before the whole body")
        chunk: bytes = message.get("body", b"")
        size += len(chunk)
        if size > MAX_JSON_BYTES:
            if message.get("more_body", False):
                await drain(receive, None, size)
            raise PayloadTooLarge(MAX_JSON_BYTES)
        parts.append(chunk)
        if not message.get("more_body", False):
            return b"".join(parts)


def _problem(body: dict[str, Any], headers: dict[str, str]) -> Answer:
    return Answer(int(body["status"]), problem_bytes(body), MEDIA_TYPE, headers)


# Pieces written in one step of the event loop are joined up to this size, so that an
# answer's head and body leave in one send (larger pieces are not held: a streamed
# export keeps its flow control and no more than this is ever held per connection).
JOIN_MAX = 16 * 1024


class JoinedWrites(asyncio.Transport):
    """A connection's transport whose writes in one loop step leave in one send.

    uvicorn writes an answer's head and its body separately, and the loop's transport
    sends each at once: two send calls and two packets for every answer. Measured at 32
    connections, joining them raised a replica's verifications/s by about a third on
    asyncio's loop (the service's) and by 8-10 % on uvloop (docs/benchmarks.md). What is
    held is sent at the end of the step, or before the connection is closed.
    """

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(None)
        self._transport = transport
        self._loop = loop
        self._held: bytes | None = None

    def write(self, data: bytes | bytearray | memoryview) -> None:
        held = self._held
        if held is None:
            if len(data) > JOIN_MAX:
                self._transport.write(data)
                return
            self._held = bytes(data)
            self._loop.call_soon(self._flush)
            return
        joined = b"".join((held, data))
        if len(joined) <= JOIN_MAX:
            self._held = joined
        else:
            self._held = None
            self._transport.write(joined)

    def writelines(self, list_of_data: Iterable[bytes | bytearray | memoryview]) -> None:
        self.write(b"".join(list_of_data))

    def _flush(self) -> None:
        held, self._held = self._held, None
        if held is not None and not self._transport.is_closing():
            self._transport.write(held)

    def close(self) -> None:
        self._flush()
        self._transport.close()

    def write_eof(self) -> None:
        self._flush()
        self._transport.write_eof()

    def abort(self) -> None:
        self._held = None
        self._transport.abort()

    def can_write_eof(self) -> bool:
        return self._transport.can_write_eof()

    def is_closing(self) -> bool:
        return self._transport.is_closing()

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self._transport.get_extra_info(name, default)

    def pause_reading(self) -> None:
        self._transport.pause_reading()

    def resume_reading(self) -> None:
        self._transport.resume_reading()

    def is_reading(self) -> bool:
        return self._transport.is_reading()

    def get_write_buffer_size(self) -> int:
        return self._transport.get_write_buffer_size() + len(self._held or b"")

    def get_write_buffer_limits(self) -> tuple[int, int]:
        return self._transport.get_write_buffer_limits()

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        self._transport.set_write_buffer_limits(high, low)

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self._transport.set_protocol(protocol)

    def get_protocol(self) -> asyncio.BaseProtocol:
        return self._transport.get_protocol()


class JoinedWritesProtocol(HttpToolsProtocol):
    """uvicorn's HTTP/1.1 protocol (httptools) writing through `JoinedWrites`; named in
    verifier.service.workers.SERVER_OPTIONS."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(JoinedWrites(transport, self.loop))
