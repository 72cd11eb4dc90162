"""Prometheus metrics of one service instance (its own registry, so that several apps in
one process, as in tests, never share counters).

- elicence_http_requests_total{route, method, status}
- elicence_http_request_duration_seconds{route} (histogram)
- elicence_verdicts_total{status}: verdicts given, by status (COULD_NOT_CHECK included)
- elicence_index_height: the block height the index reflects
- elicence_head_checks_total: eth_blockNumber calls made for freshness
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from starlette.types import ASGIApp, Message, Receive, Scope, Send

# Latency buckets around the service's targets (p99 <= 50 ms at 32 connections).
_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.02, 0.035, 0.05, 0.1, 0.2, 0.5, 1.0, 2.5, 5.0)

CONTENT_TYPE = CONTENT_TYPE_LATEST


class Metrics:
    """The service's counters, histogram and gauges."""

    def __init__(
        self, height: Callable[[], float | None], head_checks: Callable[[], float]
    ) -> None:
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
        height_gauge = Gauge(
            "elicence_index_height",
            "The block height the registry index reflects (-1 before the chain was reached).",
            registry=self.registry,
        )
        height_gauge.set_function(lambda: float(h) if (h := height()) is not None else -1.0)
        checks_gauge = Gauge(
            "elicence_head_checks",
            "Head checks (eth_blockNumber) made to keep the index fresh, since start.",
            registry=self.registry,
        )
        checks_gauge.set_function(head_checks)

    def exposition(self) -> bytes:
        """The text format Prometheus scrapes."""
        return generate_latest(self.registry)


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
            self.metrics.requests.labels(template, scope["method"], str(status)).inc()
            self.metrics.latency.labels(template).observe(time.perf_counter() - started)
