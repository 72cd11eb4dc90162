"""A typed Python client of the verify API, for approval systems (审批系统).

    from verifier.client import VerifyClient

    with VerifyClient("https://verify.example.gd.gov.cn", api_key="elk_...") as client:
        verdict = client.verify_qr(scanned_text, purpose="审批-2026-000123")
        if not verdict.is_valid:
            print(verdict.status, verdict.failed_check.reason if verdict.failed_check else "")

`AsyncVerifyClient` has the same methods as coroutines. Both send a licence as an `EL1:`
QR text (`verify_qr`), a document or presentation JSON (`verify_document`), scanner
input of either kind (`verify_text`), a photo of the QR code (`verify_image`) or the
licences of one matter together (`verify_batch`), and return frozen dataclasses.

A bad licence is a verdict, never an exception (`Verdict.status`: TAMPERED, REVOKED,
...). An answer without a verdict is an exception, typed by the problem the service
answered (RFC 9457, docs/api.md):

    ClientError
    ├── ProblemError                        the service answered a problem
    │   ├── RequestRefused (ValueError)     400, 413, 415, 422: the request is at fault
    │   │   └── UnusableLicence             422 unusable-licence: the licence cannot be read
    │   ├── Unauthenticated (PermissionError)   401: no usable API key
    │   ├── NotPermitted (PermissionError)  403: the key may not verify this licence type
    │   ├── RateLimited                     429, once the retries are spent
    │   ├── Unavailable (ConnectionError)   503 could-not-check / could-not-audit: no
    │   │                                   verdict (NOT a bad licence), once retries are spent
    │   └── ServiceFailed                   any other 5xx
    ├── Unreachable (ConnectionError)       no answer at all (refused, timed out)
    └── UnexpectedAnswer (ValueError)       an answer that is not what the API documents

Retries: a 503 (the chain or the audit log was briefly unavailable) and a 429 are tried
again up to `retries` times. The wait is the answer's Retry-After when it has one, else
0.5 s doubling each time; a wait longer than `max_wait` is not waited out: the error is
raised at once (with `retry_after`), so a caller's own deadline is never overrun by a
server's request. A connection refused before the request was sent is retried the same
way. Verifying has no effect but its audit record, so a retry is always safe.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import email.utils
import json
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Self

import httpx

from verifier.verdict import Status

DEFAULT_TIMEOUT_S = 30.0
DEFAULT_RETRIES = 3
DEFAULT_MAX_WAIT_S = 10.0
FIRST_BACKOFF_S = 0.5
_RETRIED = frozenset({429, 503})

# ------------------------------------------------------------------------------ errors


class ClientError(Exception):
    """Root of every error this client raises."""


class ProblemError(ClientError):
    """The service answered an RFC 9457 problem instead of a verdict."""

    def __init__(self, status: int, problem: Mapping[str, Any], retry_after: float | None) -> None:
        self.status = status
        self.problem = dict(problem)
        self.type = str(problem.get("type", "about:blank"))
        self.title = str(problem.get("title", ""))
        self.detail = str(problem.get("detail", ""))
        self.reason: str | None = problem.get("reason")
        self.errors: list[dict[str, str]] = list(problem.get("errors") or [])
        self.retry_after = retry_after
        super().__init__(f"{status} {self.kind}: {self.detail or self.title}")

    @property
    def kind(self) -> str:
        """The problem's kind, the last part of its type URI (e.g. unusable-licence)."""
        return self.type.rstrip("/").rsplit("/", 1)[-1]


class RequestRefused(ProblemError, ValueError):
    """The request is at fault (400, 413, 415, 422): sending it again will not help."""


class UnusableLicence(RequestRefused):
    """The licence cannot be read at all (422 unusable-licence; `reason` names the step)."""


class Unauthenticated(ProblemError, PermissionError):
    """The API key is missing, unknown or revoked (401)."""


class NotPermitted(ProblemError, PermissionError):
    """The API key may not do this (403: not-permitted, holding-not-proven)."""


class RateLimited(ProblemError):
    """Over the caller's rate (429), after the retries; `retry_after` says when to try."""


class Unavailable(ProblemError, ConnectionError):
    """No verdict could be reached (503): not a bad licence; try again later."""


class ServiceFailed(ProblemError):
    """The service failed in a way it did not name (5xx other than 503)."""


class Unreachable(ClientError, ConnectionError):
    """No answer from the service at all (connection refused, reset or timed out)."""


class UnexpectedAnswer(ClientError, ValueError):
    """An answer that does not follow the API's documented form."""


def _problem_class(status: int) -> type[ProblemError]:
    if status == 401:
        return Unauthenticated
    if status == 403:
        return NotPermitted
    if status == 429:
        return RateLimited
    if status == 503:
        return Unavailable
    return ServiceFailed if status >= 500 else RequestRefused


def _problem_error(response: httpx.Response) -> ProblemError:
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        body = {"title": response.reason_phrase, "detail": response.text[:200]}
    kind = _problem_class(response.status_code)
    if kind is RequestRefused and str(body.get("type", "")).endswith("/unusable-licence"):
        kind = UnusableLicence
    return kind(response.status_code, body, _retry_after(response))


# ------------------------------------------------------------------------------ results


@dataclass(frozen=True)
class Check:
    """One check of a verdict: its outcome, the reason in English, and the reason's
    stable code and parameters (docs/api.md) to word it in another language."""

    name: str
    outcome: str
    reason: str
    code: str | None = None
    params: Mapping[str, str | int] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        """True when the check passed."""
        return self.outcome == "passed"


@dataclass(frozen=True)
class Issuer:
    """The agency that anchored the licence's batch (name None: withheld from this key)."""

    agency_id: int
    name: str | None
    code: str
    address: str


@dataclass(frozen=True)
class Anchor:
    """Where and when the licence's batch root was anchored."""

    chain_id: int
    registry: str
    root: str
    block_number: int
    time: dt.datetime
    transaction: str | None


@dataclass(frozen=True)
class Verdict:
    """The answer about one licence; `status` is VALID only when every check passed."""

    status: Status
    licence_id: str
    licence_type: str
    licence_type_name: str
    checks: tuple[Check, ...]
    fields: Mapping[str, str]
    hidden: tuple[str, ...]
    withheld: tuple[str, ...]
    issuer: Issuer | None
    anchor: Anchor | None
    status_reason: str | None
    successor: str | None
    block_height: int
    checked_at: dt.datetime

    @property
    def is_valid(self) -> bool:
        """True only for VALID."""
        return self.status is Status.VALID

    @property
    def failed_check(self) -> Check | None:
        """The first check that failed (the one that decided the status), if any."""
        return next((c for c in self.checks if c.outcome == "failed"), None)


@dataclass(frozen=True)
class UnmetReason:
    """One reason a matter's licences do not satisfy it."""

    code: str
    detail: str
    licence_type: str | None
    items: tuple[int, ...]


@dataclass(frozen=True)
class BatchItem:
    """One licence of a batch: its verdict, or the problem that left it unchecked."""

    index: int
    verdict: Verdict | None
    problem: ProblemError | None


@dataclass(frozen=True)
class BatchVerdict:
    """Per-licence answers and whether the matter is satisfied (一件事一次办)."""

    satisfied: bool
    reasons: tuple[UnmetReason, ...]
    items: tuple[BatchItem, ...]
    block_height: int
    checked_at: dt.datetime


def parse_verdict(body: Mapping[str, Any]) -> Verdict:
    """A verdict from the API's JSON (UnexpectedAnswer when it is not one)."""
    try:
        issuer, anchor = body["issuer"], body["anchor"]
        return Verdict(
            status=Status(body["status"]),
            licence_id=str(body["licenceId"]),
            licence_type=str(body["licenceType"]),
            licence_type_name=str(body["licenceTypeName"]),
            checks=tuple(
                Check(
                    str(c["name"]),
                    str(c["outcome"]),
                    str(c["reason"]),
                    c.get("code"),
                    dict(c.get("params") or {}),
                )
                for c in body["checks"]
            ),
            fields=dict(body["fields"]),
            hidden=tuple(body["hidden"]),
            withheld=tuple(body.get("withheld", ())),
            issuer=None
            if issuer is None
            else Issuer(
                int(issuer["agencyId"]), issuer["name"], str(issuer["code"]), str(issuer["address"])
            ),
            anchor=None
            if anchor is None
            else Anchor(
                int(anchor["chainId"]),
                str(anchor["registry"]),
                str(anchor["root"]),
                int(anchor["blockNumber"]),
                dt.datetime.fromisoformat(anchor["time"]),
                anchor.get("transaction"),
            ),
            status_reason=body.get("statusReason"),
            successor=body.get("successor"),
            block_height=int(body["blockHeight"]),
            checked_at=dt.datetime.fromisoformat(body["checkedAt"]),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise UnexpectedAnswer(f"not a verdict: {exc!r}") from None


def parse_batch(body: Mapping[str, Any]) -> BatchVerdict:
    """A batch answer from the API's JSON (UnexpectedAnswer when it is not one)."""
    try:
        items = []
        for item in body["items"]:
            problem = item.get("problem")
            error = None
            if problem is not None:
                status = int(problem.get("status", 422))
                kind = _problem_class(status)
                if str(problem.get("type", "")).endswith("/unusable-licence"):
                    kind = UnusableLicence
                error = kind(status, problem, None)
            verdict = item.get("verdict")
            items.append(
                BatchItem(
                    int(item["index"]), None if verdict is None else parse_verdict(verdict), error
                )
            )
        return BatchVerdict(
            satisfied=bool(body["satisfied"]),
            reasons=tuple(
                UnmetReason(
                    str(r["code"]),
                    str(r["detail"]),
                    r.get("licenceType"),
                    tuple(r.get("items", ())),
                )
                for r in body["reasons"]
            ),
            items=tuple(items),
            block_height=int(body["blockHeight"]),
            checked_at=dt.datetime.fromisoformat(body["checkedAt"]),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise UnexpectedAnswer(f"not a batch answer: {exc!r}") from None


# ------------------------------------------------------------------------------ requests


@dataclass(frozen=True)
class _Request:
    """One API call, ready to send (again)."""

    path: str
    content: bytes | None = None
    files: Mapping[str, tuple[str, bytes, str]] | None = None
    data: Mapping[str, str] | None = None

    def send_args(self) -> dict[str, Any]:
        if self.files is not None:
            return {"files": self.files, "data": self.data or {}}
        return {"content": self.content, "headers": {"Content-Type": "application/json"}}


def _json_body(members: Mapping[str, object], raw_document: bytes | None = None) -> bytes:
    """A JSON body; a document given as text goes in as the holder's own bytes, so that
    nothing in it (a large chain id, the order of members) is changed on the way."""
    encoded = {k: v for k, v in members.items() if v is not None}
    if raw_document is None:
        return json.dumps(encoded, ensure_ascii=False).encode("utf-8")
    rest = json.dumps(encoded, ensure_ascii=False).encode("utf-8")[1:-1]
    return b'{"document":' + raw_document + (b"," + rest if rest else b"") + b"}"


def _document_request(document: Mapping[str, Any] | str | bytes, purpose: str | None) -> _Request:
    if isinstance(document, Mapping):
        return _Request("/v1/verifications", _json_body({"document": document, "purpose": purpose}))
    raw = document.encode("utf-8") if isinstance(document, str) else bytes(document)
    raw = raw.removeprefix(b"\xef\xbb\xbf").strip()
    try:
        json.loads(raw)
    except ValueError:
        raise UnusableLicence(
            422, {"title": "not JSON", "detail": "the document is not JSON text"}, None
        ) from None
    return _Request("/v1/verifications", _json_body({"purpose": purpose}, raw))


def _text_request(text: str, purpose: str | None) -> _Request:
    cleaned = text.removeprefix("\ufeff").strip()
    if cleaned.startswith("{"):
        return _document_request(cleaned, purpose)
    return _Request("/v1/verifications", _json_body({"qr": cleaned, "purpose": purpose}))


def _image_request(
    image: bytes | Path, filename: str | None, content_type: str | None, purpose: str | None
) -> _Request:
    if isinstance(image, Path):
        filename = filename or image.name
        image = image.read_bytes()
    if content_type is None:
        content_type = "image/png" if image[:8] == b"\x89PNG\r\n\x1a\n" else "image/jpeg"
    return _Request(
        "/v1/verifications/image",
        files={"image": (filename or "image", image, content_type)},
        data={} if purpose is None else {"purpose": purpose},
    )


def _batch_request(
    items: Sequence[str | Mapping[str, Any]],
    required_types: Sequence[str] | None,
    same_holder: bool,
    purpose: str | None,
) -> _Request:
    members = [
        {"document": item} if isinstance(item, Mapping) else {"qr": item.strip()} for item in items
    ]
    body = {
        "items": members,
        "requiredTypes": None if required_types is None else list(required_types),
        "sameHolder": same_holder,
        "purpose": purpose,
    }
    return _Request("/v1/verifications/batch", _json_body(body))


def _retry_after(response: httpx.Response) -> float | None:
    """Retry-After as seconds: delay-seconds or an HTTP date (RFC 9110)."""
    value = response.headers.get("retry-after")
    if value is None:
        return None
    if value.strip().isdigit():
        return float(value.strip())
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, (when - dt.datetime.now(dt.UTC)).total_seconds())


@dataclass(frozen=True)
class _Policy:
    """When to try again and how long to wait first."""

    retries: int
    max_wait: float

    def wait(self, attempt: int, response: httpx.Response | None) -> float | None:
        """Seconds to wait before attempt `attempt + 1`, or None: do not retry."""
        if attempt >= self.retries:
            return None
        if response is not None and response.status_code not in _RETRIED:
            return None
        told = None if response is None else _retry_after(response)
        delay = FIRST_BACKOFF_S * 2**attempt if told is None else told
        return None if delay > self.max_wait else delay


def _answer(response: httpx.Response) -> dict[str, Any]:
    if response.status_code != 200:
        raise _problem_error(response)
    try:
        body = response.json()
    except ValueError:
        raise UnexpectedAnswer(f"the answer is not JSON: {response.text[:200]!r}") from None
    if not isinstance(body, dict):
        raise UnexpectedAnswer("the answer is not a JSON object")
    return body


def _headers(api_key: str | None, user_agent: str) -> dict[str, str]:
    headers = {"Accept": "application/json", "User-Agent": user_agent}
    if api_key is not None:
        headers["Authorization"] = f"Bearer {api_key}"
    return headers


USER_AGENT = "elicence-client/1"


class VerifyClient:
    """The verify API, called synchronously (one httpx.Client, reused: close it, or use
    `with`). `api_key` None calls anonymously (personal fields withheld, low rate)."""

    def __init__(
        self,
        base_url: str,
        *,
        api_key: str | None = None,
        timeout: float = DEFAULT_TIMEOUT_S,
        retries: int = DEFAULT_RETRIES,
        max_wait: float = DEFAULT_MAX_WAIT_S,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._http = httpx.Client(
            base_url=base_url.rstrip("/"),
            headers=_headers(api_key, USER_AGENT),
            timeout=timeout,
            transport=transport,
        )
        self._policy = _Policy(retries, max_wait)
        self._sleep = sleep

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the connections."""
        self._http.close()

    def verify_qr(self, text: str, *, purpose: str | None = None) -> Verdict:
        """Verify an `EL1:` QR text (as a scanner gun types it)."""
        return parse_verdict(self._call(_text_request(text, purpose)))

    def verify_document(
        self, document: Mapping[str, Any] | str | bytes, *, purpose: str | None = None
    ) -> Verdict:
        """Verify a licence or presentation document: parsed JSON, or its text as read
        from the file (sent as is)."""
        return parse_verdict(self._call(_document_request(document, purpose)))

    verify_presentation = verify_document

    def verify_text(self, text: str, *, purpose: str | None = None) -> Verdict:
        """Verify whatever a holder's code or file holds: document JSON or `EL1:` text."""
        return parse_verdict(self._call(_text_request(text, purpose)))

    def verify_image(
        self,
        image: bytes | Path,
        *,
        filename: str | None = None,
        content_type: str | None = None,
        purpose: str | None = None,
    ) -> Verdict:
        """Verify a PNG or JPEG photo of a QR code (the service reads the code)."""
        return parse_verdict(self._call(_image_request(image, filename, content_type, purpose)))

    def verify_batch(
        self,
        items: Sequence[str | Mapping[str, Any]],
        *,
        required_types: Sequence[str] | None = None,
        same_holder: bool = True,
        purpose: str | None = None,
    ) -> BatchVerdict:
        """Verify the licences of one matter together: `EL1:` texts or documents."""
        request = _batch_request(items, required_types, same_holder, purpose)
        return parse_batch(self._call(request))

    def _call(self, request: _Request) -> dict[str, Any]:
        attempt = 0
        while True:
            try:
                response = self._http.post(request.path, **request.send_args())
            except httpx.ConnectError as exc:
                delay = self._policy.wait(attempt, None)
                if delay is None:
                    raise Unreachable(f"{self._http.base_url}: {exc}") from None
            except httpx.TransportError as exc:
                raise Unreachable(f"{self._http.base_url}: {exc!r}") from None
            else:
                delay = self._policy.wait(attempt, response)
                if delay is None:
                    return _answer(response)
            self._sleep(delay)
            attempt += 1


class AsyncVerifyClient:
    """The verify API for asyncio code: VerifyClient's methods, as coroutines."""

    def __init__(
        self,
        base_url: str,
        *,
        api_key: str | None = None,
        timeout: float = DEFAULT_TIMEOUT_S,
        retries: int = DEFAULT_RETRIES,
        max_wait: float = DEFAULT_MAX_WAIT_S,
        transport: httpx.AsyncBaseTransport | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._http = httpx.AsyncClient(
            base_url=base_url.rstrip("/"),
            headers=_headers(api_key, USER_AGENT),
            timeout=timeout,
            transport=transport,
        )
        self._policy = _Policy(retries, max_wait)
        self._sleep = sleep

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the connections."""
        await self._http.aclose()

    async def verify_qr(self, text: str, *, purpose: str | None = None) -> Verdict:
        """Verify an `EL1:` QR text (as a scanner gun types it)."""
        return parse_verdict(await self._call(_text_request(text, purpose)))

    async def verify_document(
        self, document: Mapping[str, Any] | str | bytes, *, purpose: str | None = None
    ) -> Verdict:
        """Verify a licence or presentation document: parsed JSON, or its text."""
        return parse_verdict(await self._call(_document_request(document, purpose)))

    verify_presentation = verify_document

    async def verify_text(self, text: str, *, purpose: str | None = None) -> Verdict:
        """Verify whatever a holder's code or file holds: document JSON or `EL1:` text."""
        return parse_verdict(await self._call(_text_request(text, purpose)))

    async def verify_image(
        self,
        image: bytes | Path,
        *,
        filename: str | None = None,
        content_type: str | None = None,
        purpose: str | None = None,
    ) -> Verdict:
        """Verify a PNG or JPEG photo of a QR code (the service reads the code)."""
        request = _image_request(image, filename, content_type, purpose)
        return parse_verdict(await self._call(request))

    async def verify_batch(
        self,
        items: Sequence[str | Mapping[str, Any]],
        *,
        required_types: Sequence[str] | None = None,
        same_holder: bool = True,
        purpose: str | None = None,
    ) -> BatchVerdict:
        """Verify the licences of one matter together: `EL1:` texts or documents."""
        request = _batch_request(items, required_types, same_holder, purpose)
        return parse_batch(await self._call(request))

    async def _call(self, request: _Request) -> dict[str, Any]:
        attempt = 0
        while True:
            try:
                response = await self._http.post(request.path, **request.send_args())
            except httpx.ConnectError as exc:
                delay = self._policy.wait(attempt, None)
                if delay is None:
                    raise Unreachable(f"{self._http.base_url}: {exc}") from None
            except httpx.TransportError as exc:
                raise Unreachable(f"{self._http.base_url}: {exc!r}") from None
            else:
                delay = self._policy.wait(attempt, response)
                if delay is None:
                    return _answer(response)
            await self._sleep(delay)
            attempt += 1
