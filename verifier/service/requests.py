"""Reading request bodies: media type, size, strict JSON, the schema, and the licence.

The verify routes read their bodies here rather than through FastAPI's body parameters:
duplicate JSON keys are errors here (as in docs/format.md: two verifiers must never
disagree about one document), a wrong media type is a 415, and every failure is a
typed error the edge turns into a problem.

JSON a caller sends is held to what Python can read and write back without failing:
- nesting at most MAX_JSON_DEPTH deep, counted before parsing: importing eth_account
  raises the recursion limit to 100,000, so json.loads of ~80,000 nested `[` overflows
  the C stack and kills the process before any RecursionError could be caught;
- numbers of at most MAX_NUMBER_CHARS characters, and finite (Python refuses integers of
  more than 4,300 digits, and 1e999 would become infinity);
- no lone surrogate (a `\\ud800` escape without its pair) in a member name or string:
  such a string cannot be encoded as UTF-8, so it would fail wherever it is written.
"""

from __future__ import annotations

import asyncio
import json
import math
import re
from collections.abc import Callable
from itertools import accumulate
from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import BaseModel, ValidationError
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from licence.document import LicenceDocument, parse_document
from licence.errors import (
    DocumentError,
    LicenceFormatError,
    PayloadError,
    UnknownTypeVersion,
    UnsupportedHashSuite,
)
from licence.payload import PREFIX, decode_payload
from verifier.errors import CouldNotCheck
from verifier.service.errors import (
    InvalidRequest,
    MalformedRequest,
    PayloadTooLarge,
    UnsupportedMediaType,
    UnusableLicence,
)
from verifier.service.models import LicenceInput
from verifier.service.problems import field_errors, problem, problem_response

if TYPE_CHECKING:
    from verifier.service.live import LiveIndex

M = TypeVar("M", bound=BaseModel)

# Far deeper than any request (a licence document nests a few levels in its envelope), far
# shallower than the C stack.
MAX_JSON_DEPTH = 64
# Longer than any number a licence or request holds (a uint256 has 78 digits).
MAX_NUMBER_CHARS = 100
# How much of a body over the limit is read (and thrown away) before the 413 is sent, so
# that the client, still sending, can read it: a connection closed with unread data is
# reset, and the client sees "connection reset" instead of the answer. Beyond this the
# 413 is sent at once (docs/api.md).
DRAIN_MAX_BYTES = 32 * 1024 * 1024
DRAIN_MAX_S = 30.0

# A JSON string from its opening quote: to the closing quote, or to the end of the body
# when there is none (possessive, so no body makes the scan backtrack).
_STRING = re.compile(rb'"(?:[^"\\]++|\\.)*+(?:"|\\?\Z)', re.DOTALL)
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
_DEPTH_STEP = tuple(1 if b in b"[{" else -1 if b in b"]}" else 0 for b in range(256))
_SURROGATE = re.compile(r"[\ud800-\udfff]")


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
    """A body as JSON: UTF-8, no duplicate keys, no NaN, nested at most MAX_JSON_DEPTH
    deep, numbers of at most MAX_NUMBER_CHARS characters, no lone surrogate;
    MalformedRequest saying what is wrong."""
    if nested_deeper_than(body, MAX_JSON_DEPTH):
        raise MalformedRequest(f"the JSON is nested deeper than {MAX_JSON_DEPTH} levels")
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise MalformedRequest(f"the body is not UTF-8 text (byte {exc.start})") from None
    try:
        value = json.loads(
            text,
            object_pairs_hook=_no_duplicates,
            parse_constant=_no_constant,
            parse_int=_integer,
            parse_float=_float,
        )
    except _Duplicate as exc:
        # repr() escapes a lone surrogate, so the detail can always be sent.
        raise MalformedRequest(f"the member {exc.key!r} appears twice in one object") from None
    except json.JSONDecodeError as exc:
        raise MalformedRequest(
            f"not JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from None
    except RecursionError:
        raise MalformedRequest("the JSON is nested too deeply") from None
    # Only an escape can make a surrogate: UTF-8 text cannot hold one.
    if "\\u" in text and _has_lone_surrogate(value):
        raise MalformedRequest(
            "a string or member name holds a lone surrogate (\\ud800-\\udfff without "
            "its pair), which is not text"
        )
    return value


def nested_deeper_than(body: bytes, limit: int) -> bool:
    """Whether the arrays and objects of JSON text nest deeper than `limit`, found
    without parsing it (and without recursion).

    Brackets inside strings do not count. Over text that is not JSON the depth found is
    never below the depth a parser reaches before it meets the error, so it bounds the
    parser's recursion whatever the body.
    """
    # Most bodies (a QR payload, a document) hold fewer brackets than the limit at all.
    if body.count(b"[") + body.count(b"{") <= limit:
        return False
    brackets = _STRING.sub(b"", body).translate(None, _NOT_BRACKETS)
    return max(accumulate(map(_DEPTH_STEP.__getitem__, brackets)), default=0) > limit


def _integer(text: str) -> int:
    if len(text) > MAX_NUMBER_CHARS:
        raise MalformedRequest(f"a number of more than {MAX_NUMBER_CHARS} characters")
    return int(text)


def _float(text: str) -> float:
    if len(text) > MAX_NUMBER_CHARS:
        raise MalformedRequest(f"a number of more than {MAX_NUMBER_CHARS} characters")
    value = float(text)
    if not math.isfinite(value):
        raise MalformedRequest(f"the number {text} is beyond a 64-bit float")
    return value


def _has_lone_surrogate(value: object) -> bool:
    # Iterative: depth is already bounded, but a list of every string is cheaper than
    # a call per member.
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, str):
            if _SURROGATE.search(item):
                return True
        elif isinstance(item, dict):
            pending.extend(item)
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
    return False


def validate(model: type[M], raw: object) -> M:
    """`raw` as `model`; InvalidRequest naming each member at fault."""
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        errors = field_errors(exc.errors(include_input=False, include_url=False))
        raise InvalidRequest("the request does not follow the schema", errors) from None


Deployment = Callable[[], tuple[int, str]]


def live_deployment(live: LiveIndex) -> Deployment:
    """The chain id and registry the service trusts, which an EL2: payload is read with
    (it names neither): those of the open index; CouldNotCheck before the chain has been
    reached (the index opens at the first check)."""

    def deployment() -> tuple[int, str]:
        index = live.index
        if index is None:
            raise CouldNotCheck(
                "the chain has not been reached yet: an EL2: payload is read "
                "with the trusted registry's chain id"
            )
        return index.chain_id, index.registry_address

    return deployment


def load_licence(item: LicenceInput, deployment: Deployment | None = None) -> LicenceDocument:
    """The licence an input carries; UnusableLicence saying what is wrong, or
    UnknownTypeVersion for a type version the catalogue lacks (the service loads it and
    reads the licence again: VerificationService.read_licence)."""
    try:
        if item.qr is not None:
            return read_payload(item.qr.strip(), deployment)
        return parse_document(item.document)
    except PayloadError as exc:
        raise UnusableLicence(f"qr: {exc}", reason=exc.reason) from None
    except UnknownTypeVersion:
        raise
    except UnsupportedHashSuite as exc:
        # Not a broken licence (it may be genuine): the reason code says what is missing.
        where = f"document.{exc.path}"
        raise UnusableLicence(f"{where}: {exc.reason}", reason=exc.code, path=where) from None
    except DocumentError as exc:
        where = f"document.{exc.path}" if exc.path else "document"
        raise UnusableLicence(f"{where}: {exc.reason}", path=where) from None
    except (LicenceFormatError, ValueError) as exc:
        raise UnusableLicence(str(exc)) from None


def read_payload(text: str, deployment: Deployment | None) -> LicenceDocument:
    """`decode_payload` with the service's own chain and registry for an EL2: payload."""
    if deployment is not None and text.startswith(PREFIX):
        chain_id, registry = deployment()
        return decode_payload(text, chain_id=chain_id, registry=registry)
    return decode_payload(text)


async def drain(receive: Receive, declared: int | None, seen: int = 0) -> None:
    """Reads and throws away the rest of a refused body (`seen` bytes of it read so far),
    up to DRAIN_MAX_BYTES in all and for at most DRAIN_MAX_S, so that the client can
    read the answer; nothing when Content-Length `declared` is over that already."""
    if declared is not None and declared > DRAIN_MAX_BYTES:
        return
    try:
        async with asyncio.timeout(DRAIN_MAX_S):
            while seen <= DRAIN_MAX_BYTES:
                message = await receive()
                if message["type"] != "http.request":
                    return
                seen += len(message.get("body", b""))
                if not message.get("more_body", False):
                    return
    except TimeoutError:
        return


class BodyLimitMiddleware:
    """Refuses bodies over a route's limit, before any of it is parsed: when
    Content-Length says so, and while reading otherwise (chunked bodies). The rest of the
    body is read and thrown away first, within bounds (`drain`), so that the client can
    read the 413."""

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
            await drain(receive, declared)
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
                    if message.get("more_body", False):
                        await drain(receive, None, seen)
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
