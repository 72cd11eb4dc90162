"""Security headers on every answer the service gives: the API's verdicts and problems,
the web page, /docs, /openapi.json and /metrics, and the 500s of its last-resort handler.

`SecurityHeaders` is the outermost ASGI layer (outside FastAPI's error middleware), so no
answer can leave without them; the fast path of verifier.service.hotpath, which answers
before that layer, sends the same list (`api_headers`) with each of its answers:

- `Content-Security-Policy`: the page's own files only (its scripts are files, never
  inline: tests/web checks; the offline app's service worker and manifest, `worker-src`
  and `manifest-src`, from 'self' too), no plugins, no framing, forms and `<base>` pinned. /docs
  gets its own policy: Swagger UI, served from /docs/assets, starts from one inline
  script, allowed by its SHA-256 and nothing else, and its React views set style
  attributes and data: icons.
- `X-Content-Type-Options: nosniff`, `X-Frame-Options: DENY` (with `frame-ancestors
  'none'` for browsers that read CSP), `Referrer-Policy: no-referrer`.
- `Cache-Control: no-store` on every /v1/ answer: a verdict holds the fields a caller may
  see and is true only as of its block; no shared or browser cache keeps one. Except the
  public trust anchor and snapshot (verifier.service.routers.trust), which the offline
  page keeps, and the catalogue (verifier.service.routers.catalogue), which the page
  reads its licence types from: they set `no-cache` and an ETag themselves.
"""

from __future__ import annotations

import base64
import hashlib
import re

from starlette.types import ASGIApp, Message, Receive, Scope, Send

PAGE_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; worker-src 'self'; manifest-src 'self'; object-src 'none'; "
    "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
_INLINE_SCRIPT = re.compile(r"<script>(.*?)</script>", re.DOTALL)

_COMMON: tuple[tuple[bytes, bytes], ...] = (
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
)
_NO_STORE = (b"cache-control", b"no-store")
_KEPT_BY_PAGES = frozenset({"/v1/trust-anchor", "/v1/trust-snapshot", "/v1/catalogue"})


def api_headers() -> list[tuple[bytes, bytes]]:
    """The security headers of every /v1/ answer (also those the fast path of
    verifier.service.hotpath sends itself)."""
    return SecurityHeaders.headers_of(PAGE_POLICY, no_store=True)


def docs_policy(html: str) -> str:
    """The CSP of the /docs page `html`: its inline scripts allowed by hash, and what
    Swagger UI needs (inline style attributes, data: icons) on that page only."""
    hashes = " ".join(
        "'sha256-" + base64.b64encode(hashlib.sha256(s.encode("utf-8")).digest()).decode() + "'"
        for s in _INLINE_SCRIPT.findall(html)
    )
    return (
        f"default-src 'self'; script-src 'self' {hashes}; style-src 'self' 'unsafe-inline'; "
        "img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; "
        "form-action 'self'; frame-ancestors 'none'"
    )


class SecurityHeaders:
    """Adds the security headers to every HTTP answer of `app`; `policies` gives the CSP
    of particular paths (the rest get PAGE_POLICY)."""

    def __init__(self, app: ASGIApp, policies: dict[str, str] | None = None) -> None:
        self._app = app
        self._default = self.headers_of(PAGE_POLICY, no_store=False)
        self._api = api_headers()
        self._paths = {
            path: self.headers_of(policy, no_store=False)
            for path, policy in (policies or {}).items()
        }

    @staticmethod
    def headers_of(policy: str, *, no_store: bool) -> list[tuple[bytes, bytes]]:
        """The headers that go with the CSP `policy` (and Cache-Control: no-store)."""
        headers = [(b"content-security-policy", policy.encode("ascii")), *_COMMON]
        if no_store:
            headers.append(_NO_STORE)
        return headers

    def _for(self, path: str) -> list[tuple[bytes, bytes]]:
        if path.startswith("/v1/") and path not in _KEPT_BY_PAGES:
            return self._api
        return self._paths.get(path, self._default)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        ours = self._for(scope["path"])
        names = {name for name, _ in ours}

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                # Ours replace any the app set (e.g. a route's own Cache-Control on /v1/).
                kept = [(n, v) for n, v in message.get("headers", ()) if n.lower() not in names]
                message = {**message, "headers": kept + ours}
            await send(message)

        await self._app(scope, receive, send_with_headers)
