"""Each step of issuing that issuer/_wrap.c can do, timed in C and by its Python path.

The extension is kept only for the steps where it is at least 2x faster than the best
well-kept library for that step (issue 16). For each step this prints the median time
per licence of: the compiled function, the Python path issuing uses without it, and,
where one exists, another library that does the job (pyarrow's and polars' CSV readers
for reading rows, orjson for writing documents). Every candidate's output is checked
against the Python path's before it is timed, so a fast wrong answer cannot win.

Reading plain CSV rows and the input digest were in C until measured here to gain
less than 2x (docs/architecture.md); their steps still compare the libraries for them. Writing and
renaming a batch's files gain little alone but hold no GIL in C, which the file steps
measure with another thread running Python, as in the issuing process.

Usage: scripts/bench_compiled [--count 20000] [--repeat 7]
"""

from __future__ import annotations

import argparse
import csv
import io
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

from issuer import _wrap, encoder, files, spreadsheet, validation
from issuer.checking import InputDigest
from licence.catalogue import catalogue
from licence.digest import DEFAULT_SUITE, encoder_plan
from licence.document import AnchorRef
from licence.fields import field_problems
from licence.merkle import build_tree

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the tests' sample rows
from tests.issuing_paths import issuing_path
from tests.samples import business_licence

BUSINESS = catalogue().get("business-licence")
REGISTRY = "0x5FbDB2315678afecb367f032d93F642f64180aa3"


def median_us(run: Callable[[], object], per: int, repeat: int) -> float:
    """Median microseconds per item of `run` (which handles `per` items) over `repeat` runs."""
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    return statistics.median(times) / per * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=20_000, help="licences per step")
    parser.add_argument("--repeat", type=int, default=7, help="timed runs per candidate")
    args = parser.parse_args()
    count, repeat = args.count, args.repeat

    rows = [business_licence(i) for i in range(count)]
    names = BUSINESS.field_names
    secrets = os.urandom(16 * count)
    results: list[tuple[str, dict[str, float]]] = []

    def step(label: str, candidates: dict[str, Callable[[], object]], reference: str) -> None:
        expected = candidates[reference]()
        for name, run in candidates.items():
            if run() != expected:
                raise SystemExit(f"{label}: {name} gives other output than {reference}")
        results.append(
            (label, {name: median_us(run, count, repeat) for name, run in candidates.items()})
        )
        timings = results[-1][1]
        shown = "  ".join(f"{name} {us:7.2f}" for name, us in timings.items())
        print(f"{label:<26} us/licence: {shown}", flush=True)

    # Hashing: salts, commitments, licence ids, document field members.
    plan = encoder_plan(BUSINESS.id, names, DEFAULT_SUITE)
    python_encode = encoder._python_encoder(DEFAULT_SUITE)
    step(
        "hash licences",
        {
            "C": lambda: _wrap.encode(rows, secrets, plan),
            "hashlib": lambda: python_encode(rows, secrets, plan),
        },
        "hashlib",
    )

    # Writing full documents: proofs and the document bytes.
    ids, members = _wrap.encode(rows, secrets, plan)
    tree = build_tree(ids, DEFAULT_SUITE)
    writer = encoder.FullDocumentWriter(
        BUSINESS, AnchorRef(1, REGISTRY, tree.root, ()), DEFAULT_SUITE
    )
    secret_list = [secrets[i * 16 : (i + 1) * 16] for i in range(count)]
    head, anchor = writer._head, writer._anchor

    def python_documents() -> list[bytes]:
        return [
            writer.write(text, secret, proof)
            for text, secret, proof in zip(
                members, secret_list, encoder.proof_texts(tree.levels), strict=True
            )
        ]

    def orjson_documents() -> list[bytes]:
        # The documents as objects written by orjson (same bytes as json.dumps compact).
        field_rows = [{n: row[n] for n in names if n in row} for row in rows]
        root = "0x" + tree.root.hex()
        return [
            orjson.dumps(
                {
                    "format": "elicence/1",
                    "hashSuite": DEFAULT_SUITE,
                    "type": BUSINESS.id,
                    "fields": fields,
                    "secret": "0x" + secret.hex(),
                    "anchor": {
                        "chainId": 1,
                        "registry": REGISTRY,
                        "root": root,
                        "proof": ["0x" + node.hex() for node in tree.proof(at)],
                    },
                }
            )
            + b"\n"
            for at, (fields, secret) in enumerate(zip(field_rows, secret_list, strict=True))
        ]

    step(
        "write documents",
        {
            "C": lambda: _wrap.documents(head, members, secrets, anchor, tree.levels),
            "join": python_documents,
            "orjson": orjson_documents,
        },
        "join",
    )

    # Checking rows.
    check = validation.RowsCheck(BUSINESS)
    step(
        "check rows",
        {
            "C": lambda: _wrap.check(rows, check._plan),
            "python": lambda: [at for at, row in enumerate(rows) if field_problems(BUSINESS, row)],
        },
        "python",
    )

    # The input digest of a batch: in C until measured here at 1.8-2.9x orjson (0.7 against
    # 1.4-2.0 us), not clearly the 2x that keeps a step compiled; timed for the record.
    digest = InputDigest(BUSINESS, 1, REGISTRY)
    step(
        "input digest",
        {"orjson": lambda: digest.of(rows), "json.dumps": lambda: _definition_digest(rows)},
        "orjson",
    )

    # Reading a CSV part: splitting at record ends, then reading the plain rows.
    out = io.StringIO(newline="")
    writer_csv = csv.writer(out, lineterminator="\r\n")
    writer_csv.writerows([row[n] for n in names] for row in rows)
    data = out.getvalue().encode("utf-8")
    fields = tuple(names)
    step(
        "find record ends",
        {
            "C": lambda: _wrap.record_bounds(data, 0, 2000),
            "re": lambda: _python_only(spreadsheet.record_bounds, data, 0, 2000),
        },
        "re",
    )
    import polars
    import pyarrow.csv as arrow_csv

    arrow_read = arrow_csv.ReadOptions(column_names=list(fields))
    arrow_types = arrow_csv.ConvertOptions(
        column_types=dict.fromkeys(fields, "string"), strings_can_be_null=False
    )
    step(
        "read plain rows",
        {
            "str.split": lambda: _python_only(spreadsheet.plain_rows, data, 0, len(data), fields),
            "csv.reader": lambda: [
                dict(zip(fields, cells, strict=True))
                for cells in csv.reader(io.StringIO(data.decode("utf-8"), newline=""))
            ],
            "pyarrow": lambda: arrow_csv.read_csv(
                io.BytesIO(data), read_options=arrow_read, convert_options=arrow_types
            ).to_pylist(),
            "polars": lambda: polars.read_csv(
                io.BytesIO(data),
                has_header=False,
                new_columns=list(fields),
                schema_overrides=dict.fromkeys(fields, polars.String),
            ).to_dicts(),
        },
        "str.split",
    )

    results += file_steps(repeat)
    print_summary(results)


def file_steps(repeat: int) -> list[tuple[str, dict[str, float]]]:
    """Writing a batch's files into staging and renaming them into the output, alone and
    with another thread running Python, as in the issuing process (its parent plans and
    anchors while it publishes). 1,000 files of 1,400 bytes in /dev/shm (or the temp
    folder); µs a file."""
    count = 1_000
    names = [f"{n}.json" for n in range(count)]
    contents = [b"x" * 1_400] * count
    timings: dict[str, dict[str, list[float]]] = {}
    for contention in (False, True):
        for name, write, rename in (
            ("C", _wrap.write_files, _wrap.rename_files),
            (
                "os",
                _python_only_function(files.write_files),
                _python_only_function(files.rename_files),
            ),
        ):
            for _ in range(repeat):
                written, renamed = _time_files(write, rename, names, contents, contention)
                label = " with a busy thread" if contention else ""
                timings.setdefault(f"write files{label}", {}).setdefault(name, []).append(written)
                timings.setdefault(f"rename files{label}", {}).setdefault(name, []).append(renamed)
    found = []
    for label, by_name in timings.items():
        medians = {name: statistics.median(times) / count * 1e6 for name, times in by_name.items()}
        shown = "  ".join(f"{name} {us:9.2f}" for name, us in medians.items())
        print(f"{label:<36} us/file: {shown}", flush=True)
        found.append((label, medians))
    return found


def _time_files(
    write: Callable[..., None],
    rename: Callable[..., None],
    names: list[str],
    contents: list[bytes],
    contention: bool,
) -> tuple[float, float]:
    base = Path(tempfile.mkdtemp(dir="/dev/shm" if Path("/dev/shm").is_dir() else None))
    source, target = base / "staging", base / "out"
    source.mkdir()
    target.mkdir()
    source_fd = os.open(source, os.O_RDONLY | os.O_DIRECTORY)
    target_fd = os.open(target, os.O_RDONLY | os.O_DIRECTORY)
    stop = threading.Event()
    busy = threading.Thread(target=_spin, args=(stop,))
    if contention:
        busy.start()
    try:
        started = time.perf_counter()
        write(source_fd, names, contents, 0o600)
        written = time.perf_counter() - started
        started = time.perf_counter()
        rename(source_fd, target_fd, names)
        renamed = time.perf_counter() - started
    finally:
        stop.set()
        if contention:
            busy.join()
        os.close(source_fd)
        os.close(target_fd)
    if (target / names[-1]).read_bytes() != contents[-1]:
        raise SystemExit("files: other bytes were written")
    shutil.rmtree(base)
    return written, renamed


def _spin(stop: threading.Event) -> None:
    # Python that holds the GIL between its switch intervals, as planning and anchoring do.
    total = 0
    while not stop.is_set():
        for number in range(1_000):
            total += number * number


def _python_only_function(function: Callable[..., Any]) -> Callable[..., Any]:
    def call(*args: Any) -> Any:
        return _python_only(function, *args)

    return call


def _definition_digest(rows: list[dict[str, str]]) -> bytes:
    from issuer.checking import input_digest

    return input_digest(BUSINESS, 1, REGISTRY, rows)


def print_summary(results: list[tuple[str, dict[str, float]]]) -> None:
    """Each step's compiled time against the best of the others, and the speed-up."""
    print()
    print(f"{'step':<26} {'C':>8} {'best other':>18} {'C speed-up':>11}")
    for label, timings in results:
        others = {name: us for name, us in timings.items() if name != "C"}
        best = min(others, key=lambda name: others[name])
        if "C" not in timings:
            print(f"{label:<26} {'-':>8} {others[best]:9.2f} {best:>8} {'not in C':>11}")
            continue
        print(
            f"{label:<26} {timings['C']:8.2f} {others[best]:9.2f} {best:>8} "
            f"{others[best] / timings['C']:10.1f}x"
        )


def _python_only(function: Callable[..., Any], *args: Any) -> Any:
    # The module's function with the extension turned off for this call.
    with issuing_path("python"):
        return function(*args)


if __name__ == "__main__":
    main()
