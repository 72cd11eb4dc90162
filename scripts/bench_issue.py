"""Batch-issuing benchmark (see scripts/bench_issue). Prints licences/s per step."""

from __future__ import annotations

import argparse
import multiprocessing
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from issuer.agency import AgencyContext
from issuer.batch import batch_problems, encode_batch, wrap_batch
from issuer.issuing import IssueOptions, Stage, issue_file
from issuer.manifest import manifest_bytes
from issuer.records import PlannedLicences, Records
from issuer.spreadsheet import read_for_issuing
from ledger import Registry, connect
from licence.catalogue import catalogue
from licence.digest import DEFAULT_SUITE, suite_named
from tests.agency.conftest import write_csv
from tests.conftest import key_for
from tests.samples import business_licence

BUSINESS = catalogue().get("business-licence")


def rate(count: int, seconds: float, unit: str = "licences") -> str:
    return f"{count / seconds:>9,.0f} {unit}/s  ({seconds:.2f} s for {count:,})"


def whole_run(
    folder: Path,
    count: int,
    batch_size: int,
    *,
    qr: bool,
    workers: int,
    suite: str = DEFAULT_SUITE,
) -> None:
    chain = connect("embedded")
    governor, agency = key_for("bench-governor"), key_for("bench-agency")
    for account in (governor, agency):
        chain.fund(account.address, 10**20)
    registry = Registry.deploy(chain, governor)
    registry.publish_licence_types(governor, [BUSINESS])
    registry.register_agency(governor, "91110108551385082Q", "基准测试", agency.address, [1])
    source_path = write_csv(folder / f"in-{count}.csv", [business_licence(i) for i in range(count)])
    started = time.perf_counter()
    source = read_for_issuing(source_path, BUSINESS, batch_size)
    read = time.perf_counter()
    with Records.of_home(folder / f"home-{qr}-{workers}") as records:
        options = IssueOptions(batch_size=batch_size, qr=qr, workers=workers, suite=suite)
        marks: dict[str, float] = {}

        def progress(stage: Stage, done: int, total: int) -> None:
            marks[stage.value] = time.perf_counter()

        issue_file(
            AgencyContext(registry, agency, records),
            BUSINESS,
            source,
            folder / f"out-{qr}-{workers}",
            options=options,
            progress=progress,
        )
    done = time.perf_counter()
    label = f"{'with' if qr else 'without'} QR, workers={workers or 'auto'}"
    print(f"issue_file {label}: {rate(count, done - started)}")
    # Staging overlaps anchoring and publishing: the last batch is staged before its
    # turn to be anchored, and what follows is the last batch's anchor and publishing.
    print(f"  read CSV (or split it)        {rate(count, read - started)}")
    print(f"  until the last batch staged   {rate(count, marks['staging'] - read)}")
    print(f"  after the last batch staged   {rate(count, done - marks['staging'])}")


def _stage_files(folder: str, names: range, blob: bytes) -> None:
    os.mkdir(folder)
    fd_folder = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    for i in names:
        fd = os.open(f"{i:018d}.json", os.O_WRONLY | os.O_CREAT, 0o600, dir_fd=fd_folder)
        os.write(fd, blob)
        os.close(fd)
    os.close(fd_folder)


def _machine_busy() -> float:
    """CPU seconds all processes and the kernel's own threads have spent, machine-wide."""
    user, nice, system, _idle, _iowait, irq, softirq = map(
        int, Path("/proc/stat").read_text().split("\n")[0].split()[1:8]
    )
    return (user + nice + system + irq + softirq) / os.sysconf("SC_CLK_TCK")


def document_size(batch_size: int) -> int:
    """The mean size of a document in a batch of `batch_size` business licences."""
    rows = [business_licence(i) for i in range(batch_size)]
    documents = encode_batch(BUSINESS, rows, chain_id=1, registry="0x" + "11" * 20).documents
    return sum(map(len, documents)) // len(documents)


def file_system_floor(count: int, where: Path, size: int, batch_size: int) -> None:
    """The file system's own cost of what issuing asks of it, with no issuing work at all.

    As issue_file does: two processes create and write the files of alternate batches
    in their own staging folders, one sync, and one process renames every file into one
    output folder. Issuing can go no faster than this on the same folder.
    """
    blob = b"x" * size
    out = where / "floor-out"
    out.mkdir()
    busy, started = _machine_busy(), time.perf_counter()
    starts = range(0, count, batch_size)
    for pair in range(0, len(starts), 2):
        workers = [
            multiprocessing.Process(
                target=_stage_files,
                args=(str(where / f"floor-{a}"), range(a, min(a + batch_size, count)), blob),
            )
            for a in starts[pair : pair + 2]
        ]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
    os.sync()
    fd_out = os.open(out, os.O_RDONLY | os.O_DIRECTORY)
    for a in starts:
        fd_stage = os.open(where / f"floor-{a}", os.O_RDONLY | os.O_DIRECTORY)
        for i in range(a, min(a + batch_size, count)):
            name = f"{i:018d}.json"
            os.replace(name, name, src_dir_fd=fd_stage, dst_dir_fd=fd_out)
        os.close(fd_stage)
    os.close(fd_out)
    os.sync()
    seconds, cpu = time.perf_counter() - started, _machine_busy() - busy
    print(
        f"file system alone, {count:,} files of {size:,} bytes (create, write, sync, rename;"
        f" 2 processes):\n  {rate(count, seconds, 'files')};"
        f" machine CPU {cpu / count * 1e6:.0f} us a file"
    )


def steps(count: int, where: Path) -> None:
    rows = [business_licence(i) for i in range(count)]
    registry = "0x" + "11" * 20
    t0 = time.perf_counter()
    batch_problems(BUSINESS, rows)
    t1 = time.perf_counter()
    encoded = encode_batch(BUSINESS, rows, chain_id=1, registry=registry)
    t2 = time.perf_counter()
    batch = wrap_batch(BUSINESS, rows, chain_id=1, registry=registry)
    t3 = time.perf_counter()
    [d.to_bytes() for d in batch.documents]
    t4 = time.perf_counter()
    # Under the whole runs' folder, deleted with it at the end: see main().
    folder = str(where / "steps")
    os.mkdir(folder)
    # as issuing stages and publishes (issuer.staging, issuer.publishing): names relative
    # to a folder descriptor
    fd_folder = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    t5 = time.perf_counter()
    for i, blob in enumerate(encoded.documents):
        fd = os.open(f"{i}.json", os.O_WRONLY | os.O_CREAT, 0o600, dir_fd=fd_folder)
        os.write(fd, blob)
        os.close(fd)
    t6 = time.perf_counter()
    for i in range(count):
        os.replace(f"{i}.json", f"{i}.j", src_dir_fd=fd_folder, dst_dir_fd=fd_folder)
    t7 = time.perf_counter()
    os.close(fd_folder)
    with Records(Path(folder) / "records.sqlite") as records:
        t8 = time.perf_counter()
        records.plan(
            digest=b"\0" * 32,
            licence_type=BUSINESS.id,
            chain_id=1,
            registry=registry,
            root=encoded.root,
            licences=PlannedLicences(
                [r["licenceNumber"] for r in rows],
                encoded.licence_ids,
                encoded.secrets,
                [r["unifiedSocialCreditCode"] for r in rows],
            ),
            out_dir=folder,
        )
        t9 = time.perf_counter()
    entries = [
        (r["licenceNumber"], "0x" + i.hex(), r["licenceNumber"] + ".json")
        for r, i in zip(rows, encoded.licence_ids, strict=True)
    ]
    t10 = time.perf_counter()
    manifest_bytes({"root": "0x" + encoded.root.hex()}, entries)
    t11 = time.perf_counter()
    print(f"one process, {count:,} licences, each step alone (files in {where}):")
    print(f"  validation (batch_problems)            {rate(count, t1 - t0)}")
    print(f"  encode_batch (issuing: wrap + bytes)   {rate(count, t2 - t1)}")
    print(f"  wrap_batch (validates, objects)        {rate(count, t3 - t2)}")
    print(f"  LicenceDocument.to_bytes (reference)   {rate(count, t4 - t3)}")
    print(f"  create+write file                      {rate(count, t6 - t5)}")
    print(f"  rename into place                      {rate(count, t7 - t6)}")
    print(f"  records.plan (one SQLite transaction)  {rate(count, t9 - t8)}")
    print(f"  manifest                               {rate(count, t11 - t10)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", type=int, default=100_000)
    parser.add_argument("--qr-count", type=int, default=1_000)
    parser.add_argument("--batch-size", type=int, default=10_000)
    parser.add_argument("--step-count", type=int, default=20_000)
    parser.add_argument(
        "--suite",
        type=suite_named,
        default=DEFAULT_SUITE,
        help="hash suite of the whole runs: sha256 or sm3 (sm3 runs on the Python encoder)",
    )
    parser.add_argument(
        "--dir",
        type=Path,
        default=Path("."),
        help="where the output goes (e.g. /dev/shm, to take the disk out of the figures)",
    )
    args = parser.parse_args()
    print(f"{os.cpu_count()} CPUs, output under {args.dir.resolve()}")
    with tempfile.TemporaryDirectory(dir=args.dir, prefix=".bench-issue-") as tmp:
        folder = Path(tmp)
        print(f"hash suite {args.suite}")
        whole_run(folder, args.count, args.batch_size, qr=False, workers=0, suite=args.suite)
        whole_run(folder, args.count, args.batch_size, qr=False, workers=1, suite=args.suite)
        if args.qr_count:
            # Two batches at least (a worker stages whole batches); at most --batch-size,
            # so that --qr-count 100000 issues as `elicence issue` does.
            qr_batch = min(args.batch_size, max(1, args.qr_count // 2))
            whole_run(folder, args.qr_count, qr_batch, qr=True, workers=0, suite=args.suite)
        file_system_floor(args.count, folder, document_size(args.batch_size), args.batch_size)
        steps(args.step_count, folder)
        # Nothing is deleted until every figure is taken. On a journal-less ext4 (this
        # machine's disk) a new file's inode is searched for past every inode freed in the
        # last minute or more, one check each: right after deleting a run's 200,000 files,
        # creating files costs up to 20 times as much (docs/benchmarks.md).


if __name__ == "__main__":
    main()
