"""Sizes for the capacity table of docs/deployment.md: bytes of the verifier's index per
anchored batch and per licence status change (a registry on anvil, synced by
ledger.index), and bytes per audit row (verifier.service.audit on SQLite).

    python scripts/capacity.py [--batches 2000] [--statuses 100000] [--audit-rows 200000]

Prints a Markdown table; the figures go to docs/benchmarks.md by hand.
"""

from __future__ import annotations

import argparse
import os
import secrets
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from eth_account import Account  # noqa: E402

from ledger import Registry, connect  # noqa: E402
from ledger.index import RegistryIndex  # noqa: E402
from licence.catalogue import catalogue  # noqa: E402
from licence.statuses import LeafStatus  # noqa: E402
from tests.conftest import ANVIL, ANVIL_FAUCET_KEY, free_port  # noqa: E402
from verifier.service.audit import AuditLog, AuditRecord, now  # noqa: E402

LEAVES_PER_TX = 500


def _size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.parent.glob(path.name + "*"))


def index_sizes(batches: int, statuses: int, folder: Path) -> tuple[int, int, float]:
    """(bytes with anchors only, bytes with the status changes too, sync seconds)."""
    port = free_port()
    anvil = subprocess.Popen(
        [
            str(ANVIL),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--silent",
            "--gas-limit",
            "100000000",
        ],
    )
    try:
        url = f"http://127.0.0.1:{port}"
        for _ in range(100):
            try:
                urllib.request.urlopen(url, timeout=1)
            except OSError as exc:
                if "Connection refused" not in str(exc):
                    break
                time.sleep(0.1)
        chain = connect(url, faucet_key=ANVIL_FAUCET_KEY)
        governor = Account.from_key(ANVIL_FAUCET_KEY)
        agency = Account.create()
        chain.fund(agency.address, 10**21)
        registry = Registry.deploy(chain, governor)
        registry.publish_licence_types(governor, [catalogue().by_code(1)])
        registry.register_agency(
            governor, "914403001922038216", "深圳市市场监督管理局", agency.address, [1]
        )
        roots = [secrets.token_bytes(16) for _ in range(batches)]
        for root in roots:
            registry.anchor(agency, root, 1, 1000)
        path = folder / "index.sqlite"
        index = RegistryIndex(path, registry)
        index.sync()
        index.close()  # the last connection's close folds the WAL into the file
        anchors_only = _size(path)
        index = RegistryIndex(path, registry)
        sent = 0
        while sent < statuses:
            leaves = [secrets.token_bytes(16) for _ in range(min(LEAVES_PER_TX, statuses - sent))]
            registry.set_statuses(agency, roots[sent % batches], leaves, LeafStatus.REVOKED, 1)
            sent += len(leaves)
        started = time.perf_counter()
        index.sync()
        seconds = time.perf_counter() - started
        index.close()
        return anchors_only, _size(path), seconds
    finally:
        anvil.terminate()
        anvil.wait(timeout=30)


def audit_size(rows: int, folder: Path) -> int:
    """Bytes of an audit log holding `rows` typical records (with its indexes)."""
    path = folder / "audit.sqlite"
    log = AuditLog(path)
    group = 1000
    for start in range(0, rows, group):
        records = [
            AuditRecord(
                now(),
                "guangzhou-approvals",
                f"GZ-2026-{start + i:08d}",
                "0x" + secrets.token_hex(16),
                "business-licence",
                "VALID",
                1_234_567,
                "single",
            )
            for i in range(min(group, rows - start))
        ]
        errors = log.record_groups([records])
        assert errors == [None], errors
    log.close()
    return _size(path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=2000)
    parser.add_argument("--statuses", type=int, default=100_000)
    parser.add_argument("--audit-rows", type=int, default=200_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        os.umask(0o077)
        anchors, total, seconds = index_sizes(args.batches, args.statuses, Path(folder))
        audit = audit_size(args.audit_rows, Path(folder))
    per_anchor = anchors / args.batches
    per_status = (total - anchors) / args.statuses
    rows = [
        (
            f"index, {args.batches} anchored batches",
            f"{anchors:,} bytes ({per_anchor:,.0f} a batch)",
        ),
        (
            f"index, + {args.statuses:,} status changes",
            f"{total:,} bytes ({per_status:,.0f} a change)",
        ),
        ("index sync of the changes", f"{seconds:.1f} s ({args.statuses / seconds:,.0f}/s)"),
        (
            f"audit log, {args.audit_rows:,} rows",
            f"{audit:,} bytes ({audit / args.audit_rows:,.0f} a row)",
        ),
    ]
    print("| measure | value |")
    print("|---|---|")
    for measure, value in rows:
        print(f"| {measure} | {value} |")


if __name__ == "__main__":
    main()
