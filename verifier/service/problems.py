"""The edge: errors become RFC 9457 problem details (application/problem+json) here.

Every problem has a `type` URI naming its kind (below), a `title` (the same for every
problem of that kind), the HTTP `status`, a `detail` saying what happened this time, the
`instance` (the request path) and, for schema errors, `errors` with a path into the
request for each.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import Request
from starlette.responses import Response

from verifier.errors import CouldNotCheck, VerifierError
from verifier.service.errors import (
    CouldNotAudit,
    FieldError,
    HoldingNotProven,
    InvalidRequest,
    MalformedRequest,
    NotPermitted,
    PayloadTooLarge,
    RateLimited,
    Unauthenticated,
    UnsupportedMediaType,
    UnusableLicence,
)

PROBLEM_BASE = "https://elicence.example/problems/"
MEDIA_TYPE = "application/problem+json"

log = logging.getLogger("elicence.service")

# kind: (status, slug, title)
KINDS: dict[type[VerifierError], tuple[int, str, str]] = {
    MalformedRequest: (400, "malformed-request", "The request body cannot be read"),
    Unauthenticated: (401, "unauthenticated", "The API key is missing, unknown or revoked"),
    NotPermitted: (403, "not-permitted", "This API key may not verify this licence type"),
    HoldingNotProven: (403, "holding-not-proven", "The document does not prove holding"),
    PayloadTooLarge: (413, "payload-too-large", "The request body is too large"),
    UnsupportedMediaType: (415, "unsupported-media-type", "The body's media type is refused"),
    InvalidRequest: (422, "invalid-request", "The request does not follow the schema"),
    UnusableLicence: (422, "unusable-licence", "The licence cannot be read"),
    RateLimited: (429, "rate-limited", "Too many requests"),
    CouldNotCheck: (503, "could-not-check", "The licence could not be checked"),
    CouldNotAudit: (503, "could-not-audit", "The request could not be audited"),
}
_HTTP: dict[int, tuple[str, str]] = {
    400: ("malformed-request", "The request body cannot be read"),
    404: ("not-found", "There is nothing at this address"),
    405: ("method-not-allowed", "This address does not take that method"),
}


def problem(
    status: int,
    slug: str,
    title: str,
    detail: str,
    *,
    instance: str | None = None,
    errors: list[FieldError] | None = None,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A problem body."""
    body: dict[str, Any] = {
        "type": PROBLEM_BASE + slug,
        "title": title,
        "status": status,
        "detail": detail,
    }
    if instance is not None:
        body["instance"] = instance
    if errors is not None:
        body["errors"] = [{"path": e.path, "message": e.message} for e in errors]
    if extra:
        body.update(extra)
    return body


def problem_of(exc: VerifierError, instance: str | None = None) -> dict[str, Any]:
    """The problem body for one of the package's errors."""
    for kind in type(exc).__mro__:
        if kind in KINDS:
            status, slug, title = KINDS[kind]
            break
    else:
        status, slug, title = 500, "internal", "The service failed"
    errors = exc.errors if isinstance(exc, InvalidRequest) else None
    extra: dict[str, Any] = {}
    if isinstance(exc, UnusableLicence):
        if exc.reason:
            extra["reason"] = exc.reason
        if exc.path:
            errors = [FieldError(exc.path, str(exc))]
    return problem(status, slug, title, str(exc), instance=instance, errors=errors, extra=extra)


def problem_bytes(body: dict[str, Any]) -> bytes:
    """A problem body as UTF-8 JSON, whatever text it quotes."""
    try:
        return json.dumps(body, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        # A lone surrogate (from a request) in a detail or path: \u escapes are ASCII.
        return json.dumps(body, ensure_ascii=True).encode("ascii")


RETRY_UNAVAILABLE_SECONDS = 1


def problem_response(body: dict[str, Any], headers: dict[str, str] | None = None) -> Response:
    """A problem as an HTTP response."""
    return Response(
        problem_bytes(body),
        status_code=int(body["status"]),
        media_type=MEDIA_TYPE,
        headers=headers,
    )


def error_answer(exc: VerifierError, instance: str) -> tuple[dict[str, Any], dict[str, str]]:
    """The problem body and the headers that go with one of the package's errors."""
    headers: dict[str, str] = {}
    if isinstance(exc, RateLimited):
        headers["Retry-After"] = str(exc.retry_after)
    elif isinstance(exc, Unauthenticated):
        headers["WWW-Authenticate"] = 'Bearer realm="elicence"'
    elif isinstance(exc, PayloadTooLarge):
        # The rest of an oversized body is not read: the connection cannot be reused.
        headers["Connection"] = "close"
    elif isinstance(exc, CouldNotCheck | CouldNotAudit):
        if isinstance(exc, CouldNotCheck):
            log.warning("could not check: %s", exc)
        # A passing fault (the chain node or the database away): a client may try again
        # soon, and says so to its retries (verifier/client.py honours the header).
        headers["Retry-After"] = str(RETRY_UNAVAILABLE_SECONDS)
    return problem_of(exc, instance), headers


def unexpected_answer(method: str, path: str, exc: BaseException) -> dict[str, Any]:
    """A bug: logged with its traceback (never a request body); the problem body."""
    log.error("unexpected error on %s %s", method, path, exc_info=exc)
    return problem(
        500,
        "internal",
        "The service failed",
        "an unexpected error; it has been logged",
        instance=path,
    )


async def on_error(request: Request, exc: Exception) -> Response:
    """The package's errors, as problems."""
    assert isinstance(exc, VerifierError)
    return problem_response(*error_answer(exc, request.url.path))


async def on_http_error(request: Request, exc: Exception) -> Response:
    """Starlette's and FastAPI's own HTTP errors (unknown route, wrong method, a form
    that cannot be parsed), as problems."""
    assert isinstance(exc, StarletteHTTPException)
    slug, title = _HTTP.get(exc.status_code, ("http-error", "The request cannot be answered"))
    detail = str(exc.detail) if exc.detail else title
    if exc.status_code == 404:
        detail = f"no such resource: {request.method} {request.url.path}"
    body = problem(exc.status_code, slug, title, detail, instance=request.url.path)
    return problem_response(body, dict(exc.headers or {}))


async def on_validation_error(request: Request, exc: Exception) -> Response:
    """FastAPI's validation of declared parameters (none of the verify routes use it, but
    a future one might), as a schema problem."""
    assert isinstance(exc, RequestValidationError)
    return problem_response(
        problem_of(
            InvalidRequest("the request does not follow the schema", field_errors(exc.errors())),
            request.url.path,
        )
    )


async def on_unexpected(request: Request, exc: Exception) -> Response:
    """A bug, answered as a problem."""
    return problem_response(unexpected_answer(request.method, request.url.path, exc))


def field_errors(errors: Any) -> list[FieldError]:
    """pydantic's error list as (dotted path, message) pairs.

    The message never quotes the input: the input may be a licence field.
    """
    result = []
    for error in errors:
        path = ".".join(str(p) for p in error.get("loc", ()) if p not in {"body"})
        message = str(error.get("msg", "invalid"))
        result.append(FieldError(path or "(body)", message))
    return result
