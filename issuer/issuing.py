"""Issuing an input: the order of the steps, each done by the module named.

`issue_file` is the crash-safe, resumable path the `elicence issue` command takes
(`issue_rows` is the same path for rows already in memory, as the demos have them):

0. read: issuer.spreadsheet reads the input file (a large CSV file in parts, one per
   batch, by the worker processes of issuer.pool);
1. check: every row of the input is validated (issuer.checking, in worker processes when
   large: issuer.pool), so every problem is reported before anything is issued; a row
   another batch already issued with the same fields is left out, one issued with other
   fields is a problem;
2. wrap and stage: each batch is wrapped (in worker processes when large) and its
   documents, QR images and payload texts (.el1 files) are written, complete, into a
   hidden staging folder in the output folder (issuer.staging);
3. plan: the batch (input digest, root, count) and its licences (number, id, secret) are
   recorded in one SQLite transaction, state PLANNED (issuer.anchoring, issuer.records);
4. anchor: unless the registry already has the root (an earlier run's transaction
   landed), the anchoring transaction is sent; state ANCHORED with its hash and block
   (issuer.anchoring);
5. publish: one sync, then each staged file is renamed into the output folder, then the
   manifest (issuer.manifest) is written and the folder synced (issuer.publishing);
   state WRITTEN.

Order matters: documents are published only after the anchoring transaction's receipt,
so no document ever names a root that was not anchored. Steps 3 and 4 follow input
order, batch after batch, while worker processes stage the batches after them; a batch's
files are published by one of two publisher threads while the next batch is planned and
anchored, and batches are marked WRITTEN in input order (the records are written by the
calling thread only).

A run killed at any point leaves only complete files in the output folder, and running
the same input again resumes each batch at the step it stopped at. `progress` hears of
each stage (`Stage`) as it moves, batch by batch. Status changes after issuing (revoke,
suspend, ...) are issuer.status's.
"""

from __future__ import annotations

import shutil
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from enum import StrEnum
from functools import partial
from pathlib import Path

from issuer.agency import AgencyContext
from issuer.anchoring import (
    Anchored,
    SealingKey,
    authorised_agency,
    plan_and_anchor,
    sealing_key,
)
from issuer.checking import AlreadyIssued, Checked, already_issued, checked_rows
from issuer.errors import IssuingError, LicenceValidationError
from issuer.manifest import manifest_name
from issuer.pool import pool_size, worker_pool
from issuer.publishing import publish
from issuer.records import BatchRecord, BatchState, Records
from issuer.spreadsheet import CsvChunks, Input, InputRow, ReadInput
from issuer.staging import Job, Staged
from licence.catalogue import LicenceType
from licence.digest import DEFAULT_SUITE, hash_function
from licence.fields import FieldProblem

DEFAULT_BATCH_SIZE = 10_000
_PUBLISHERS = 2  # batches published at once (see _anchor_and_publish)


@dataclass(frozen=True)
class IssueOptions:
    """How `issue_file` splits and writes."""

    batch_size: int = DEFAULT_BATCH_SIZE
    qr: bool = True
    skip_invalid: bool = False
    workers: int = 0  # 0: one per CPU when the input is large enough, 1: in this process
    suite: str = DEFAULT_SUITE  # the documents' hash suite (licence.digest.SUITES)


@dataclass(frozen=True)
class BatchOutcome:
    """What happened to one batch of an input."""

    root: bytes
    count: int
    tx_hash: str
    block_number: int
    manifest: Path
    resumed: BatchState | None  # None: new; else the state an earlier run left it in
    anchored_now: bool  # False when an earlier run's transaction had landed


@dataclass(frozen=True)
class IssueReport:
    """The batches of an input, the rows left out by --skip-invalid, and the rows left out
    because they were issued before with the same fields."""

    batches: tuple[BatchOutcome, ...]
    skipped: tuple[FieldProblem, ...]
    already_issued: tuple[AlreadyIssued, ...] = ()

    @property
    def count(self) -> int:
        """Licences in all batches."""
        return sum(b.count for b in self.batches)


class Stage(StrEnum):
    """The stages of issuing an input, in the order each row goes through them."""

    CHECKING = "checking"  # rows read and checked
    STAGING = "staging"  # licences wrapped, their files staged
    ANCHORING = "anchoring"  # licences whose batch is anchored
    PUBLISHING = "publishing"  # licences whose files are in the output folder


# Called as (stage, done, total): rows for CHECKING, licences for the others. A stage's
# `done` only grows; the stages after checking overlap (batch k is anchored while batch
# k + 1 is staged). Called from the calling thread only, never from a worker.
Progress = Callable[[Stage, int, int], None]


def _no_progress(stage: Stage, done: int, total: int) -> None:
    del stage, done, total


def issue_file(
    agency: AgencyContext,
    licence_type: LicenceType,
    source: Input,
    out_dir: Path,
    *,
    options: IssueOptions = IssueOptions(),
    progress: Progress | None = None,
) -> IssueReport:
    """Issue every licence of `source`, in batches of `options.batch_size`.

    Validates every row before anything is sent: LicenceValidationError lists every
    problem of every row (unless `skip_invalid`, which leaves bad rows out and reports
    them). Each batch is recorded (PLANNED) before its anchoring transaction is sent,
    then ANCHORED, then its files are published and it is WRITTEN; a second run of the
    same input finds its batches by input digest and resumes each where it stopped, with
    the recorded secrets, so it writes the same documents and never anchors twice. A
    split CSV file (`read_for_issuing`) is read in parts by the worker processes.
    """
    hash_function(options.suite)  # UnsupportedHashSuite before anything is read or sent
    agency_id = authorised_agency(agency.registry, agency.key, licence_type)
    sealing = sealing_key(agency.registry, agency_id, agency.seal_key)
    run = partial(
        _issue, agency, licence_type, out_dir=out_dir, agency_id=agency_id, sealing=sealing
    )
    if isinstance(source, CsvChunks):
        if (
            source.chunk_records == options.batch_size
            and pool_size(options.workers, source.count) > 1
        ):
            try:
                return run(source, options=options, progress=progress)
            except _IrregularPart:
                pass
        # An irregular part, or no workers to read the parts: the file is read whole.
        source = source.read_whole(licence_type)
    return run(source, options=options, progress=progress)


def issue_rows(
    agency: AgencyContext,
    licence_type: LicenceType,
    rows: Sequence[Mapping[str, object]],
    out_dir: Path,
    *,
    options: IssueOptions = IssueOptions(),
    progress: Progress | None = None,
) -> IssueReport:
    """`issue_file` for rows already in memory: row k of `rows` is reported as row k + 1."""
    source = ReadInput([InputRow(k, dict(row)) for k, row in enumerate(rows, start=1)], [])
    return issue_file(agency, licence_type, source, out_dir, options=options, progress=progress)


class _IrregularPart(Exception):
    """A part of a split CSV file did not read as the split expected (see CsvChunks)."""


def _in_place(checked: list[Checked | None], size: int) -> bool:
    """Whether every checked slice was read, and the input's row k is row k mod `size` of
    slice k // `size`: how workers find rows. A split file's blank lines break that
    unless they all come after its last row."""
    if any(part is None for part in checked):
        return False
    counts = [len(part.numbers) for part in checked if part is not None]
    last = max((k for k, count in enumerate(counts) if count), default=-1)
    return all(count == size for count in counts[:last])


def _issue(
    agency: AgencyContext,
    licence_type: LicenceType,
    source: Input,
    out_dir: Path,
    *,
    agency_id: int,
    sealing: SealingKey | None,
    options: IssueOptions,
    progress: Progress | None,
) -> IssueReport:
    registry, records = agency.registry, agency.records
    chain_id, address = registry.chain.chain_id, registry.address
    size = max(1, options.batch_size)
    report = progress or _no_progress
    with worker_pool(source, size, options.workers) as workers:
        checked = workers.check(
            licence_type, chain_id, address, lambda rows: report(Stage.CHECKING, rows, source.count)
        )
        if not _in_place(checked, size):
            raise _IrregularPart
        slices = [part for part in checked if part is not None and part.numbers]
        numbers = [number for part in slices for number in part.numbers]
        if len(numbers) != source.count:  # a split file's blank records hold no row
            report(Stage.CHECKING, source.count, source.count)
        found = [problem for part in slices for problem in part.problems]
        read_problems = source.problems if isinstance(source, ReadInput) else []
        positions, skipped = checked_rows(read_problems, found, numbers, options.skip_invalid)
        if not positions:
            if skipped:
                raise LicenceValidationError(skipped)
            raise LicenceValidationError([FieldProblem("", "the input holds no licence")])
        batches = _split(positions, size)
        if len(positions) == len(numbers):
            digests = [part.digest for part in slices]  # the batches are the checked slices
        else:
            digests = workers.digests(licence_type, batches, chain_id, address)
        existing = [records.batch_by_digest(d) for d in digests]
        before = already_issued(
            registry,
            records,
            licence_type,
            batches=batches,
            numbers=numbers,
            existing=existing,
            fields_of=workers.fields,
            suite=options.suite,
        )
        if before.problems:
            if not options.skip_invalid:
                raise LicenceValidationError(before.problems)
            raise IssuingError(
                "some licence numbers are already issued in another batch; remove those "
                "rows or give new numbers: " + "; ".join(str(p) for p in before.problems[:5])
            )
        if before.same:
            # Rows issued before with the same fields (the sheet run again with rows
            # added) are left out; the other new rows are batched anew.
            left_out = {position for position, _ in before.same}
            kept = [
                (b, d, e)
                for b, d, e in zip(batches, digests, existing, strict=True)
                if e is not None
            ]
            rest = [p for b, e in zip(batches, existing, strict=True) if e is None for p in b]
            regrouped = _split([p for p in rest if p not in left_out], size)
            new_digests = workers.digests(licence_type, regrouped, chain_id, address)
            new_existing = [records.batch_by_digest(d) for d in new_digests]
            everything = sorted(
                [*kept, *zip(regrouped, new_digests, new_existing, strict=True)],
                key=lambda batch: batch[0][0],
            )
            batches = [b for b, _, _ in everything]
            digests = [d for _, d, _ in everything]
            existing = [e for _, _, e in everything]
        jobs: list[Job] = []
        done: dict[int, BatchOutcome] = {}
        for index, (batch, digest, record) in enumerate(
            zip(batches, digests, existing, strict=True)
        ):
            if record is not None and record.state is BatchState.WRITTEN:
                manifest = out_dir / manifest_name(record.root)
                if manifest.exists():
                    done[index] = _outcome(record, manifest, BatchState.WRITTEN, anchored_now=False)
                    continue
            jobs.append(
                Job(
                    index=index,
                    licence_type=licence_type,
                    positions=batch,
                    secrets=records.secrets_of(record.id) if record is not None else None,
                    chain_id=chain_id,
                    registry=address,
                    staging=str(out_dir / f".staging-{digest.hex()[:32]}"),
                    qr=options.qr,
                    suite=options.suite,
                    seal_key=None if sealing is None else sealing.private,
                )
            )
        done |= _anchor_and_publish(
            agency,
            licence_type,
            zip(jobs, workers.stage(jobs), strict=True),
            total=sum(len(job.positions) for job in jobs),
            agency_id=agency_id,
            sealing=sealing,
            digests=digests,
            existing=existing,
            out_dir=out_dir,
            progress=report,
        )
    return IssueReport(
        tuple(done[i] for i in sorted(done)),
        tuple(skipped),
        tuple(found for _, found in before.same),
    )


def _split(positions: list[int], size: int) -> list[list[int]]:
    return [positions[i : i + size] for i in range(0, len(positions), size)]


def _anchor_and_publish(
    agency: AgencyContext,
    licence_type: LicenceType,
    staged_jobs: Iterator[tuple[Job, Staged]],
    *,
    total: int,
    agency_id: int,
    sealing: SealingKey | None,
    digests: list[bytes],
    existing: list[BatchRecord | None],
    out_dir: Path,
    progress: Progress,
) -> dict[int, BatchOutcome]:
    """Plan, anchor and publish staged batches in order: their outcomes by batch index.

    A batch's files are published (renames, manifest) by one of two threads while the
    next batch is planned and anchored: still each batch only after its own anchor. Two,
    because on a disk a batch takes longer to publish than to plan and anchor, and once
    the workers have staged the last batch, the batches still to publish would
    otherwise go one at a time on one core (a rename waits in the kernel, not for the
    interpreter). Batches are marked WRITTEN in input order, by this thread.
    """
    done: dict[int, BatchOutcome] = {}
    counts = dict.fromkeys((Stage.STAGING, Stage.ANCHORING, Stage.PUBLISHING), 0)
    publishing: deque[_Publishing] = deque()

    def advance(stage: Stage, licences: int) -> None:
        counts[stage] += licences
        progress(stage, counts[stage], total)

    def finish_oldest() -> None:
        oldest = publishing.popleft()
        outcome = done[oldest.index] = oldest.complete(agency.records)
        advance(Stage.PUBLISHING, outcome.count)

    with ThreadPoolExecutor(max_workers=_PUBLISHERS) as publisher:
        for job, staged in staged_jobs:
            advance(Stage.STAGING, len(staged.licences.numbers))
            anchored = plan_and_anchor(
                agency,
                licence_type,
                staged,
                agency_id=agency_id,
                digest=digests[job.index],
                record=existing[job.index],
                out_dir=out_dir,
                sealing=sealing,
            )
            advance(Stage.ANCHORING, len(staged.licences.numbers))
            while len(publishing) >= _PUBLISHERS:
                finish_oldest()
            publishing.append(
                _Publishing(
                    job.index,
                    anchored,
                    Path(job.staging),
                    out_dir,
                    publisher.submit(
                        publish,
                        agency.registry,
                        licence_type,
                        anchored.record,
                        staged,
                        staging=Path(job.staging),
                        out_dir=out_dir,
                    ),
                )
            )
        while publishing:
            finish_oldest()
    return done


@dataclass(frozen=True)
class _Publishing:
    """An anchored batch whose files are being published by a publisher thread."""

    index: int
    anchored: Anchored
    staging: Path
    out_dir: Path
    manifest: Future[Path]

    def complete(self, records: Records) -> BatchOutcome:
        """Wait for the files, then mark the batch WRITTEN (records stay in one thread)."""
        manifest = self.manifest.result()
        record = self.anchored.record
        records.mark_written(record.id, str(self.out_dir))
        shutil.rmtree(self.staging, ignore_errors=True)
        return _outcome(
            records.batch(record.id),
            manifest,
            self.anchored.resumed,
            anchored_now=self.anchored.anchored_now,
        )


def _outcome(
    record: BatchRecord, manifest: Path, resumed: BatchState | None, *, anchored_now: bool
) -> BatchOutcome:
    return BatchOutcome(
        root=record.root,
        count=record.count,
        tx_hash=record.tx_hash or "",
        block_number=record.block or 0,
        manifest=manifest,
        resumed=resumed,
        anchored_now=anchored_now,
    )
