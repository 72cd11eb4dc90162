"""Issuing, steps 3 and 4: planning a staged batch in the records, then anchoring its root.

A batch is recorded PLANNED (its root and every licence's secret, one SQLite
transaction) before its anchoring transaction is sent, and ANCHORED once it is mined.
A resumed batch is anchored only if the chain does not have its root already: an
earlier run's transaction may have landed after the run was killed. The agency's
authorisation for the licence type is checked before any work.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import cast

from eth_account.signers.local import LocalAccount
from web3 import Web3
from web3.types import FilterParams

from issuer.agency import AgencyContext
from issuer.errors import IssuingError
from issuer.faults import fault_point
from issuer.records import BatchRecord, BatchState
from issuer.staging import Staged
from ledger.chain import translate_errors
from ledger.errors import LedgerError, RegistryRejected
from ledger.registry import Registry
from licence.catalogue import LicenceType

_BATCH_ANCHORED = Web3.keccak(text="BatchAnchored(bytes16,uint32,uint8,uint32)")


def authorised_agency(registry: Registry, agency: LocalAccount, licence_type: LicenceType) -> int:
    # Checked before any work, so that an agency learns in a second, not after wrapping
    # a hundred thousand licences, that it may not issue them.
    try:
        agency_id = registry.agency_id_of(agency.address)
        if agency_id is None:
            raise IssuingError(
                f"the key {agency.address} is not the signing key of any agency in registry "
                f"{registry.address}: the governor must first run `elicence agency authorise`"
            )
        record = registry.agency(agency_id)
    except LedgerError as exc:
        raise IssuingError(f"cannot read the registry: {exc}") from exc
    if record.retired:
        raise IssuingError(f"agency {agency_id} ({record.name}) is retired and can issue nothing")
    if licence_type.code not in record.licence_types:
        raise IssuingError(
            f"agency {agency_id} ({record.name}) is not authorised to issue "
            f"{licence_type.name.zh} ({licence_type.id}); the governor can add it with "
            f"`elicence agency types`"
        )
    return agency_id


@dataclass(frozen=True)
class Anchored:
    """A batch planned and anchored, not yet published."""

    record: BatchRecord
    resumed: BatchState | None
    anchored_now: bool


def plan_and_anchor(
    agency: AgencyContext,
    licence_type: LicenceType,
    staged: Staged,
    *,
    agency_id: int,
    digest: bytes,
    record: BatchRecord | None,
    out_dir: Path,
) -> Anchored:
    """Plan (if new) and anchor (if not yet on chain) one staged batch."""
    registry, records = agency.registry, agency.records
    resumed = record.state if record is not None else None
    if record is None:
        record = records.plan(
            digest=digest,
            licence_type=licence_type.id,
            chain_id=registry.chain.chain_id,
            registry=registry.address,
            root=staged.root,
            licences=staged.licences,
            out_dir=str(out_dir),
        )
        fault_point("after-plan")
    elif record.root != staged.root:
        raise IssuingError(
            f"batch {record.id} re-wrapped to root 0x{staged.root.hex()}, not the recorded "
            f"0x{record.root.hex()}: the records do not belong to this input"
        )
    anchored_now = False
    if record.state is BatchState.PLANNED:
        tx_hash, block, anchored_now = _anchor(
            agency, agency_id, licence_type, record, planned_now=resumed is None
        )
        records.mark_anchored(record.id, tx_hash, block)
        record = records.batch(record.id)
    return Anchored(record, resumed, anchored_now)


def _anchor(
    agency: AgencyContext,
    agency_id: int,
    licence_type: LicenceType,
    record: BatchRecord,
    *,
    planned_now: bool,
) -> tuple[str, int, bool]:
    """The batch's anchoring transaction: an earlier run's if it landed, else a new one."""
    registry = agency.registry
    try:
        # A batch planned by this run has fresh secrets, so no earlier run can have
        # anchored its root: no need to ask the chain (a call per batch).
        found = None if planned_now else registry.anchor_of(record.root)
        if found is None:
            try:
                sent = registry.anchor(agency.key, record.root, licence_type.code, record.count)
            except RegistryRejected as exc:
                # An earlier run's transaction may have been mined meanwhile.
                if exc.error_name != "LicenceRegistryAlreadyAnchored":
                    raise
                found = registry.anchor_of(record.root)
            else:
                fault_point("after-send")
                return sent.tx_hash, sent.block_number, True
        if found is None or found.agency_id != agency_id:
            raise IssuingError(
                f"root 0x{record.root.hex()} is anchored by another agency; nothing was issued"
            )
        return anchoring_tx(registry, record.root, found.block_number), found.block_number, False
    except LedgerError as exc:
        raise IssuingError(f"the registry did not anchor the batch: {exc}") from exc


def anchoring_tx(registry: Registry, root: bytes, block: int) -> str:
    # The anchor records the block; the transaction is found from the BatchAnchored log
    # of that root in that block.
    topic = "0x" + root.hex() + "00" * (32 - len(root))
    with translate_errors():
        logs = registry.chain.w3.eth.get_logs(
            cast(
                FilterParams,
                {
                    "address": registry.address,
                    "fromBlock": block,
                    "toBlock": block,
                    "topics": [_BATCH_ANCHORED.to_0x_hex(), topic],
                },
            )
        )
    if not logs:
        raise IssuingError(f"no BatchAnchored log for 0x{root.hex()} in block {block}")
    return str(logs[0]["transactionHash"].to_0x_hex())
