"""Reading request bodies: media type, size, strict JSON, the schema, and the licence.

The verify routes read their bodies here rather than through FastAPI's body parameters:
duplicate JSON keys are errors here (as in docs/format.md: two verifiers must never
disagree about one document), a wrong media type is a 415, and every failure is a
typed error the edge turns into a problem.
"""

from __future__ import annotations

import json
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from issuer.document import LicenceDocument, parse_document
from issuer.errors import DocumentError, IssuerError, PayloadError
from issuer.qr import decode_payload
from verifier.service.errors import (
    InvalidRequest,
    MalformedRequest,
    PayloadTooLarge,
    UnsupportedMediaType,
    UnusableLicence,
)
from verifier.service.models import LicenceInput
from verifier.service.problems import field_errors, problem, problem_response

M = TypeVar("M", bound=BaseModel)


class _Duplicate(ValueError):
    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise _Duplicate(key)
        result[key] = value
    return result


def _no_constant(name: str) -> Any:
    raise MalformedRequest(f"{name} is not a JSON number")


def media_type(request: Request) -> str:
    """The request's media type, without parameters, in lower case."""
    return media_type_of(request.headers.get("content-type", ""))


def media_type_of(content_type: str) -> str:
    """The media type of a Content-Type header's value, without parameters, in lower case."""
    return content_type.split(";", 1)[0].strip().lower()


async def read_json(request: Request) -> object:
    """The body as JSON (application/json, UTF-8, no duplicate keys, no NaN)."""
    require_json(media_type(request))
    return parse_json(await request.body())


def require_json(kind: str) -> None:
    """UnsupportedMediaType unless the media type `kind` is JSON's."""
    if kind != "application/json":
        raise UnsupportedMediaType(
            f"send the body as application/json, not {kind or 'a body without Content-Type'}"
        )


def parse_json(body: bytes) -> object:
    """A body as JSON: UTF-8, no duplicate keys, no NaN; MalformedRequest saying where."""
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise MalformedRequest(f"the body is not UTF-8 text (byte {exc.start})") from None
    try:
        return json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_no_constant)
    except _Duplicate as exc:
        raise MalformedRequest(f"the member {exc.key!r} appears twice in one object") from None
    except json.JSONDecodeError as exc:
        raise MalformedRequest(
            f"not JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from None
    except RecursionError:
        raise MalformedRequest("the JSON is nested too deeply") from None


def validate(model: type[M], raw: object) -> M:
    """`raw` as `model`; InvalidRequest naming each member at fault."""
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        errors = field_errors(exc.errors(include_input=False, include_url=False))
        raise InvalidRequest("the request does not follow the schema", errors) from None


def load_licence(item: LicenceInput) -> LicenceDocument:
    """The licence an input carries; UnusableLicence saying what is wrong."""
    try:
        if item.qr is not None:
            return decode_payload(item.qr.strip())
        return parse_document(item.document)
    except PayloadError as exc:
        raise UnusableLicence(f"qr: {exc}", reason=exc.reason) from None
    except DocumentError as exc:
        where = f"document.{exc.path}" if exc.path else "document"
        raise UnusableLicence(f"{where}: {exc.reason}", path=where) from None
    except (IssuerError, ValueError) as exc:
        raise UnusableLicence(str(exc)) from None


class BodyLimitMiddleware:
    """Refuses bodies over a route's limit: at once when Content-Length says so, and
    while reading otherwise (chunked bodies), before any of it is parsed."""

    def __init__(self, app: ASGIApp, limits: dict[str, int], default: int) -> None:
        self.app = app
        self.limits = limits
        self.default = default

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in {"GET", "HEAD", "OPTIONS"}:
            await self.app(scope, receive, send)
            return
        limit = self.limits.get(scope["path"], self.default)
        declared = _content_length(scope)
        if declared is not None and declared > limit:
            response = problem_response(
                problem(
                    413,
                    "payload-too-large",
                    "The request body is too large",
                    str(PayloadTooLarge(limit)),
                    instance=scope["path"],
                ),
                {"Connection": "close"},
            )
            await response(scope, receive, send)
            return
        seen = 0

        async def capped() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise PayloadTooLarge(limit)
            return message

        await self.app(scope, capped, send)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None
