"""Size and time of a trust snapshot (verifier.trust_snapshot) for a large registry.

Builds a synthetic verifier index (ledger.index's tables) with ROOTS anchored roots and
STATUSES changed licence statuses, and the shipped catalogue's licence types published
(every definition, as the registry's events carry them; --no-types leaves them out, to
measure what they add), then times what `elicence snapshot export`
does after syncing (read the index, sign with the chain key and the SM2 key, gzip,
write) and what `elicence verify --snapshot` does before its checks (read, check both
signatures, build the look-ups), each in a fresh interpreter whose peak resident memory
(ru_maxrss) is reported with it. The chain calls of an export (one block, one hasRole)
are left out: they cost milliseconds.

    python scripts/bench_trust_snapshot.py --roots 10000 --statuses 1000000 [--no-types]
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import resource
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import orjson
from eth_account import Account

from ledger.index import _TABLES, SCHEMA_VERSION
from licence import seal
from licence.catalogue import catalogue
from verifier import trust_snapshot as ts


def build_index(path: Path, roots: int, statuses: int, types: bool = True) -> None:
    """A synthetic index: two agencies, `roots` anchors, `statuses` revoked leaves, and
    (`types`) every shipped licence type published."""
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT)")
    for table, columns in _TABLES.items():
        db.execute(f"CREATE TABLE {table} {columns}")
    meta = {
        "schema": SCHEMA_VERSION,
        "chain_id": 31337,
        "synced_block": roots + 10,
        "start_block": 0,
        "registry": "0x" + "11" * 20,
    }
    db.executemany("INSERT INTO meta VALUES (?, ?)", [(k, str(v)) for k, v in meta.items()])
    db.execute("INSERT INTO block_hashes VALUES (?, ?)", (roots + 10, "0x" + "ab" * 32))
    for agency in (1, 2):
        db.execute(
            "INSERT INTO agencies (id, signer, licence_types, retired, code, name, key_number) "
            "VALUES (?, ?, ?, 0, ?, ?, 1)",
            (
                agency,
                "0x" + f"{agency:040x}",
                "[1,2]",
                f"9111010855138508{agency}Q",
                f"机关{agency}",
            ),
        )
    db.executemany(
        "INSERT INTO anchors (root, agency_id, licence_type, count, block_number, timestamp, "
        "key_number, tx_hash, type_version) VALUES (?, ?, 1, 10000, ?, ?, 1, ?, 1)",
        (
            (os.urandom(16), 1 + i % 2, i + 1, 1_760_000_000 + i, "0x" + "00" * 32)
            for i in range(roots)
        ),
    )
    if types:
        db.executemany(
            "INSERT INTO licence_types (code, version, definition_hash, definition, "
            "block_number) VALUES (?, ?, ?, ?, 1)",
            ((t.code, t.version, t.definition_hash, t.definition) for t in catalogue()),
        )
    db.executemany(
        "INSERT INTO leaves VALUES (?, ?, 2, 1, ?, NULL)",
        ((1 + i % 2, os.urandom(16), 100 + i // 1000) for i in range(statuses)),
    )
    db.commit()
    db.close()


def export_phase(index: Path, out: Path) -> dict[str, float]:
    """What `elicence snapshot export` does after its sync, with ledger-free stand-ins
    for the two chain calls: read the index, sign with both keys, gzip, write."""
    governor = Account.create()
    sm2 = seal.new_private_key()
    cpu = _cpu()
    started = time.perf_counter()
    body = ts.read_index(index)
    read = time.perf_counter()
    body.update(blockTime=1_760_000_000, governor=governor.address)
    digest = ts.body_digest(body)
    document = {
        "format": ts.FORMAT,
        "body": body,
        "signatures": ts.sign_body(body, digest, governor, sm2),
    }
    ts._write_atomically(out, document)
    done = time.perf_counter()
    Path(f"{out}.keys").write_text(
        json.dumps({"governor": governor.address, "sm2": seal.public_key(sm2).hex()})
    )
    return {"seconds": done - started, "read_seconds": read - started, "cpu_seconds": _cpu() - cpu}


def load_phase(out: Path) -> dict[str, float]:
    """What `elicence verify --snapshot` does before its checks: read, check both
    signatures, build the look-ups; then one look-up per changed status, compared with
    the file (the verdicts' input is unchanged)."""
    keys = json.loads(Path(f"{out}.keys").read_text())
    cpu = _cpu()
    started = time.perf_counter()
    snapshot = ts.load_snapshot(
        out, governors=[keys["governor"]], governor_seal_key=bytes.fromhex(keys["sm2"])
    )
    loaded = time.perf_counter()
    cpu = _cpu() - cpu
    peak = _peak_mib()
    # Reading the definitions as licence types is done on first use, not at load.
    parsing = time.perf_counter()
    types = len(snapshot.licence_types())
    parsed = time.perf_counter() - parsing
    rows = orjson.loads(gzip.decompress(out.read_bytes()))["body"]["statuses"]
    lookups = time.perf_counter()
    for agency_id, leaf, status, reason, block, _ in rows[:: max(1, len(rows) // 100_000)]:
        state = snapshot.leaves.get(agency_id, bytes.fromhex(leaf))
        assert state is not None and (state.status, state.reason) == (status, reason)
        assert state.changed_at_block == block
    looked = time.perf_counter() - lookups
    return {
        "seconds": loaded - started,
        "cpu_seconds": cpu,
        "peak_mib": peak,
        "statuses": snapshot.counts()["statuses"],
        "lookup_us": looked / min(len(rows), 100_000) * 1e6 if rows else 0.0,
        "types": types,
        "types_ms": parsed * 1000,
    }


def _cpu() -> float:
    # CPU seconds of this process: steadier than the wall clock on a shared machine.
    used = resource.getrusage(resource.RUSAGE_SELF)
    return used.ru_utime + used.ru_stime


def _peak_mib() -> float:
    # ru_maxrss is in KiB on Linux: the process's peak resident set so far.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _phase(*args: str) -> dict[str, float]:
    """Run one phase in a fresh interpreter, so its peak memory is its own."""
    done = subprocess.run(
        [sys.executable, __file__, "--phase", *args], check=True, capture_output=True, text=True
    )
    result: dict[str, float] = json.loads(done.stdout.splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--roots", type=int, default=10_000)
    parser.add_argument("--statuses", type=int, default=1_000_000)
    parser.add_argument("--no-types", action="store_true", help="publish no licence type")
    parser.add_argument("--phase", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.phase:
        name, *paths = args.phase
        baseline = _peak_mib()
        if name == "export":
            result = export_phase(Path(paths[0]), Path(paths[1]))
        else:
            result = load_phase(Path(paths[0]))
        result.setdefault("peak_mib", _peak_mib())
        result["baseline_mib"] = baseline
        print(json.dumps(result))
        return
    with tempfile.TemporaryDirectory() as folder:
        index, out = Path(folder) / "index.sqlite", Path(folder) / "trust.snapshot"
        build_index(index, args.roots, args.statuses, types=not args.no_types)
        exported = _phase("export", str(index), str(out))
        loaded = _phase("load", str(out))
        size = out.stat().st_size
        raw = len(gzip.decompress(out.read_bytes()))
        published = "no licence types" if args.no_types else f"{len(catalogue())} licence types"
        print(
            f"{args.roots:,} roots, {args.statuses:,} statuses, {published}: {size:,} bytes gzip "
            f"({raw:,} JSON); export {exported['seconds']:.2f} s, {exported['cpu_seconds']:.2f} "
            f"s CPU (index read {exported['read_seconds']:.2f} s), peak RSS "
            f"{exported['peak_mib']:.0f} MiB; load and check {loaded['seconds']:.2f} s, "
            f"{loaded['cpu_seconds']:.2f} s CPU, peak RSS {loaded['peak_mib']:.0f} MiB "
            f"(of which {loaded['baseline_mib']:.0f} MiB the interpreter and imports); "
            f"a status look-up {loaded['lookup_us']:.1f} us; reading its {loaded['types']:.0f} "
            f"definitions as licence types (on first use) {loaded['types_ms']:.1f} ms"
        )


if __name__ == "__main__":
    main()
