"""Each step of issuing that issuer/_wrap.c can do, timed in C and by its Python path.

The extension is kept only for the steps where it is at least 2x faster than the best
well-kept library for that step (issue 16). For each step this prints the median time
per licence of: the compiled function, the Python path issuing uses without it, and,
where one exists, another library that does the job (pyarrow's and polars' CSV readers
for reading rows, orjson for writing documents). Every candidate's output is checked
against the Python path's before it is timed, so a fast wrong answer cannot win.

Steps that were in C until measured here to gain less than 2x (reading plain CSV rows,
writing and renaming a batch's files: docs/architecture.md) are no longer compiled; the
CSV step still compares the libraries for it.

Usage: scripts/bench_compiled [--count 20000] [--repeat 7]
"""

from __future__ import annotations

import argparse
import csv
import io
import os
import statistics
import time
from collections.abc import Callable
from typing import Any

import orjson

from issuer import _wrap, encoder, spreadsheet, validation
from issuer.checking import InputDigest
from licence.catalogue import catalogue
from licence.digest import DEFAULT_SUITE, encoder_plan
from licence.document import AnchorRef
from licence.fields import field_problems
from licence.merkle import build_tree
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

    # The input digest of a batch.
    digest = InputDigest(BUSINESS, 1, REGISTRY)
    step(
        "input digest",
        {
            "C": lambda: _wrap.input_digest(rows, names, digest._head),
            "orjson": lambda: digest._text_digest(rows),
        },
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

    print_summary(results)


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
    saved = os.environ.get("ELICENCE_PURE_PYTHON")
    from issuer import compiled

    os.environ["ELICENCE_PURE_PYTHON"] = "1"
    compiled.available.cache_clear()
    try:
        return function(*args)
    finally:
        if saved is None:
            del os.environ["ELICENCE_PURE_PYTHON"]
        else:
            os.environ["ELICENCE_PURE_PYTHON"] = saved
        compiled.available.cache_clear()


if __name__ == "__main__":
    main()
