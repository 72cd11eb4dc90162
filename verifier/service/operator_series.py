"""The operator page's series: the last hour of the service's own Prometheus metrics,
sampled every 10 s in the process that answers.

Every SAMPLE_INTERVAL_S a sampler task reads the chain's head (one eth_blockNumber,
published as elicence_chain_head), takes one sample of the cumulative counters, the
latency histogram and the gauges, and then brings the index up to the head, so that an
idle service stays as fresh as a busy one and the lag the page shows is the index's
real delay, not the time since the last request. The page's points are the differences
between consecutive samples: verifications/s by verdict, latency percentiles of the
verification routes (estimated from the histogram's buckets as Prometheus'
histogram_quantile does), rejected requests/s by reason (answers of 400 and above, by
status), index lag in blocks and audit records answered and not yet in the audit log.

With `elicence serve --workers N` the samples are read through prometheus_client's
multiprocess registry, so every worker's sampler sees the sum over all workers of this
`serve` (gauges: the highest index and head, the summed backlog), and whichever worker
answers shows the whole of this host. Other replicas behind the load balancer are not
included: that is Grafana's view (docs/grafana/elicence.json). A worker started later
has a shorter history; the answer says how long (`since`).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import math
import os
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any

from prometheus_client import CollectorRegistry
from prometheus_client.multiprocess import MultiProcessCollector

from ledger.errors import LedgerError
from ledger.registry import Registry
from verifier.errors import VerifierError
from verifier.service.metrics import MULTIPROCESS_DIR_VARIABLE, Metrics
from verifier.service.settings import Settings

SAMPLE_INTERVAL_S = 10.0
WINDOW_S = 3600.0
VERIFY_ROUTES = "/v1/verifications"  # the routes whose latency is plotted (and /batch, /image)
QUANTILES = (0.5, 0.95, 0.99)

ChainHead = Callable[[], Awaitable[int]]


@dataclass(frozen=True)
class Sample:
    """The cumulative values at one moment."""

    time: float  # Unix seconds
    verdicts: dict[str, float]  # verdicts given so far, by status
    rejected: dict[str, float]  # answers >= 400 so far, by status code
    buckets: tuple[tuple[float, float], ...]  # (upper bound, cumulative count), verify routes
    index_height: float
    chain_head: float
    audit_backlog: float


def read_sample(registry: CollectorRegistry, at: float) -> Sample:
    """One sample of the registry's elicence_* metrics."""
    verdicts: dict[str, float] = {}
    rejected: dict[str, float] = {}
    buckets: dict[float, float] = {}
    gauges = {"elicence_index_height": -1.0, "elicence_chain_head": -1.0}
    backlog = 0.0
    for family in registry.collect():
        for sample in family.samples:
            name, labels, value = sample.name, sample.labels, sample.value
            if name == "elicence_verdicts_total":
                verdicts[labels["status"]] = verdicts.get(labels["status"], 0.0) + value
            elif name == "elicence_http_requests_total" and int(labels["status"]) >= 400:
                rejected[labels["status"]] = rejected.get(labels["status"], 0.0) + value
            elif name == "elicence_http_request_duration_seconds_bucket" and labels[
                "route"
            ].startswith(VERIFY_ROUTES):
                bound = float(labels["le"])
                buckets[bound] = buckets.get(bound, 0.0) + value
            elif name in gauges:
                gauges[name] = value
            elif name == "elicence_audit_backlog":
                backlog = value
    return Sample(
        time=at,
        verdicts=verdicts,
        rejected=rejected,
        buckets=tuple(sorted(buckets.items())),
        index_height=gauges["elicence_index_height"],
        chain_head=gauges["elicence_chain_head"],
        audit_backlog=backlog,
    )


def quantile(q: float, buckets: Iterable[tuple[float, float]]) -> float | None:
    """The q-quantile of observations counted in cumulative (upper bound, count) buckets,
    interpolated linearly inside its bucket (as Prometheus' histogram_quantile); None
    without observations. In the +Inf bucket it is the highest finite bound."""
    ordered = sorted(buckets)
    if not ordered or ordered[-1][1] <= 0:
        return None
    rank = q * ordered[-1][1]
    lower, below = 0.0, 0.0
    for bound, count in ordered:
        if count >= rank:
            if math.isinf(bound):
                return lower
            if count == below:
                return bound
            return lower + (bound - lower) * (rank - below) / (count - below)
        lower, below = bound, count
    return lower


def _rate(after: dict[str, float], before: dict[str, float], seconds: float) -> dict[str, float]:
    # A worker that restarted starts its counters again; a drop is no negative rate.
    return {k: max(0.0, v - before.get(k, 0.0)) / seconds for k, v in after.items()}


def series(samples: list[Sample]) -> dict[str, Any]:
    """The page's JSON: one point per pair of consecutive samples, at the later one's time
    (Unix milliseconds). Percentiles in milliseconds, null where nothing was answered;
    lag null where the head or the index height was not known."""
    times: list[int] = []
    verdicts: dict[str, list[float]] = {}
    rejected: dict[str, list[float]] = {}
    latency: dict[str, list[float | None]] = {f"p{round(q * 100)}": [] for q in QUANTILES}
    lag: list[float | None] = []
    backlog: list[float] = []
    for n, (before, after) in enumerate(itertools.pairwise(samples)):
        seconds = max(after.time - before.time, 1e-3)
        times.append(round(after.time * 1000))
        for into, rates in (
            (verdicts, _rate(after.verdicts, before.verdicts, seconds)),
            (rejected, _rate(after.rejected, before.rejected, seconds)),
        ):
            for key, value in rates.items():
                into.setdefault(key, [0.0] * n).append(round(value, 3))
            for values in into.values():
                if len(values) == n:
                    values.append(0.0)
        earlier = dict(before.buckets)
        delta = [(bound, count - earlier.get(bound, 0.0)) for bound, count in after.buckets]
        for q in QUANTILES:
            found = quantile(q, delta)
            latency[f"p{round(q * 100)}"].append(None if found is None else round(found * 1000, 2))
        known = after.chain_head >= 0 and after.index_height >= 0
        lag.append(max(0.0, after.chain_head - after.index_height) if known else None)
        backlog.append(after.audit_backlog)
    return {
        "intervalSeconds": SAMPLE_INTERVAL_S,
        "since": round(samples[0].time * 1000) if samples else None,
        "times": times,
        "verdicts": verdicts,
        "latencyMs": latency,
        "rejected": rejected,
        "indexLag": lag,
        "auditBacklog": backlog,
    }


def chain_head_of(settings: Settings, registry: Registry | None) -> ChainHead:
    """How the sampler reads the chain's head: the in-process registry's chain when the
    app was given one (tests), else eth_blockNumber at the trusted chain's URL."""
    from verifier.service.live import HeadProbe

    if registry is not None:
        chain = registry.chain

        async def in_process() -> int:
            return await asyncio.get_running_loop().run_in_executor(None, chain.block_number)

        return in_process
    probe: list[HeadProbe] = []

    async def over_http() -> int:
        if not probe:
            # Read at the first tick, not at start-up: a bad config is the service's
            # start-up error to report, not the sampler's.
            probe.append(HeadProbe(settings.trust_anchor().chain_url))
        return await probe[0]()

    return over_http


class OperatorSeries:
    """The ring of samples (one hour) and the task that takes them."""

    def __init__(
        self,
        metrics: Metrics,
        head: ChainHead,
        keep_fresh: Callable[[], Awaitable[object]],
        *,
        interval: float = SAMPLE_INTERVAL_S,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._metrics = metrics
        self._head = head
        self._keep_fresh = keep_fresh
        self._interval = interval
        self._clock = clock
        self._samples: deque[Sample] = deque(maxlen=round(WINDOW_S / interval) + 1)
        self._task: asyncio.Task[None] | None = None

    @property
    def aggregated(self) -> bool:
        """Whether samples sum every worker of this `serve` (multiprocess mode)."""
        return bool(os.environ.get(MULTIPROCESS_DIR_VARIABLE))

    def _registry(self) -> CollectorRegistry:
        folder = os.environ.get(MULTIPROCESS_DIR_VARIABLE)
        if not folder:
            return self._metrics.registry
        registry = CollectorRegistry()
        MultiProcessCollector(registry, folder)  # type: ignore[no-untyped-call]
        return registry

    def take(self) -> Sample:
        """A sample of the metrics now."""
        return read_sample(self._registry(), self._clock())

    async def tick(self) -> None:
        """Read the head, keep one sample, then bring the index up to the head."""
        try:
            self._metrics.chain_head.set(await self._head())
        except (LedgerError, VerifierError, ValueError, OSError):
            self._metrics.chain_head.set(-1)  # unknown: the page shows no lag, not 0
        self._samples.append(self.take())
        # The next request would do the same; a chain that cannot be read is the
        # answers' 503 to report, not the sampler's.
        with contextlib.suppress(VerifierError):
            await self._keep_fresh()

    def start(self) -> None:
        """Start sampling (in the running event loop)."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        """Stop sampling."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _run(self) -> None:
        while True:
            await self.tick()
            await asyncio.sleep(self._interval)

    def to_json(self) -> dict[str, Any]:
        """The last hour, with a last point from the newest sample to now (so the page
        shows what happened in the last seconds too)."""
        samples = [*self._samples, self.take()]
        body = series(samples)
        body["aggregated"] = self.aggregated
        body["pid"] = os.getpid()
        return body
