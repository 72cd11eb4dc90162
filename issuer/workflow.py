"""The agency's workflow: validate and wrap a batch, anchor its root, write the documents.

The only module of the issuer package that calls out (to the chain and the disk).
Order matters: documents are written only after the anchoring transaction's receipt,
so no document ever names a root that was not anchored.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from eth_account.signers.local import LocalAccount

from issuer.batch import wrap_batch
from issuer.catalogue import LicenceType
from issuer.document import LicenceDocument
from issuer.errors import IssuingError
from issuer.files import write_atomically
from issuer.reasons import Reason
from ledger.errors import LedgerError
from ledger.registry import Registry

_SAFE_NAME = re.compile(r"[0-9A-Za-z][0-9A-Za-z._-]{0,100}")


@dataclass(frozen=True)
class IssuedBatch:
    """A batch anchored on chain and written to disk."""

    root: bytes
    tx_hash: str
    block_number: int
    documents: tuple[LicenceDocument, ...]
    paths: tuple[Path, ...]
    manifest: Path


def document_filename(document: LicenceDocument) -> str:
    """`<licence number>.json`, or the licence id when the number is not a safe file name."""
    number = document.fields.get("licenceNumber", "")
    stem = number if _SAFE_NAME.fullmatch(number) else "0x" + document.licence_id.hex()
    return f"{stem}.json"


def issue_batch(
    registry: Registry,
    agency: LocalAccount,
    licence_type: LicenceType,
    rows: Sequence[Mapping[str, str]],
    out_dir: Path,
) -> IssuedBatch:
    """Validate, wrap and anchor `rows` as one batch, then write a document per licence."""
    batch = wrap_batch(
        licence_type, rows, chain_id=registry.chain.chain_id, registry=registry.address
    )
    try:
        sent = registry.anchor(agency, batch.root, licence_type.code, len(batch.documents))
    except LedgerError as exc:
        raise IssuingError(f"the registry did not anchor the batch: {exc}") from exc
    paths = []
    for document in batch.documents:
        path = out_dir / document_filename(document)
        write_atomically(path, document.to_bytes())
        paths.append(path)
    manifest = out_dir / f"batch-{batch.root.hex()[:16]}.json"
    write_atomically(
        manifest,
        json.dumps(
            {
                "root": "0x" + batch.root.hex(),
                "licenceType": licence_type.id,
                "count": len(batch.documents),
                "chainId": registry.chain.chain_id,
                "registry": registry.address,
                "transaction": sent.tx_hash,
                "block": sent.block_number,
                "licences": [
                    {
                        "licenceNumber": d.fields.get("licenceNumber"),
                        "licenceId": "0x" + d.licence_id.hex(),
                        "file": p.name,
                    }
                    for d, p in zip(batch.documents, paths, strict=True)
                ],
            },
            ensure_ascii=False,
            indent=2,
        ).encode("utf-8"),
    )
    return IssuedBatch(
        batch.root, sent.tx_hash, sent.block_number, batch.documents, tuple(paths), manifest
    )


def revoke(
    registry: Registry, agency: LocalAccount, document: LicenceDocument, reason: Reason
) -> str:
    """Revoke one licence (吊销, final); returns the transaction hash."""
    sent = registry.revoke(agency, document.anchor.root, document.licence_id, int(reason))
    return sent.tx_hash
