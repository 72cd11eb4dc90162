"""Batch-issuing benchmark (see scripts/bench_issue). Prints licences/s per step."""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from issuer.batch import batch_problems, wrap_batch
from issuer.catalogue import catalogue
from issuer.records import Records
from issuer.spreadsheet import read_input
from issuer.workflow import AgencyContext, IssueOptions, issue_file
from ledger import Registry, connect
from tests.agency.conftest import write_csv
from tests.conftest import key_for
from tests.samples import business_licence

BUSINESS = catalogue().get("business-licence")


def rate(count: int, seconds: float) -> str:
    return f"{count / seconds:>9,.0f} licences/s  ({seconds:.2f} s for {count:,})"


def whole_run(folder: Path, count: int, batch_size: int, qr: bool, workers: int) -> None:
    chain = connect("embedded")
    governor, agency = key_for("bench-governor"), key_for("bench-agency")
    for account in (governor, agency):
        chain.fund(account.address, 10**20)
    registry = Registry.deploy(chain, governor)
    registry.register_agency(governor, "91110108551385082Q", "基准测试", agency.address, [1])
    source_path = write_csv(folder / f"in-{count}.csv", [business_licence(i) for i in range(count)])
    started = time.perf_counter()
    source = read_input(source_path, BUSINESS)
    read = time.perf_counter()
    with Records.of_home(folder / f"home-{qr}-{workers}") as records:
        options = IssueOptions(batch_size=batch_size, qr=qr, workers=workers)
        marks: dict[str, float] = {}

        def progress(phase: str, done: int) -> None:
            marks[phase] = time.perf_counter()

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
    print(f"  read CSV                      {rate(count, read - started)}")
    print(f"  validate+wrap+stage (pool)    {rate(count, marks['wrapped'] - read)}")
    print(f"  plan+anchor+publish+records   {rate(count, done - marks['wrapped'])}")


def steps(count: int) -> None:
    rows = [business_licence(i) for i in range(count)]
    t0 = time.perf_counter()
    batch_problems(BUSINESS, rows)
    t1 = time.perf_counter()
    batch = wrap_batch(BUSINESS, rows, chain_id=1, registry="0x" + "11" * 20)
    t2 = time.perf_counter()
    data = [d.to_bytes() for d in batch.documents]
    t3 = time.perf_counter()
    with tempfile.TemporaryDirectory(dir=".") as folder:
        for i, blob in enumerate(data):
            fd = os.open(f"{folder}/{i}.json", os.O_WRONLY | os.O_CREAT, 0o600)
            os.write(fd, blob)
            os.close(fd)
        t4 = time.perf_counter()
        for i in range(len(data)):
            os.rename(f"{folder}/{i}.json", f"{folder}/{i}.j")
        t5 = time.perf_counter()
    print(f"one process, {count:,} licences, each step alone:")
    print(f"  validation (batch_problems)   {rate(count, t1 - t0)}")
    print(f"  wrap_batch (validates again)  {rate(count, t2 - t1)}")
    print(f"  LicenceDocument.to_bytes      {rate(count, t3 - t2)}")
    print(f"  create+write file             {rate(count, t4 - t3)}")
    print(f"  rename into place             {rate(count, t5 - t4)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", type=int, default=100_000)
    parser.add_argument("--qr-count", type=int, default=1_000)
    parser.add_argument("--batch-size", type=int, default=10_000)
    parser.add_argument("--step-count", type=int, default=20_000)
    args = parser.parse_args()
    print(f"{os.cpu_count()} CPUs")
    with tempfile.TemporaryDirectory(dir=".", prefix=".bench-issue-") as tmp:
        folder = Path(tmp)
        whole_run(folder, args.count, args.batch_size, qr=False, workers=0)
        whole_run(folder, args.count, args.batch_size, qr=False, workers=1)
        whole_run(folder, args.qr_count, max(1, args.qr_count // 2), qr=True, workers=0)
    steps(args.step_count)


if __name__ == "__main__":
    main()
