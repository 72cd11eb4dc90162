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
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from starlette.types import ASGIApp, Receive, Scope, Send

from verifier.errors import VerifierError
from verifier.service.errors import MalformedRequest, PayloadTooLarge
from verifier.service.models import Channel, VerificationRequest
from verifier.service.problems import (
    MEDIA_TYPE,
    error_answer,
    problem_bytes,
    unexpected_answer,
)
from verifier.service.requests import (
    drain,
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
        return Answer(
            200, json.dumps(verdict, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        )

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
        request = validate(VerificationRequest, parse_json(await _body(receive)))
        document = load_licence(request)
        return await services.verification.verify_one(
            document, caller, request.purpose, Channel.SINGLE
        )


class VerifyFront:
    """The ASGI layer that answers POST /v1/verifications and passes the rest on."""

    def __init__(self, app: ASGIApp, services: Services) -> None:
        self._app = app
        self._route = SingleVerification(services)
        self._metrics = services.metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != PATH or scope["method"] != "POST":
            await self._app(scope, receive, send)
            return
        started = time.perf_counter()
        try:
            answer = await self._route.answer(scope, receive)
        except Exception as exc:
            # A bug outside the route's own handling still gets a problem, and is counted.
            answer = _problem(unexpected_answer("POST", PATH, exc), {})
        try:
            await send(
                {
                    "type": "http.response.start",
                    "status": answer.status,
                    "headers": answer.raw_headers(),
                }
            )
            await send({"type": "http.response.body", "body": answer.body})
        finally:
            self._metrics.observe(PATH, "POST", answer.status, time.perf_counter() - started)


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
