"""Issuing, step 2: wrapping a batch and staging its files.

A batch of checked rows is wrapped (issuer.batch) and its documents, and QR images and
their payload texts (.el1 files) unless left out, are written complete into the batch's
hidden staging folder in the output folder; nothing is visible there until issuer.publishing renames
them, after the batch is anchored. A `Job` says what to stage and is small enough to
send to a worker process (issuer.pool); a `Staged` batch is what comes back.

A job carries its licence type itself, the version the run resolved and checked (maybe
one loaded from the registry, which a worker's catalogue need not hold), not its id: a
worker that looked the id up again could stage another version than the one anchored.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import cast

from issuer.batch import encode_batch, wrap_batch
from issuer.files import PRIVATE, write_files
from issuer.qr import qr_png_bytes
from issuer.records import PlannedLicences
from ledger.private import private_folder
from licence import seal as sm2_seal
from licence.catalogue import LicenceType
from licence.digest import DEFAULT_SUITE
from licence.payload import encode_payload

_SAFE_NAME = re.compile(r"[0-9A-Za-z][0-9A-Za-z._-]{0,100}")


def _filename(number: str, licence_id: bytes) -> str:
    # `<licence number>.json`, or the licence id when the number is not a safe file name.
    stem = number if _SAFE_NAME.fullmatch(number) else "0x" + licence_id.hex()
    return f"{stem}.json"


@dataclass(frozen=True)
class Job:
    """A batch of checked rows to wrap and stage (picklable: it may run in a worker)."""

    index: int
    licence_type: LicenceType  # the version to stage under, never looked up again
    positions: list[int]  # the batch's rows, as indexes into the input's rows
    secrets: list[bytes] | None
    chain_id: int
    registry: str
    staging: str
    qr: bool
    suite: str = DEFAULT_SUITE
    # The agency's SM2 seal key (issuer.anchoring.sealing_key): the batch root is sealed
    # with it once the batch is wrapped. None: the agency does not seal (yet).
    seal_key: bytes | None = field(default=None, repr=False)


@dataclass(frozen=True)
class Staged:
    """A wrapped batch whose files wait, complete but hidden, in its staging folder.

    Column lists, not an object per licence: this is what a worker sends back, and
    pickling ten thousand small objects costs more than the lists.
    """

    index: int
    root: bytes
    licences: PlannedLicences
    files: list[str]
    seal: bytes | None = None  # the agency's seal of the root, in every document


def stage_batch(job: Job, fields: Sequence[Mapping[str, object]]) -> Staged:
    """Wrap one batch (`fields`: its checked rows) and write its files into its staging folder.

    Nothing here is visible in the output folder; files are published by rename only
    after the batch is anchored. No fsync per file: `publish` syncs once.
    """
    licence_type = job.licence_type
    rows = cast(Sequence[Mapping[str, str]], fields)  # checked: every value is text
    batch = encode_batch(
        licence_type,
        rows,
        chain_id=job.chain_id,
        registry=job.registry,
        secrets=job.secrets,
        suite=job.suite,
        sealer=_sealer(job),
    )
    numbers = [row["licenceNumber"] for row in rows]
    names = [_filename(n, i) for n, i in zip(numbers, batch.licence_ids, strict=True)]
    files = names
    private_folder(Path(job.staging))
    folder = os.open(job.staging, os.O_RDONLY | os.O_DIRECTORY)
    try:
        # O_TRUNC: a staging file left by a killed run is simply rewritten.
        write_files(folder, names, batch.documents, PRIVATE)
        if job.qr:
            files = _stage_images(
                job,
                licence_type,
                rows,
                secrets=batch.secrets,
                seal=batch.seal,
                names=names,
                folder=folder,
            )
    finally:
        os.close(folder)
    licences = PlannedLicences(
        numbers=numbers,
        licence_ids=batch.licence_ids,
        secrets=batch.secrets,
        holder_codes=[row.get("unifiedSocialCreditCode") for row in rows],
    )
    return Staged(job.index, batch.root, licences, files, batch.seal)


def _sealer(job: Job) -> Callable[[bytes], bytes] | None:
    key = job.seal_key
    if key is None:
        return None
    registry = bytes.fromhex(job.registry[2:])
    return lambda root: sm2_seal.seal_root(key, job.chain_id, registry, root)


def _stage_images(
    job: Job,
    licence_type: LicenceType,
    rows: Sequence[Mapping[str, str]],
    *,
    secrets: list[bytes],
    seal: bytes | None,
    names: list[str],
    folder: int,
) -> list[str]:
    # The QR payload is made from document objects; next to ~1 ms per image, wrapping
    # the batch a second time (same secrets, so the same documents) costs 1 %.
    documents = wrap_batch(
        licence_type,
        rows,
        chain_id=job.chain_id,
        registry=job.registry,
        secrets=secrets,
        suite=job.suite,
        # The seal made for the documents: SM2 seals are randomised, so sealing again
        # would give the QR codes another (equally valid) seal than the files.
        sealer=None if seal is None else lambda root: seal,
    ).documents
    stems = [name.removesuffix(".json") for name in names]
    payloads = [encode_payload(document) for document in documents]
    pngs = [qr_png_bytes(payload) for payload in payloads]
    images, texts = [s + ".png" for s in stems], [s + ".el1" for s in stems]
    write_files(folder, images, pngs, PRIVATE)  # a QR holds the whole document
    # The QR's text too, for what takes text rather than an image (a message, the
    # service's {"qr": ...}): the same bytes as the image, with no scan to go wrong.
    write_files(folder, texts, [(payload + "\n").encode() for payload in payloads], PRIVATE)
    return [file for trio in zip(names, images, texts, strict=True) for file in trio]
