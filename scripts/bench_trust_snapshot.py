"""Size and time of a trust snapshot (verifier.trust_snapshot) for a large registry.

Builds a synthetic verifier index (ledger.index's tables, schema 3) with ROOTS anchored
roots and STATUSES changed licence statuses, then times what `elicence snapshot export`
does after syncing (read the index, sign, gzip, write) and what `elicence verify
--snapshot` does before its checks (read, check the signature, build the look-ups).
The chain calls of an export (one block, one hasRole) are left out: they cost
milliseconds.

    python scripts/bench_trust_snapshot.py --roots 10000 --statuses 1000000
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import os
import sqlite3
import tempfile
import time
from pathlib import Path

import orjson
from eth_account import Account
from eth_account.messages import encode_defunct

from ledger.index import _TABLES, SCHEMA_VERSION
from verifier import trust_snapshot as ts


def build_index(path: Path, roots: int, statuses: int) -> None:
    """A synthetic index: two agencies, `roots` anchors, `statuses` revoked leaves."""
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
            "INSERT INTO agencies VALUES (?, ?, ?, 0, ?, ?, 1)",
            (agency, "0x" + f"{agency:040x}", 0b110, f"9111010855138508{agency}Q", f"机关{agency}"),
        )
    db.executemany(
        "INSERT INTO anchors VALUES (?, ?, 1, 10000, ?, ?, 1, ?)",
        (
            (os.urandom(16), 1 + i % 2, i + 1, 1_760_000_000 + i, "0x" + "00" * 32)
            for i in range(roots)
        ),
    )
    db.executemany(
        "INSERT INTO leaves VALUES (?, ?, 2, 1, ?, NULL)",
        ((1 + i % 2, os.urandom(16), 100 + i // 1000) for i in range(statuses)),
    )
    db.commit()
    db.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--roots", type=int, default=10_000)
    parser.add_argument("--statuses", type=int, default=1_000_000)
    args = parser.parse_args()
    governor = Account.create()
    with tempfile.TemporaryDirectory() as folder:
        index, out = Path(folder) / "index.sqlite", Path(folder) / "trust.snapshot"
        build_index(index, args.roots, args.statuses)
        started = time.perf_counter()
        body = ts.read_index(index)
        read = time.perf_counter()
        body.update(blockTime=1_760_000_000, governor=governor.address)
        digest = hashlib.sha256(ts._canonical(body)).hexdigest()
        signed = governor.sign_message(encode_defunct(text=ts._message(body, digest)))
        document = {
            "format": ts.FORMAT,
            "body": body,
            "signatures": {
                "governor": {
                    "address": governor.address,
                    "signature": "0x" + signed.signature.hex(),
                },
                "sm2": None,
            },
        }
        raw = orjson.dumps(document)
        out.write_bytes(gzip.compress(raw, compresslevel=6, mtime=0))
        done = time.perf_counter()
        snapshot = ts.load_snapshot(out, governors=[governor.address])
        loaded = time.perf_counter()
        print(
            f"{args.roots:,} roots, {args.statuses:,} statuses: {out.stat().st_size:,} bytes "
            f"gzip ({len(raw):,} JSON); export {done - started:.2f} s (index read "
            f"{read - started:.2f} s); load and check {loaded - done:.2f} s; "
            f"{snapshot.counts()}"
        )


if __name__ == "__main__":
    main()
