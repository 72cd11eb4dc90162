"""The agency's workflow: validate and wrap batches, anchor their roots, write the documents.

The only module of the issuer package that calls out (to the chain and the disk).
Order matters: documents are published only after the anchoring transaction's receipt,
so no document ever names a root that was not anchored.

`issue_file` is the crash-safe, resumable path the `elicence issue` command takes:

1. check: every row of the input is validated (in worker processes when large), so
   every problem is reported before anything is issued;
2. wrap and stage: each batch is wrapped (in worker processes when large) and its
   documents and QR images are written, complete, into a hidden staging folder in the
   output folder;
3. plan: the batch (input digest, root, count) and its licences (number, id, secret) are
   recorded in one SQLite transaction, state PLANNED;
4. anchor: unless the registry already has the root (an earlier run's transaction
   landed), the anchoring transaction is sent; state ANCHORED with its hash and block;
5. publish: one sync, then each staged file is renamed into the output folder, then the
   manifest is written and the folder synced; state WRITTEN.

Steps 3 and 4 follow input order, batch after batch, while worker processes stage the
batches after them; a batch's files are published by one of two publisher threads while
the next batch is planned and anchored, and batches are marked WRITTEN in input order
(the records are written by the calling thread only).

A run killed at any point leaves only complete files in the output folder, and running
the same input again resumes each batch at the step it stopped at.
"""

from __future__ import annotations

import gc
import hashlib
import json
import os
import re
import shutil
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from eth_account.signers.local import LocalAccount
from web3 import Web3
from web3.types import FilterParams

from issuer.batch import encode_batch, wrap_batch
from issuer.compiled import ensure_compiled
from issuer.errors import IssuingError, LicenceValidationError
from issuer.faults import fault_point
from issuer.files import PRIVATE, write_atomically
from issuer.qr import qr_png_bytes
from issuer.records import (
    BatchRecord,
    BatchState,
    LicenceRecord,
    PlannedLicences,
    Records,
    RecordsError,
)
from issuer.spreadsheet import CsvChunks, Input, InputRow, ReadInput
from issuer.validation import RowsCheck
from ledger.chain import translate_errors
from ledger.errors import LedgerError, RegistryRejected
from ledger.private import private_folder, restrict_umask
from ledger.registry import LeafState, Registry
from licence.catalogue import LicenceType, catalogue
from licence.document import LicenceDocument
from licence.fields import FieldProblem, field_problems
from licence.payload import encode_payload
from licence.reasons import Reason
from licence.statuses import LeafStatus

if TYPE_CHECKING:
    from concurrent.futures import ProcessPoolExecutor

_SAFE_NAME = re.compile(r"[0-9A-Za-z][0-9A-Za-z._-]{0,100}")


@dataclass(frozen=True)
class IssuedBatch:
    """A batch anchored on chain and written to disk."""

    root: bytes
    tx_hash: str
    block_number: int
    documents: tuple[LicenceDocument, ...]
    paths: tuple[Path, ...]
    manifest: Path


def document_filename(document: LicenceDocument) -> str:
    """`<licence number>.json`, or the licence id when the number is not a safe file name."""
    return _filename(document.fields.get("licenceNumber", ""), document.licence_id)


def _filename(number: str, licence_id: bytes) -> str:
    stem = number if _SAFE_NAME.fullmatch(number) else "0x" + licence_id.hex()
    return f"{stem}.json"


def issue_batch(
    registry: Registry,
    agency: LocalAccount,
    licence_type: LicenceType,
    rows: Sequence[Mapping[str, str]],
    out_dir: Path,
) -> IssuedBatch:
    """Validate, wrap and anchor `rows` as one batch, then write a document per licence."""
    batch = wrap_batch(
        licence_type, rows, chain_id=registry.chain.chain_id, registry=registry.address
    )
    try:
        sent = registry.anchor(agency, batch.root, licence_type.code, len(batch.documents))
    except LedgerError as exc:
        raise IssuingError(f"the registry did not anchor the batch: {exc}") from exc
    paths = []
    for document in batch.documents:
        path = out_dir / document_filename(document)
        write_atomically(path, document.to_bytes())
        paths.append(path)
    manifest = out_dir / manifest_name(batch.root)
    summary = {
        "root": "0x" + batch.root.hex(),
        "licenceType": licence_type.id,
        "count": len(batch.documents),
        "chainId": registry.chain.chain_id,
        "registry": registry.address,
        "transaction": sent.tx_hash,
        "block": sent.block_number,
    }
    entries = [
        (d.fields["licenceNumber"], "0x" + d.licence_id.hex(), p.name)
        for d, p in zip(batch.documents, paths, strict=True)
    ]
    write_atomically(manifest, manifest_bytes(summary, entries))
    return IssuedBatch(
        batch.root, sent.tx_hash, sent.block_number, batch.documents, tuple(paths), manifest
    )


def revoke(
    registry: Registry, agency: LocalAccount, document: LicenceDocument, reason: Reason
) -> str:
    """Revoke one licence (吊销, final); returns the transaction hash."""
    sent = registry.revoke(agency, document.anchor.root, document.licence_id, int(reason))
    return sent.tx_hash


# ---- issuing from an input file: plan, anchor, write, resumable ---------------------

DEFAULT_BATCH_SIZE = 10_000
_PUBLISHERS = 2  # batches published at once (see _anchor_and_publish)
# Below this many licences a process pool costs more to start than it saves.
POOL_THRESHOLD = 4_000
_BATCH_ANCHORED = Web3.keccak(text="BatchAnchored(bytes16,uint32,uint8,uint32)")


@dataclass(frozen=True)
class IssueOptions:
    """How `issue_file` splits and writes."""

    batch_size: int = DEFAULT_BATCH_SIZE
    qr: bool = True
    skip_invalid: bool = False
    workers: int = 0  # 0: one per CPU when the input is large enough, 1: in this process


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
    """The batches of an input, and the rows left out by --skip-invalid."""

    batches: tuple[BatchOutcome, ...]
    skipped: tuple[FieldProblem, ...]

    @property
    def count(self) -> int:
        """Licences in all batches."""
        return sum(b.count for b in self.batches)


Progress = Callable[[str, int], None]  # (phase, licences done in that phase)


@dataclass(frozen=True)
class AgencyContext:
    """An agency at work: the registry, its signing key and its records."""

    registry: Registry
    key: LocalAccount
    records: Records


@dataclass(frozen=True)
class _Job:
    """A batch of checked rows to wrap and stage (picklable: it may run in a worker)."""

    index: int
    licence_type: str
    positions: list[int]  # the batch's rows, as indexes into the input's rows
    secrets: list[bytes] | None
    chain_id: int
    registry: str
    staging: str
    qr: bool


@dataclass(frozen=True)
class _Staged:
    """A wrapped batch whose files wait, complete but hidden, in its staging folder.

    Column lists, not an object per licence: this is what a worker sends back, and
    pickling ten thousand small objects costs more than the lists.
    """

    index: int
    root: bytes
    licences: PlannedLicences
    files: list[str]


def input_digest(licence_type: LicenceType, chain_id: int, registry: str, rows: Any) -> bytes:
    """What identifies a batch across runs: type, chain, registry and its rows' fields.

    Fields are taken in catalogue order (absent ones as null), so the digest does not
    depend on column order; nothing is taken from the clock. This is the definition;
    `InputDigest` computes the same in C.
    """
    names = licence_type.field_names
    content = [
        licence_type.id,
        chain_id,
        registry.lower(),
        [[row.get(n) for n in names] for row in rows],
    ]
    text = json.dumps(content, ensure_ascii=False, separators=(",", ":"), default=str)
    # surrogatepass: a JSON Lines input can hold a lone surrogate ("\ud800"), which the
    # check reports as a problem of its row; the digest of such rows must still exist.
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).digest()


class InputDigest:
    """`input_digest` of many batches of one type, chain and registry: in C for text rows.

    Issuing takes the digest of every batch of its input; in Python, JSON-encoding a
    hundred thousand rows costs 6 us a row. Rows holding anything but text (a JSON
    Lines number, say) are left to the definition.
    """

    def __init__(self, licence_type: LicenceType, chain_id: int, registry: str) -> None:
        self._type, self._chain_id, self._registry = licence_type, chain_id, registry
        self._names = licence_type.field_names
        head = json.dumps(
            [licence_type.id, chain_id, registry.lower()], ensure_ascii=False, separators=(",", ":")
        )
        # `[type,chain,"registry",[` then the rows (in C), then `]]`
        self._head = head[:-1].encode("utf-8") + b",["
        ensure_compiled()
        from issuer import _wrap

        self._digest = _wrap.input_digest

    def of(self, rows: Sequence[Mapping[str, object]]) -> bytes:
        """The digest of a batch of `rows`."""
        digest = self._digest(rows, self._names, self._head)
        if digest is None:
            return input_digest(self._type, self._chain_id, self._registry, rows)
        return digest


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
    agency_id = _authorised_agency(agency.registry, agency.key, licence_type)
    run = partial(_issue, agency, licence_type, out_dir=out_dir, agency_id=agency_id)
    if isinstance(source, CsvChunks):
        if (
            source.chunk_records == options.batch_size
            and _pool_size(options.workers, source.count) > 1
        ):
            try:
                return run(source, options=options, progress=progress)
            except _IrregularPart:
                pass
        # An irregular part, or no workers to read the parts: the file is read whole.
        source = source.read_whole(licence_type)
    return run(source, options=options, progress=progress)


class _IrregularPart(Exception):
    """A part of a split CSV file did not read as the split expected (see CsvChunks)."""


def _in_place(checked: list[_Checked | None], size: int) -> bool:
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
    options: IssueOptions,
    progress: Progress | None,
) -> IssueReport:
    registry, records = agency.registry, agency.records
    chain_id, address = registry.chain.chain_id, registry.address
    size = max(1, options.batch_size)
    with _workers(source, size, options.workers) as workers:
        checked = workers.check(licence_type, chain_id, address)
        if not _in_place(checked, size):
            raise _IrregularPart
        slices = [part for part in checked if part is not None and part.numbers]
        numbers = [number for part in slices for number in part.numbers]
        found = [problem for part in slices for problem in part.problems]
        read_problems = source.problems if isinstance(source, ReadInput) else []
        positions, skipped = _checked_rows(read_problems, found, numbers, options.skip_invalid)
        if not positions:
            if skipped:
                raise LicenceValidationError(skipped)
            raise LicenceValidationError([FieldProblem("", "the input holds no licence")])
        batches = [positions[i : i + size] for i in range(0, len(positions), size)]
        if len(positions) == len(numbers):
            digests = [part.digest for part in slices]  # the batches are the checked slices
        else:
            digests = workers.digests(licence_type, batches, chain_id, address)
        existing = [records.batch_by_digest(d) for d in digests]
        groups = [[numbers[i] for i in batch] for batch in batches]
        problems = _already_issued(registry, records, licence_type, groups, existing)
        if problems:
            if not options.skip_invalid:
                raise LicenceValidationError(problems)
            raise IssuingError(
                "some licence numbers are already issued in another batch; remove those "
                "rows or give new numbers: " + "; ".join(str(p) for p in problems[:5])
            )
        jobs: list[_Job] = []
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
                _Job(
                    index=index,
                    licence_type=licence_type.id,
                    positions=batch,
                    secrets=records.secrets_of(record.id) if record is not None else None,
                    chain_id=chain_id,
                    registry=address,
                    staging=str(out_dir / f".staging-{digest.hex()[:32]}"),
                    qr=options.qr,
                )
            )
        done |= _anchor_and_publish(
            agency,
            licence_type,
            zip(jobs, workers.stage(jobs), strict=True),
            agency_id=agency_id,
            digests=digests,
            existing=existing,
            out_dir=out_dir,
            progress=progress,
        )
    return IssueReport(tuple(done[i] for i in sorted(done)), tuple(skipped))


def _anchor_and_publish(
    agency: AgencyContext,
    licence_type: LicenceType,
    staged_jobs: Iterator[tuple[_Job, _Staged]],
    *,
    agency_id: int,
    digests: list[bytes],
    existing: list[BatchRecord | None],
    out_dir: Path,
    progress: Progress | None,
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
    wrapped = written = 0
    publishing: deque[_Publishing] = deque()

    def finish_oldest() -> None:
        nonlocal written
        oldest = publishing.popleft()
        outcome = done[oldest.index] = oldest.complete(agency.records)
        written += outcome.count
        if progress is not None:
            progress("written", written)

    with ThreadPoolExecutor(max_workers=_PUBLISHERS) as publisher:
        for job, staged in staged_jobs:
            wrapped += len(staged.licences.numbers)
            if progress is not None:
                progress("wrapped", wrapped)
            anchored = _plan_and_anchor(
                agency,
                licence_type,
                staged,
                agency_id=agency_id,
                digest=digests[job.index],
                record=existing[job.index],
                out_dir=out_dir,
            )
            while len(publishing) >= _PUBLISHERS:
                finish_oldest()
            publishing.append(
                _Publishing(
                    job.index,
                    anchored,
                    Path(job.staging),
                    out_dir,
                    publisher.submit(
                        _publish,
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


def manifest_name(root: bytes) -> str:
    """`batch-<first 16 hex digits of the root>.json`."""
    return f"batch-{root.hex()[:16]}.json"


def _authorised_agency(registry: Registry, agency: LocalAccount, licence_type: LicenceType) -> int:
    # Checked before any work, so that an agency learns in a second, not after wrapping
    # a hundred thousand licences, that it may not issue them.
    try:
        agency_id = registry.agency_id_of(agency.address)
        if agency_id is None:
            raise IssuingError(
                f"the key {agency.address} is not the signing key of any agency in registry "
                f"{registry.address}: the governor must first run `elicence agency authorise`"
            )
        record = registry.agency(agency_id)
    except LedgerError as exc:
        raise IssuingError(f"cannot read the registry: {exc}") from exc
    if record.retired:
        raise IssuingError(f"agency {agency_id} ({record.name}) is retired and can issue nothing")
    if licence_type.code not in record.licence_types:
        raise IssuingError(
            f"agency {agency_id} ({record.name}) is not authorised to issue "
            f"{licence_type.name.zh} ({licence_type.id}); the governor can add it with "
            f"`elicence agency types`"
        )
    return agency_id


def _checked_rows(
    read_problems: list[FieldProblem],
    found: list[FieldProblem],
    numbers: list[tuple[int, str | None]],
    skip_invalid: bool,
) -> tuple[list[int], list[FieldProblem]]:
    """The input's rows to issue (as indexes), and the problems to report first.

    `found` are the field problems of every row (the workers' check), `numbers` each
    row's (row number, licence number); here is added what spans rows, a licence number
    used twice in the input. Every problem of the input is known before any batch is
    anchored.
    """
    problems = [*read_problems, *found]
    licence_numbers = [number for _, number in numbers]
    if len(set(licence_numbers)) != len(licence_numbers):
        first_row: dict[object, int] = {}
        for row, number in numbers:
            if number is None:
                continue
            if number in first_row:
                problems.append(
                    FieldProblem("licenceNumber", f"repeats row {first_row[number]}", number, row)
                )
            else:
                first_row[number] = row
    if not problems:
        return list(range(len(numbers))), []
    problems.sort(key=lambda p: p.row or 0)
    if not skip_invalid:
        raise LicenceValidationError(problems)
    bad_rows = {p.row for p in problems}
    kept = [i for i, (row, _) in enumerate(numbers) if row not in bad_rows]
    return kept, problems


def _already_issued(
    registry: Registry,
    records: Records,
    licence_type: LicenceType,
    groups: list[list[tuple[int, str | None]]],
    existing: list[BatchRecord | None],
) -> list[FieldProblem]:
    """Rows whose licence number another batch already holds (a changed input, re-run).

    `groups` holds each batch's rows as (row number, licence number).
    """
    problems: list[FieldProblem] = []
    for group, record in zip(groups, existing, strict=True):
        if record is not None:
            continue  # the batch itself: a resumed run
        by_number = {str(number): row for row, number in group}
        taken = records.issued_numbers(licence_type.id, by_number)
        for batch_id in sorted(set(taken.values())):
            stale = records.batch(batch_id)
            if stale.state is BatchState.PLANNED and _not_anchored(registry, stale.root):
                # A plan from a run that stopped before anchoring, for input since
                # changed: nothing was issued, so the plan may go.
                records.forget_batch(batch_id)
                taken = {k: v for k, v in taken.items() if v != batch_id}
        for number, batch_id in taken.items():
            root = records.batch(batch_id).root
            problems.append(
                FieldProblem(
                    "licenceNumber",
                    f"was already issued in batch 0x{root.hex()} with different fields; "
                    "to change a licence, supersede it with a new number",
                    number,
                    by_number[number],
                )
            )
    return sorted(problems, key=lambda p: p.row or 0)


def _not_anchored(registry: Registry, root: bytes) -> bool:
    try:
        return registry.anchor_of(root) is None
    except LedgerError as exc:
        raise IssuingError(f"cannot read the registry: {exc}") from exc


@dataclass(frozen=True)
class _Checked:
    """One slice of the input, checked: what a worker sends back."""

    problems: list[FieldProblem]
    digest: bytes
    numbers: list[tuple[int, str | None]]  # per row: (row number, licence number if text)


class _Rows:
    """The input's rows where they are used: a list, or a split CSV file's parts.

    Slice k of the input is rows [k * size, (k + 1) * size), and, for a split file, its
    part k (every part before the last with rows holds exactly `size`: `_in_place`). A
    process reads a part when it first needs it and keeps it until a later batch is
    staged: a worker checks and stages the same parts (see `_Workers`).
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


# The input in a worker process, given once when the worker starts: with fork (the
# default on Linux) it is inherited, not pickled; the tasks name rows by index.
_INPUT: dict[str, _Rows] = {}


def _start_worker(rows: _Rows, parent: int) -> None:
    from issuer import _wrap  # compiled: the check needs it too

    _wrap.die_with_parent(parent)
    restrict_umask()  # a library caller's umask may be open; what workers write is private
    _INPUT["rows"] = rows


class _Workers:
    """Checks rows and stages batches: in worker processes, or in this one when there are none.

    Batches are independent until anchored, so workers check the whole input, then wrap
    and stage the next batches while the calling process anchors and publishes the
    current one; anchoring and publishing stay there, in input order. Slice and batch k
    go to worker k mod n, one process per pool: a worker stages the parts of a split
    file that it read to check them.
    """

    def __init__(self, rows: _Rows, pools: list[ProcessPoolExecutor]) -> None:
        self._rows = rows
        self._pools = pools

    def check(
        self, licence_type: LicenceType, chain_id: int, registry: str
    ) -> list[_Checked | None]:
        """Per slice: its rows' problems and numbers, and its input digest.

        None for an irregular part of a split file.
        """
        if not self._pools:
            return [
                _check(self._rows, k, licence_type.id, chain_id, registry)
                for k in range(self._rows.slices)
            ]
        futures = [
            self._pool(k).submit(_check_in_worker, k, licence_type.id, chain_id, registry)
            for k in range(self._rows.slices)
        ]
        return [future.result() for future in futures]

    def digests(
        self, licence_type: LicenceType, batches: list[list[int]], chain_id: int, registry: str
    ) -> list[bytes]:
        """The input digest of each batch (rows by position), when not the slices'."""
        if not self._pools:
            return [_digest(self._rows, b, licence_type.id, chain_id, registry) for b in batches]
        futures = [
            self._pool(k).submit(_digest_in_worker, batch, licence_type.id, chain_id, registry)
            for k, batch in enumerate(batches)
        ]
        return [future.result() for future in futures]

    def stage(self, jobs: list[_Job]) -> Iterator[_Staged]:
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


def _pool_size(workers: int, rows: int) -> int:
    """Worker processes for an input of `rows` rows; 1 means none (all in this process)."""
    count = workers or (os.cpu_count() or 1)
    return 1 if rows < POOL_THRESHOLD and workers == 0 else count


@contextmanager
def _workers(source: Input, size: int, workers: int) -> Iterator[_Workers]:
    rows = _Rows(source, size)
    count = _pool_size(workers, rows.count)
    if count <= 1:
        yield _Workers(rows, [])
        return
    # Imported here: multiprocessing is not worth loading for every elicence command.
    from concurrent.futures import ProcessPoolExecutor

    # Everything made so far, the input's rows above all, is left out of this process's
    # garbage collections, and so out of the workers' (forked with it): a collection
    # would walk a million objects each time, and in a worker would also write to each
    # one's header, copying the pages it shares with this process.
    gc.freeze()
    pools: list[ProcessPoolExecutor] = []
    try:
        for _ in range(count):
            pools.append(
                ProcessPoolExecutor(1, initializer=_start_worker, initargs=(rows, os.getpid()))
            )
        yield _Workers(rows, pools)
    finally:
        # On an error, batches not yet started are dropped: a re-run stages them again.
        for pool in pools:
            pool.shutdown(wait=True, cancel_futures=True)
        gc.unfreeze()


def _check(
    rows: _Rows, index: int, licence_type: str, chain_id: int, registry: str
) -> _Checked | None:
    checked = rows.slice(index)
    if checked is None:
        return None
    kind = catalogue().get(licence_type)
    fields = [row.fields for row in checked]
    problems = [
        problem
        for at in RowsCheck(kind).refused(fields)
        for problem in field_problems(kind, fields[at], row=checked[at].number)
    ]
    numbers = [
        (row.number, number if isinstance(number := row.fields.get("licenceNumber"), str) else None)
        for row in checked
    ]
    return _Checked(problems, InputDigest(kind, chain_id, registry).of(fields), numbers)


def _check_in_worker(
    index: int, licence_type: str, chain_id: int, registry: str
) -> _Checked | None:
    return _check(_INPUT["rows"], index, licence_type, chain_id, registry)


def _digest(
    rows: _Rows, positions: list[int], licence_type: str, chain_id: int, registry: str
) -> bytes:
    kind = catalogue().get(licence_type)
    return InputDigest(kind, chain_id, registry).of(rows.fields(positions))


def _digest_in_worker(
    positions: list[int], licence_type: str, chain_id: int, registry: str
) -> bytes:
    return _digest(_INPUT["rows"], positions, licence_type, chain_id, registry)


def _stage_in_worker(job: _Job) -> _Staged:
    return stage_batch(job, _INPUT["rows"].fields(job.positions))


def stage_batch(job: _Job, fields: Sequence[Mapping[str, object]]) -> _Staged:
    """Wrap one batch (`fields`: its checked rows) and write its files into its staging folder.

    Nothing here is visible in the output folder; files are published by rename only
    after the batch is anchored. No fsync per file: `_publish` syncs once.
    """
    from issuer import _wrap  # compiled: encode_batch needs it too

    licence_type = catalogue().get(job.licence_type)
    rows = cast(Sequence[Mapping[str, str]], fields)  # checked: every value is text
    batch = encode_batch(
        licence_type,
        rows,
        chain_id=job.chain_id,
        registry=job.registry,
        secrets=job.secrets,
    )
    numbers = [row["licenceNumber"] for row in rows]
    names = [_filename(n, i) for n, i in zip(numbers, batch.licence_ids, strict=True)]
    files = names
    private_folder(Path(job.staging))
    folder = os.open(job.staging, os.O_RDONLY | os.O_DIRECTORY)
    try:
        # O_TRUNC: a staging file left by a killed run is simply rewritten.
        _wrap.write_files(folder, names, batch.documents, PRIVATE)
        if job.qr:
            files = _stage_images(
                job, licence_type, rows, secrets=batch.secrets, names=names, folder=folder
            )
    finally:
        os.close(folder)
    licences = PlannedLicences(
        numbers=numbers,
        licence_ids=batch.licence_ids,
        secrets=batch.secrets,
        holder_codes=[row.get("unifiedSocialCreditCode") for row in rows],
    )
    return _Staged(job.index, batch.root, licences, files)


def _stage_images(
    job: _Job,
    licence_type: LicenceType,
    rows: Sequence[Mapping[str, str]],
    *,
    secrets: list[bytes],
    names: list[str],
    folder: int,
) -> list[str]:
    # The QR payload is made from document objects; next to ~1 ms per image, wrapping
    # the batch a second time (same secrets, so the same documents) costs 1 %.
    documents = wrap_batch(
        licence_type, rows, chain_id=job.chain_id, registry=job.registry, secrets=secrets
    ).documents
    from issuer import _wrap

    images = [name.removesuffix(".json") + ".png" for name in names]
    pngs = [qr_png_bytes(encode_payload(document)) for document in documents]
    _wrap.write_files(folder, images, pngs, PRIVATE)  # a QR holds the whole document
    return [file for pair in zip(names, images, strict=True) for file in pair]


@dataclass(frozen=True)
class _Anchored:
    """A batch planned and anchored, not yet published."""

    record: BatchRecord
    resumed: BatchState | None
    anchored_now: bool


@dataclass(frozen=True)
class _Publishing:
    """An anchored batch whose files are being published by a publisher thread."""

    index: int
    anchored: _Anchored
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


def _plan_and_anchor(
    agency: AgencyContext,
    licence_type: LicenceType,
    staged: _Staged,
    *,
    agency_id: int,
    digest: bytes,
    record: BatchRecord | None,
    out_dir: Path,
) -> _Anchored:
    """Plan (if new) and anchor (if not yet on chain) one staged batch."""
    registry, records = agency.registry, agency.records
    resumed = record.state if record is not None else None
    if record is None:
        record = records.plan(
            digest=digest,
            licence_type=licence_type.id,
            chain_id=registry.chain.chain_id,
            registry=registry.address,
            root=staged.root,
            licences=staged.licences,
            out_dir=str(out_dir),
        )
        fault_point("after-plan")
    elif record.root != staged.root:
        raise IssuingError(
            f"batch {record.id} re-wrapped to root 0x{staged.root.hex()}, not the recorded "
            f"0x{record.root.hex()}: the records do not belong to this input"
        )
    anchored_now = False
    if record.state is BatchState.PLANNED:
        tx_hash, block, anchored_now = _anchor(
            agency, agency_id, licence_type, record, planned_now=resumed is None
        )
        records.mark_anchored(record.id, tx_hash, block)
        record = records.batch(record.id)
    return _Anchored(record, resumed, anchored_now)


def _anchor(
    agency: AgencyContext,
    agency_id: int,
    licence_type: LicenceType,
    record: BatchRecord,
    *,
    planned_now: bool,
) -> tuple[str, int, bool]:
    """The batch's anchoring transaction: an earlier run's if it landed, else a new one."""
    registry = agency.registry
    try:
        # A batch planned by this run has fresh secrets, so no earlier run can have
        # anchored its root: no need to ask the chain (a call per batch).
        found = None if planned_now else registry.anchor_of(record.root)
        if found is None:
            try:
                sent = registry.anchor(agency.key, record.root, licence_type.code, record.count)
            except RegistryRejected as exc:
                # An earlier run's transaction may have been mined meanwhile.
                if exc.error_name != "LicenceRegistryAlreadyAnchored":
                    raise
                found = registry.anchor_of(record.root)
            else:
                fault_point("after-send")
                return sent.tx_hash, sent.block_number, True
        if found is None or found.agency_id != agency_id:
            raise IssuingError(
                f"root 0x{record.root.hex()} is anchored by another agency; nothing was issued"
            )
        return _anchoring_tx(registry, record.root, found.block_number), found.block_number, False
    except LedgerError as exc:
        raise IssuingError(f"the registry did not anchor the batch: {exc}") from exc


def _anchoring_tx(registry: Registry, root: bytes, block: int) -> str:
    # The anchor records the block; the transaction is found from the BatchAnchored log
    # of that root in that block.
    topic = "0x" + root.hex() + "00" * (32 - len(root))
    with translate_errors():
        logs = registry.chain.w3.eth.get_logs(
            cast(
                FilterParams,
                {
                    "address": registry.address,
                    "fromBlock": block,
                    "toBlock": block,
                    "topics": [_BATCH_ANCHORED.to_0x_hex(), topic],
                },
            )
        )
    if not logs:
        raise IssuingError(f"no BatchAnchored log for 0x{root.hex()} in block {block}")
    return str(logs[0]["transactionHash"].to_0x_hex())


def _publish(
    registry: Registry,
    licence_type: LicenceType,
    record: BatchRecord,
    staged: _Staged,
    *,
    staging: Path,
    out_dir: Path,
) -> Path:
    """Move the staged files into `out_dir` (one rename each), then write the manifest."""
    # One sync for the whole batch instead of an fsync per file: after it, every staged
    # file is on disk, so no rename below can expose a file whose data a power cut loses.
    os.sync()
    from issuer import _wrap  # compiled: staging needed it too

    halfway = len(staged.files) // 2
    source = os.open(staging, os.O_RDONLY | os.O_DIRECTORY)
    target = os.open(out_dir, os.O_RDONLY | os.O_DIRECTORY)
    try:
        _wrap.rename_files(source, target, staged.files[:halfway])
        fault_point("mid-write")
        _wrap.rename_files(source, target, staged.files[halfway:])
    finally:
        os.close(source)
        os.close(target)
    fault_point("before-manifest")
    manifest = out_dir / manifest_name(record.root)
    licences = staged.licences
    summary = {
        "root": "0x" + record.root.hex(),
        "licenceType": licence_type.id,
        "count": record.count,
        "chainId": record.chain_id,
        "registry": registry.address,
        "transaction": record.tx_hash,
        "block": record.block,
    }
    entries = zip(
        licences.numbers,
        ["0x" + licence_id.hex() for licence_id in licences.licence_ids],
        [f for f in staged.files if f.endswith(".json")],
        strict=True,
    )
    write_atomically(manifest, manifest_bytes(summary, list(entries)))
    _fsync_folder(out_dir)
    return manifest


def manifest_bytes(
    summary: Mapping[str, object], licences: Sequence[tuple[str, str, str]]
) -> bytes:
    """`json.dumps({**summary, "licences": [...]}, ensure_ascii=False, indent=2)`, as UTF-8.

    `licences` are (licence number, licence id, file name). The entries are written out
    here because json has no C encoder for the indented form, and a batch's manifest took
    longer to encode than its licences took to hash; a test compares with json.dumps.
    """
    head = json.dumps({**summary, "licences": []}, ensure_ascii=False, indent=2)
    if not licences:
        return head.encode("utf-8")
    quote = json.encoder.encode_basestring
    entries = ",\n".join(
        f'    {{\n      "licenceNumber": {quote(number)},\n      "licenceId": {quote(licence_id)},'
        f'\n      "file": {quote(name)}\n    }}'
        for number, licence_id, name in licences
    )
    return (head.removesuffix("[]\n}") + "[\n" + entries + "\n  ]\n}").encode("utf-8")


def _fsync_folder(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


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


# ---- status changes by licence number ------------------------------------------------

# The one-licence registry call for each status (a bulk change uses setStatuses).
_SINGLE: dict[LeafStatus, str] = {
    LeafStatus.REVOKED: "revoke",
    LeafStatus.SUSPENDED: "suspend",
    LeafStatus.ACTIVE: "reinstate",
    LeafStatus.CANCELLED: "cancel",
}


@dataclass(frozen=True)
class StatusChange:
    """One transaction that changed the status of licences under one root."""

    root: bytes
    numbers: tuple[str, ...]
    tx_hash: str | None  # None: the chain already showed the status (an earlier run's)


def resolve(records: Records, reference: str) -> LicenceRecord:
    """The one licence a number or licence id names in this agency's records."""
    found = records.find(reference)
    if not found:
        raise RecordsError(
            f"{reference}: no licence with this number or licence id in this agency's records"
        )
    if len(found) > 1:
        kinds = ", ".join(r.licence_type for r in found)
        raise RecordsError(
            f"{reference}: {len(found)} licences have this number ({kinds}); give the licence id"
        )
    return found[0]


def change_status(
    agency: AgencyContext,
    references: Sequence[str],
    status: LeafStatus,
    reason: Reason,
) -> list[StatusChange]:
    """Give every referenced licence `status`: one transaction per batch root.

    Licences whose status on chain already is `status` are not sent again (a re-run after
    a crash); the records are brought in step with the chain either way.
    """
    registry, records = agency.registry, agency.records
    if status is LeafStatus.SUPERSEDED:
        raise IssuingError("a supersession names a successor: use supersede()")
    licences = [resolve(records, r) for r in dict.fromkeys(references)]
    by_root: dict[bytes, list[LicenceRecord]] = {}
    for licence in licences:
        by_root.setdefault(licence.root, []).append(licence)
    changes: list[StatusChange] = []
    for root, group in by_root.items():
        try:
            pending = [
                lic for lic in group if _differs(registry.status_of(root, lic.licence_id), status)
            ]
            tx_hash = None
            if len(pending) == 1:
                call = getattr(registry, _SINGLE[status])
                tx_hash = call(agency.key, root, pending[0].licence_id, int(reason)).tx_hash
            elif pending:
                leaves = [lic.licence_id for lic in pending]
                tx_hash = registry.set_statuses(
                    agency.key, root, leaves, status, int(reason)
                ).tx_hash
        except RegistryRejected as exc:
            raise StatusRefused(exc, {lic.licence_id: lic.number for lic in group}) from exc
        records.set_status([lic.licence_id for lic in group], status.name, int(reason), None)
        changes.append(StatusChange(root, tuple(lic.number for lic in group), tx_hash))
    return changes


def _differs(state: LeafState, status: LeafStatus) -> bool:
    # A batch revoked as a whole reads as revoked, but its licences' own statuses are
    # not: the revocation would not follow them into another batch, so send it anyway.
    return state.status is not status or state.batch_revoked


def supersede(
    agency: AgencyContext,
    old: str,
    new: str,
    reason: Reason,
) -> StatusChange:
    """Mark licence `old` as superseded by licence `new` (numbers or licence ids)."""
    registry, records = agency.registry, agency.records
    before = resolve(records, old)
    after = resolve(records, new)
    if after.licence_id == before.licence_id:
        raise IssuingError(f"{old}: a licence cannot supersede itself")
    names = {before.licence_id: before.number, after.licence_id: after.number}
    try:
        state = registry.status_of(before.root, before.licence_id)
        tx_hash = None
        if state.status is not LeafStatus.SUPERSEDED:
            sent = registry.supersede(
                agency.key, before.root, before.licence_id, after.licence_id, int(reason)
            )
            tx_hash = sent.tx_hash
    except RegistryRejected as exc:
        raise StatusRefused(exc, names) from exc
    records.set_status(
        [before.licence_id], LeafStatus.SUPERSEDED.name, int(reason), after.licence_id
    )
    return StatusChange(before.root, (before.number,), tx_hash)


class StatusRefused(IssuingError):
    """The registry refused a status change; `rejection` says why, `numbers` names leaves."""

    def __init__(self, rejection: RegistryRejected, numbers: Mapping[bytes, str]) -> None:
        self.rejection = rejection
        self.numbers = dict(numbers)
        super().__init__(str(rejection))
