"""Issuing's worker pool: checking and staging in worker processes for a large input.

Batches are independent until anchored, so worker processes check the whole input
(issuer.checking), then wrap and stage the next batches (issuer.staging) while the
calling process plans, anchors and publishes the current one (issuer.issuing). Below
POOL_THRESHOLD rows everything runs in the calling process.

The workers are forked, whatever the interpreter's default start method (forkserver
from Python 3.14): forking is what makes the pool cheap, the workers sharing the
input's pages instead of receiving it pickled, and what lets a worker die with the
process that started it.
"""

from __future__ import annotations

import gc
import os
import signal
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, cast

from issuer.checking import Checked, batch_digest, check_slice
from issuer.spreadsheet import CsvChunks, Input, InputRow, ReadInput
from issuer.staging import Job, Staged, stage_batch
from ledger.lifetime import end_with_parent
from ledger.private import restrict_umask
from licence.catalogue import LicenceType

if TYPE_CHECKING:
    from concurrent.futures import ProcessPoolExecutor


# Below this many licences a process pool costs more to start than it saves.
POOL_THRESHOLD = 4_000


class Rows:
    """The input's rows where they are used: a list, or a split CSV file's parts.

    Slice k of the input is rows [k * size, (k + 1) * size), and, for a split file, its
    part k (every part before the last with rows holds exactly `size`: issuer.issuing
    checks it). A
    process reads a part when it first needs it and keeps it until a later batch is
    staged: a worker checks and stages the same parts (see `Workers`).
    """

    def __init__(self, source: Input, size: int) -> None:
        self._source = source
        self._size = size
        self._parts: dict[int, list[InputRow] | None] = {}

    @property
    def count(self) -> int:
        """The rows (for a split file, its records: a few may be blank)."""
        return self._source.count

    @property
    def slices(self) -> int:
        """How many slices of `size` rows the input has."""
        if isinstance(self._source, CsvChunks):
            return len(self._source.ends) - 1
        return -(-len(self._source.rows) // self._size)

    def slice(self, index: int) -> list[InputRow] | None:
        """The rows of slice `index`; None when a split file's part is irregular."""
        if isinstance(self._source, ReadInput):
            return self._source.rows[index * self._size : (index + 1) * self._size]
        if index not in self._parts:
            self._parts[index] = self._source.part(index)
        return self._parts[index]

    def fields(self, positions: list[int]) -> list[Mapping[str, object]]:
        """The fields of the rows at `positions` (of parts already found regular)."""
        if isinstance(self._source, ReadInput):
            rows = self._source.rows
            return [rows[i].fields for i in positions]
        found = [
            cast(list[InputRow], self.slice(i // self._size))[i % self._size] for i in positions
        ]
        # Batches come in input order: the parts before this one are not needed again.
        for index in [k for k in self._parts if k < positions[0] // self._size]:
            del self._parts[index]
        return [row.fields for row in found]


# The input in a worker process, given once when the worker starts: forked (see
# `worker_pool`), the worker inherits it, not pickled; the tasks name rows by index.
_INPUT: dict[str, Rows] = {}


def _start_worker(rows: Rows, parent: int) -> None:
    if not end_with_parent(parent, signal.SIGKILL):
        os.kill(os.getpid(), signal.SIGKILL)  # the run was killed while this one started
    restrict_umask()  # a library caller's umask may be open; what workers write is private
    _INPUT["rows"] = rows


class Workers:
    """Checks rows and stages batches: in worker processes, or in this one when there are none.

    Batches are independent until anchored, so workers check the whole input, then wrap
    and stage the next batches while the calling process anchors and publishes the
    current one; anchoring and publishing stay there, in input order. Slice and batch k
    go to worker k mod n, one process per pool: a worker stages the parts of a split
    file that it read to check them. Each task carries the licence type itself (the
    version the run resolved, maybe loaded from the registry), never its id to look up.
    """

    def __init__(self, rows: Rows, pools: list[ProcessPoolExecutor]) -> None:
        self._rows = rows
        self._pools = pools

    def check(
        self,
        licence_type: LicenceType,
        chain_id: int,
        registry: str,
        rows_done: Callable[[int], None] | None = None,
    ) -> list[Checked | None]:
        """Per slice: its rows' problems and numbers, and its input digest.

        None for an irregular part of a split file. `rows_done` is told the rows checked
        so far, slice after slice.
        """
        checked: list[Checked | None] = []
        rows = 0
        if not self._pools:
            results: Iterator[Checked | None] = (
                check_slice(self._rows.slice(k), licence_type, chain_id, registry)
                for k in range(self._rows.slices)
            )
        else:
            futures = [
                self._pool(k).submit(_check_in_worker, k, licence_type, chain_id, registry)
                for k in range(self._rows.slices)
            ]
            results = (future.result() for future in futures)
        for result in results:
            checked.append(result)
            rows += len(result.numbers) if result is not None else 0
            if rows_done is not None:
                rows_done(rows)
        return checked

    def digests(
        self, licence_type: LicenceType, batches: list[list[int]], chain_id: int, registry: str
    ) -> list[bytes]:
        """The input digest of each batch (rows by position), when not the slices'."""
        if not self._pools:
            return [
                batch_digest(self._rows.fields(b), licence_type, chain_id, registry)
                for b in batches
            ]
        futures = [
            self._pool(k).submit(_digest_in_worker, batch, licence_type, chain_id, registry)
            for k, batch in enumerate(batches)
        ]
        return [future.result() for future in futures]

    def fields(self, positions: list[int]) -> list[Mapping[str, object]]:
        """The fields of the rows at `positions`, read in this process."""
        return self._rows.fields(positions)

    def stage(self, jobs: list[Job]) -> Iterator[Staged]:
        """The jobs' staged batches, in order; workers stage ahead of the caller."""
        if not self._pools:
            for job in jobs:
                yield stage_batch(job, self._rows.fields(job.positions))
            return
        futures = [self._pool(job.index).submit(_stage_in_worker, job) for job in jobs]
        for future in futures:
            yield future.result()

    def _pool(self, index: int) -> ProcessPoolExecutor:
        """The worker of slice or batch `index`."""
        return self._pools[index % len(self._pools)]


def pool_size(workers: int, rows: int) -> int:
    """Worker processes for an input of `rows` rows; 1 means none (all in this process)."""
    count = workers or (os.cpu_count() or 1)
    return 1 if rows < POOL_THRESHOLD and workers == 0 else count


@contextmanager
def worker_pool(source: Input, size: int, workers: int) -> Iterator[Workers]:
    """The workers for `source` read in slices of `size` rows (`workers`: IssueOptions')."""
    rows = Rows(source, size)
    count = pool_size(workers, rows.count)
    if count <= 1:
        yield Workers(rows, [])
        return
    # Imported here: multiprocessing is not worth loading for every elicence command.
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    # Fork, named rather than the interpreter's default (forkserver from Python 3.14,
    # which would pickle the input into every worker and start the workers from a
    # server process, so that `end_with_parent` would kill them at once).
    fork = multiprocessing.get_context("fork")

    # Everything made so far, the input's rows above all, is left out of this process's
    # garbage collections, and so out of the workers' (forked with it): a collection
    # would walk a million objects each time, and in a worker would also write to each
    # one's header, copying the pages it shares with this process.
    gc.freeze()
    pools: list[ProcessPoolExecutor] = []
    try:
        for _ in range(count):
            pools.append(
                ProcessPoolExecutor(
                    1, mp_context=fork, initializer=_start_worker, initargs=(rows, os.getpid())
                )
            )
        yield Workers(rows, pools)
    finally:
        # On an error, batches not yet started are dropped: a re-run stages them again.
        for pool in pools:
            pool.shutdown(wait=True, cancel_futures=True)
        gc.unfreeze()


def _check_in_worker(
    index: int, licence_type: LicenceType, chain_id: int, registry: str
) -> Checked | None:
    return check_slice(_INPUT["rows"].slice(index), licence_type, chain_id, registry)


def _digest_in_worker(
    positions: list[int], licence_type: LicenceType, chain_id: int, registry: str
) -> bytes:
    return batch_digest(_INPUT["rows"].fields(positions), licence_type, chain_id, registry)


def _stage_in_worker(job: Job) -> Staged:
    return stage_batch(job, _INPUT["rows"].fields(job.positions))
