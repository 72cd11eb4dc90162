"""create_app(settings): the FastAPI service, built from its settings and nothing else.

Routes win over the static web page: the page (verifier/web/static, when present) is
mounted at / after every API route, so /docs, /openapi.json, /v1/..., /healthz, /readyz
and /metrics are never shadowed by a file. /docs and its assets (/docs/assets) are
served from the package whatever the web root.
"""

from __future__ import annotations

import asyncio
import gc
import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.openapi.utils import get_openapi
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaMode
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Receive, Scope, Send

from ledger.chain import connect
from ledger.config import NODE_FOLDER
from ledger.head_page import head_page_path
from ledger.registry import Registry
from verifier.errors import VerifierError
from verifier.service import memory, problems
from verifier.service.access import Gate
from verifier.service.deps import Services
from verifier.service.headers import SecurityHeaders, docs_policy
from verifier.service.hotpath import VerifyFront
from verifier.service.live import LiveIndex, OpenRegistry
from verifier.service.metrics import Metrics, MetricsMiddleware
from verifier.service.models import (
    BatchVerificationRequest,
    LicenceInput,
    Problem,
    VerificationRequest,
)
from verifier.service.operator_series import OperatorSeries, chain_head_of
from verifier.service.ratelimit import RateLimiter
from verifier.service.requests import BodyLimitMiddleware
from verifier.service.routers import catalogue, health, holder, operator, trust, verifications
from verifier.service.settings import (
    MAX_BATCH_BYTES,
    MAX_IMAGE_BYTES,
    MAX_JSON_BYTES,
    Settings,
)
from verifier.service.stores import open_stores

log = logging.getLogger("elicence.service")

WEB_STATIC = Path(__file__).resolve().parent.parent / "web" / "static"
GC_THRESHOLDS = (50_000, 20, 10)
SWAGGER_UI = WEB_STATIC / "vendor" / "swagger-ui-dist"
DOCS_ASSETS = "/docs/assets"
API_VERSION = "1.0.0"
DESCRIPTION = """\
Verify electronic licences (电子证照) against the blockchain registry they are anchored
in. Approval systems (审批系统) send a licence as the text of its QR code (`EL1:...`), as
its JSON document, or as a photo of the QR code, and get a verdict with the reason for
each check.

Access: `Authorization: Bearer <API key>` (keys from `elicence apikey create`); without a
key, calls are anonymous and limited per address. Every error is an RFC 9457 problem
(`application/problem+json`). A 503 means the chain could not be read: the licence could
not be checked, which is never a verdict.
"""


def registry_opener(settings: Settings) -> OpenRegistry:
    """Connects to the chain and registry the settings (or the home's config) name."""

    def open_registry() -> Registry:
        config = settings.trust_anchor()
        # The chain id is part of the trust anchor: a node at the configured URL that
        # serves another chain is not read (503 could-not-check), never believed.
        chain = connect(config.chain_url, expected_chain_id=config.chain_id)
        return Registry.at(chain, config.require_registry())

    return open_registry


def index_file(worker: int) -> str:
    """The index file of a worker process: each worker keeps its own, as each follows the
    chain (and its reorganisations) on its own."""
    return "index.sqlite" if worker == 0 else f"index-{worker}.sqlite"


def create_app(settings: Settings, *, registry: Registry | None = None, worker: int = 0) -> FastAPI:
    """The service; `registry` given (tests on an in-process chain) replaces connecting;
    `worker` numbers the process among `elicence serve --workers N`."""
    from verifier.service.routers.catalogue import catalogue_json

    # Before the thread pool starts: image decoding's memory goes back to the system
    # (verifier.service.memory).
    memory.limit_arenas()
    opener: OpenRegistry = (lambda: registry) if registry is not None else registry_opener(settings)
    metrics = Metrics()
    live = LiveIndex(
        settings.home / index_file(worker),
        opener,
        confirmations=settings.confirmations,
        on_checked=metrics.checked,
        head_page=head_page_path(settings.home / NODE_FOLDER),
    )
    # SQLite files in the home, or PostgreSQL shared with other replicas (migrated first).
    stores = open_stores(settings)
    keys, audit = stores.keys, stores.audit
    from verifier.service.verification import VerificationService

    services = Services(
        settings=settings,
        live=live,
        keys=keys,
        audit=audit,
        metrics=metrics,
        gate=Gate(keys, settings, RateLimiter(), stores.key_limiter),
        verification=VerificationService(
            live,
            audit,
            metrics,
            catalogue_folder=settings.catalogue,
            catalogue_url=settings.catalogue_url,
        ),
        catalogue_json=json.dumps(catalogue_json(), ensure_ascii=False).encode("utf-8"),
    )
    # The operator page's last hour (verifier.service.operator_series).
    series = OperatorSeries(metrics, chain_head_of(settings, registry), live.fresh)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        try:
            await asyncio.get_running_loop().run_in_executor(None, live.catch_up_blocking)
        except VerifierError as exc:
            # Not fatal: the service answers 503 until the chain can be read.
            log.warning("starting without the chain: %s", exc)
        # Everything alive now (web3, pydantic, the index) lives as long as the process:
        # left to the collector, one full pass over it took 76 ms here, a pause every
        # request in flight would wait for.
        gc.freeze()
        # Requests in flight hold a few thousand young objects, which the collector's
        # default (a pass every 700 allocations more than frees) went over again and
        # again: 8-30 µs a verification under load (issue 17). A request makes no
        # reference cycles, so its objects go with their last reference whatever this is.
        gc.set_threshold(*GC_THRESHOLDS)
        series.start()
        # Spools of processes of this home that stopped (a worker killed, the service
        # stopped uncleanly) move into the log now, not at the first request.
        services.verification.writer.start_mover()
        try:
            yield
        finally:
            await series.stop()
            live.close()
            services.verification.close()
            stores.close()

    app = _VerifyApi(
        title="elicence verify API",
        version=API_VERSION,
        description=DESCRIPTION,
        lifespan=lifespan,
        # The service has its own Prometheus metrics; FastAPI's OpenTelemetry hooks would
        # cost a provider look-up per request for nothing.
        telemetry={"tracing": False, "metrics": False, "logs": False},
        # /docs is served below from local files; ReDoc and the OAuth redirect page
        # would load scripts from a CDN (and nothing here uses OAuth).
        docs_url=None,
        redoc_url=None,
        swagger_ui_oauth2_redirect_url=None,
    )
    app.state.services = services
    app.state.operator_series = series
    app.include_router(verifications.router)
    app.include_router(holder.router)
    app.include_router(catalogue.router)
    app.include_router(trust.router)
    app.include_router(health.router)
    app.include_router(operator.router)
    app.add_exception_handler(VerifierError, problems.on_error)
    app.add_exception_handler(StarletteHTTPException, problems.on_http_error)
    app.add_exception_handler(RequestValidationError, problems.on_validation_error)
    app.add_exception_handler(Exception, problems.on_unexpected)
    app.add_middleware(
        BodyLimitMiddleware,
        limits={
            "/v1/verifications/batch": MAX_BATCH_BYTES,
            "/v1/verifications/image": MAX_IMAGE_BYTES,
        },
        default=MAX_JSON_BYTES,
    )
    app.add_middleware(MetricsMiddleware, metrics=metrics)
    _serve_docs(app)
    web_root = settings.web_root or WEB_STATIC
    if web_root.is_dir():
        app.mount("/", StaticFiles(directory=web_root, html=True), name="web")
    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]
    return app


def _serve_docs(app: FastAPI) -> None:
    """/docs: Swagger UI from the vendored copy (verifier/web/static/vendor), so that the
    page works offline and loads nothing from another host."""
    html = get_swagger_ui_html(
        openapi_url=app.openapi_url or "/openapi.json",
        title=f"{app.title} - docs",
        swagger_js_url=f"{DOCS_ASSETS}/swagger-ui-bundle.js",
        swagger_css_url=f"{DOCS_ASSETS}/swagger-ui.css",
        swagger_favicon_url=f"{DOCS_ASSETS}/favicon-32x32.png",
        # Swagger UI would send the OpenAPI document to its public validator.
        swagger_ui_parameters={"validatorUrl": None},
    )
    body = bytes(html.body)
    app.state.docs_policy = docs_policy(body.decode("utf-8"))

    @app.get("/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        return HTMLResponse(body)

    app.mount(DOCS_ASSETS, StaticFiles(directory=SWAGGER_UI), name="docs-assets")


class _VerifyApi(FastAPI):
    """The app with POST /v1/verifications answered before Starlette's own call and its
    middleware stack (verifier.service.hotpath says why), and the security headers
    (verifier.service.headers) on every answer: the stack's outermost layer adds them,
    the fast path sends them itself."""

    _front: VerifyFront | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if VerifyFront.handles(scope):
            front = self._front
            if front is None:
                front = self._front = VerifyFront(self.state.services)
            await front(scope, receive, send)
            return
        await super().__call__(scope, receive, send)

    def build_middleware_stack(self) -> ASGIApp:
        return SecurityHeaders(super().build_middleware_stack(), {"/docs": self.state.docs_policy})


def _openapi(app: FastAPI) -> dict[str, Any]:
    """FastAPI's document plus the request and problem models the routes name by $ref
    (their bodies are read by hand, so FastAPI does not see them)."""
    if app.openapi_schema is not None:
        return app.openapi_schema
    schema = get_openapi(
        title=app.title,
        version=app.version,
        description=app.description,
        routes=app.routes,
    )
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    named: tuple[tuple[type[BaseModel], JsonSchemaMode], ...] = (
        (VerificationRequest, "validation"),
        (BatchVerificationRequest, "validation"),
        (LicenceInput, "validation"),
        (Problem, "serialization"),
    )
    for model, mode in named:
        found = model.model_json_schema(
            by_alias=True, ref_template="#/components/schemas/{model}", mode=mode
        )
        for name, definition in found.pop("$defs", {}).items():
            components.setdefault(name, definition)
        components[model.__name__] = found
    app.openapi_schema = schema
    return schema
