"""Issuing, step 5: publishing an anchored batch's staged files into the output folder.

One sync for the whole batch, then one rename per file, then the manifest, then a sync
of the folder: a crash leaves only complete files in the output folder, and never a
document whose root is not anchored (this runs only after the anchoring receipt).
"""

from __future__ import annotations

import os
from pathlib import Path

from issuer.faults import fault_point
from issuer.files import rename_files, write_atomically
from issuer.manifest import manifest_bytes, manifest_name
from issuer.records import BatchRecord
from issuer.staging import Staged
from ledger.registry import Registry
from licence.catalogue import LicenceType


def publish(
    registry: Registry,
    licence_type: LicenceType,
    record: BatchRecord,
    staged: Staged,
    *,
    staging: Path,
    out_dir: Path,
) -> Path:
    """Move the staged files into `out_dir` (one rename each), then write the manifest."""
    # One sync for the whole batch instead of an fsync per file: after it, every staged
    # file is on disk, so no rename below can expose a file whose data a power cut loses.
    os.sync()
    halfway = len(staged.files) // 2
    source = os.open(staging, os.O_RDONLY | os.O_DIRECTORY)
    target = os.open(out_dir, os.O_RDONLY | os.O_DIRECTORY)
    try:
        rename_files(source, target, staged.files[:halfway])
        fault_point("mid-write")
        rename_files(source, target, staged.files[halfway:])
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
    if staged.seal is not None:
        summary["seal"] = "0x" + staged.seal.hex()
    entries = zip(
        licences.numbers,
        ["0x" + licence_id.hex() for licence_id in licences.licence_ids],
        [f for f in staged.files if f.endswith(".json")],
        strict=True,
    )
    write_atomically(manifest, manifest_bytes(summary, list(entries)))
    _fsync_folder(out_dir)
    return manifest


def _fsync_folder(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
