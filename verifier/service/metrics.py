"""Prometheus metrics of one service instance (its own registry, so that several apps in
one process, as in tests, never share counters).

- elicence_http_requests_total{route, method, status}
- elicence_http_request_duration_seconds{route} (histogram)
- elicence_verdicts_total{status}: verdicts given, by status (COULD_NOT_CHECK included)
- elicence_index_height: the block height the index reflects (-1 before the chain was
  reached); with several workers, the highest among the running ones
- elicence_head_checks_total: head checks made for freshness (eth_blockNumber calls; with
  the embedded node's head page, only its first read and the reads that found blocks to
  index)
- elicence_chain_head: the chain's head as the operator page's sampler last read it, every
  10 s (-1 before it was read); the index lags by chain_head - index_height
- elicence_audit_backlog: audit records answered and not yet moved from the workers'
  spools into the audit log (summed over workers; it grows while the log cannot take them)

With several worker processes (`elicence serve --workers N`), each worker writes its
values to files in PROMETHEUS_MULTIPROC_DIR (prometheus_client's multiprocess mode, set
up by the supervisor) and whichever worker answers a scrape reports the sum of them all,
so that counters never jump back when a scrape lands on another worker.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.multiprocess import MultiProcessCollector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

# Latency buckets around the service's targets (p99 <= 50 ms at 32 connections).
_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.02, 0.035, 0.05, 0.1, 0.2, 0.5, 1.0, 2.5, 5.0)

CONTENT_TYPE = CONTENT_TYPE_LATEST
MULTIPROCESS_DIR_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"


class Metrics:
    """The service's counters, histogram and gauges."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "elicence_http_requests",
            "HTTP requests answered, by route template, method and status code.",
            ("route", "method", "status"),
            registry=self.registry,
        )
        self.latency = Histogram(
            "elicence_http_request_duration_seconds",
            "Time from request to the end of the response, by route template.",
            ("route",),
            buckets=_BUCKETS,
            registry=self.registry,
        )
        self.verdicts = Counter(
            "elicence_verdicts",
            "Verdicts given (one per licence; batches count each item), by status.",
            ("status",),
            registry=self.registry,
        )
        self._verdicts: dict[str, Counter] = {}
        self.index_height = Gauge(
            "elicence_index_height",
            "The block height the registry index reflects (-1 before the chain was reached).",
            registry=self.registry,
            multiprocess_mode="livemax",
        )
        self.index_height.set(-1)
        self.head_checks = Counter(
            "elicence_head_checks",
            "Head checks (eth_blockNumber) made to keep the index fresh.",
            registry=self.registry,
        )
        self.chain_head = Gauge(
            "elicence_chain_head",
            "The chain's head block as last read by the operator sampler (-1: not read).",
            registry=self.registry,
            multiprocess_mode="livemax",
        )
        self.chain_head.set(-1)
        self.audit_backlog = Gauge(
            "elicence_audit_backlog",
            "Audit records answered and not yet moved from the spool into the audit log.",
            registry=self.registry,
            multiprocess_mode="livesum",
        )

    def checked(self, height: int) -> None:
        """A head check brought the index to `height`."""
        self.head_checks.inc()
        self.index_height.set(height)

    def observe(self, route: str, method: str, status: int, seconds: float) -> None:
        """Count and time one answered request."""
        self.requests.labels(route, method, str(status)).inc()
        self.latency.labels(route).observe(seconds)

    def route_observer(self, route: str, method: str) -> Callable[[int, float], None]:
        """`observe` for one route and method, its labelled series looked up once per
        status rather than per request (the fast path's; labels() costs more than the
        counting)."""
        latency = self.latency.labels(route)
        counters: dict[int, Counter] = {}

        def observe(status: int, seconds: float) -> None:
            counter = counters.get(status)
            if counter is None:
                counter = counters[status] = self.requests.labels(route, method, str(status))
            counter.inc()
            latency.observe(seconds)

        return observe

    def count_verdict(self, status: str) -> None:
        """One verdict given (elicence_verdicts_total)."""
        counter = self._verdicts.get(status)
        if counter is None:
            counter = self._verdicts[status] = self.verdicts.labels(status)
        counter.inc()

    def exposition(self) -> bytes:
        """The text format Prometheus scrapes (every worker's values, when there are
        several)."""
        folder = os.environ.get(MULTIPROCESS_DIR_VARIABLE)
        if not folder:
            return generate_latest(self.registry)
        registry = CollectorRegistry()
        MultiProcessCollector(registry, folder)  # type: ignore[no-untyped-call]
        return generate_latest(registry)


class MetricsMiddleware:
    """Counts and times every HTTP request by its route template (never its raw path, so
    that the label set stays small whatever clients send)."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            route: Any = scope.get("route")
            template = str(getattr(route, "path", "")) or ("static" if route else "unmatched")
            self.metrics.observe(template, scope["method"], status, time.perf_counter() - started)
