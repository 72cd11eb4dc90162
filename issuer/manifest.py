"""The manifest of a batch: `batch-<root>.json` beside its documents.

It names the batch's root, licence type, chain, registry, anchoring transaction and
block, the agency's SM2 seal of the root (`seal`, when the batch is sealed), and each
licence's number, licence id and file. Written last when a batch is
published (issuer.publishing); `load_batch` reads a batch back from it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from licence.document import LicenceDocument, loads_document


def manifest_name(root: bytes) -> str:
    """`batch-<first 16 hex digits of the root>.json`."""
    return f"batch-{root.hex()[:16]}.json"


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


@dataclass(frozen=True)
class IssuedBatch:
    """A batch anchored on chain and written to disk."""

    root: bytes
    tx_hash: str
    block_number: int
    documents: tuple[LicenceDocument, ...]
    paths: tuple[Path, ...]
    manifest: Path
    seal: bytes | None = None


def load_batch(manifest: Path) -> IssuedBatch:
    """The batch a manifest describes, its documents read from the files it names.

    DocumentError when a document does not parse; OSError when one is missing.
    """
    summary = json.loads(manifest.read_bytes())
    paths = tuple(manifest.parent / entry["file"] for entry in summary["licences"])
    return IssuedBatch(
        root=bytes.fromhex(summary["root"].removeprefix("0x")),
        tx_hash=summary["transaction"],
        block_number=summary["block"],
        documents=tuple(loads_document(path.read_bytes()) for path in paths),
        paths=paths,
        manifest=manifest,
        seal=bytes.fromhex(summary["seal"][2:]) if "seal" in summary else None,
    )
