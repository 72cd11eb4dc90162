"""Status changes after issuing: revoke, suspend, reinstate, cancel and supersede licences.

Licences are named by number or licence id (the agency's records find their batch
root); one transaction per batch root. A re-run after a crash sends nothing the chain
already shows, and brings the records in step with the chain either way.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from eth_account.signers.local import LocalAccount

from issuer.agency import AgencyContext
from issuer.errors import IssuingError
from issuer.records import LicenceRecord, Records, RecordsError
from ledger.chain import Sent
from ledger.errors import RegistryRejected
from ledger.registry import LeafState, Registry
from licence.document import LicenceDocument
from licence.reasons import Reason
from licence.statuses import LeafStatus


def revoke(
    registry: Registry, agency: LocalAccount, document: LicenceDocument, reason: Reason
) -> str:
    """Revoke one licence (吊销, final); returns the transaction hash."""
    sent = registry.revoke(agency, document.anchor.root, document.licence_id, int(reason))
    return sent.tx_hash


# The one-licence registry call for each status (a bulk change uses setStatuses).
_SINGLE: dict[LeafStatus, str] = {
    LeafStatus.REVOKED: "revoke",
    LeafStatus.SUSPENDED: "suspend",
    LeafStatus.ACTIVE: "reinstate",
    LeafStatus.CANCELLED: "cancel",
}


@dataclass(frozen=True)
class StatusChange:
    """One transaction that changed the status of licences under one root."""

    root: bytes
    numbers: tuple[str, ...]
    tx_hash: str | None  # None: the chain already showed the status (an earlier run's)


def resolve(records: Records, reference: str) -> LicenceRecord:
    """The one licence a number or licence id names in this agency's records."""
    found = records.find(reference)
    if not found:
        raise RecordsError(
            f"{reference}: no licence with this number or licence id in this agency's records"
        )
    if len(found) > 1:
        kinds = ", ".join(r.licence_type for r in found)
        raise RecordsError(
            f"{reference}: {len(found)} licences have this number ({kinds}); give the licence id"
        )
    return found[0]


def change_status(
    agency: AgencyContext,
    references: Sequence[str],
    status: LeafStatus,
    reason: Reason,
) -> list[StatusChange]:
    """Give every referenced licence `status`: one transaction per batch root.

    Licences whose status on chain already is `status` are not sent again (a re-run after
    a crash); the records are brought in step with the chain either way.
    """
    registry, records = agency.registry, agency.records
    if status is LeafStatus.SUPERSEDED:
        raise IssuingError("a supersession names a successor: use supersede()")
    licences = [resolve(records, r) for r in dict.fromkeys(references)]
    by_root: dict[bytes, list[LicenceRecord]] = {}
    for licence in licences:
        by_root.setdefault(licence.root, []).append(licence)
    changes: list[StatusChange] = []
    for root, group in by_root.items():
        try:
            pending = [
                lic for lic in group if _differs(registry.status_of(root, lic.licence_id), status)
            ]
            sent: Sent | None = None
            if len(pending) == 1:
                call = getattr(registry, _SINGLE[status])
                sent = call(agency.key, root, pending[0].licence_id, int(reason))
            elif pending:
                leaves = [lic.licence_id for lic in pending]
                sent = registry.set_statuses(agency.key, root, leaves, status, int(reason))
        except RegistryRejected as exc:
            raise StatusRefused(exc, {lic.licence_id: lic.number for lic in group}) from exc
        tx_hash = sent.tx_hash if sent is not None else None
        records.set_status(
            [lic.licence_id for lic in group],
            status.name,
            int(reason),
            None,
            tx_hash=tx_hash,
            block=sent.block_number if sent is not None else None,
        )
        changes.append(StatusChange(root, tuple(lic.number for lic in group), tx_hash))
    return changes


def _differs(state: LeafState, status: LeafStatus) -> bool:
    # A batch revoked as a whole reads as revoked, but its licences' own statuses are
    # not: the revocation would not follow them into another batch, so send it anyway.
    return state.status is not status or state.batch_revoked


def supersede(
    agency: AgencyContext,
    old: str,
    new: str,
    reason: Reason,
) -> StatusChange:
    """Mark licence `old` as superseded by licence `new` (numbers or licence ids)."""
    registry, records = agency.registry, agency.records
    before = resolve(records, old)
    after = resolve(records, new)
    if after.licence_id == before.licence_id:
        raise IssuingError(f"{old}: a licence cannot supersede itself")
    names = {before.licence_id: before.number, after.licence_id: after.number}
    try:
        state = registry.status_of(before.root, before.licence_id)
        sent: Sent | None = None
        if state.status is not LeafStatus.SUPERSEDED:
            sent = registry.supersede(
                agency.key, before.root, before.licence_id, after.licence_id, int(reason)
            )
    except RegistryRejected as exc:
        raise StatusRefused(exc, names) from exc
    tx_hash = sent.tx_hash if sent is not None else None
    records.set_status(
        [before.licence_id],
        LeafStatus.SUPERSEDED.name,
        int(reason),
        after.licence_id,
        tx_hash=tx_hash,
        block=sent.block_number if sent is not None else None,
    )
    return StatusChange(before.root, (before.number,), tx_hash)


class StatusRefused(IssuingError):
    """The registry refused a status change; `rejection` says why, `numbers` names leaves."""

    def __init__(self, rejection: RegistryRejected, numbers: Mapping[bytes, str]) -> None:
        self.rejection = rejection
        self.numbers = dict(numbers)
        super().__init__(str(rejection))
