"""Issuing, steps 3 and 4: planning a staged batch in the records, then anchoring its root.

A batch is recorded PLANNED (its root and every licence's secret, one SQLite
transaction) before its anchoring transaction is sent, and ANCHORED once it is mined.
A resumed batch is anchored only if the chain does not have its root already: an
earlier run's transaction may have landed after the run was killed. The agency's
authorisation for the licence type, that type version's publication with the very
definition the agency issues under (the same SHA-256), and its seal key, are checked
before any work: a batch hashed under a field list the registry does not record could
never be read the same way by a verifier.

Sealing: when the registry names a seal key for the agency at the block the batches will
be anchored in (the next block), every batch root is sealed with it (licence.seal), and
the home's keys/seal.json must hold that key; an agency with no registered seal key
issues unsealed batches. After anchoring, the key valid at the anchoring block is read
again, so that a rotation that took effect in between cannot publish a wrong seal.
"""

from __future__ import annotations

from dataclasses import dataclass, field
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
from licence import seal as sm2_seal
from licence.catalogue import LicenceType

_BATCH_ANCHORED = Web3.keccak(text="BatchAnchored(bytes16,uint32,uint16,uint16,uint32)")


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
    _check_published(registry, licence_type)
    return agency_id


def _check_published(registry: Registry, licence_type: LicenceType) -> None:
    """IssuingError unless the registry publishes this version of the type with the
    definition the agency holds."""
    named = f"{licence_type.name.zh} ({licence_type.id}) version {licence_type.version}"
    try:
        published = registry.licence_type(licence_type.code, licence_type.version)
    except LedgerError as exc:
        raise IssuingError(f"cannot read the registry: {exc}") from exc
    if published is None:
        raise IssuingError(
            f"{named} is not published in registry {registry.address}: the governor "
            "publishes it first (`elicence catalogue publish`); nothing was issued"
        )
    if published.definition_hash != licence_type.definition_hash:
        raise IssuingError(
            f"this installation's definition of {named} has SHA-256 "
            f"0x{licence_type.definition_hash.hex()}, but the registry published "
            f"0x{published.definition_hash.hex()} for code {licence_type.code} version "
            f"{licence_type.version}: verifiers would read these licences under another "
            "field list; use the published definition (`elicence catalogue show "
            f"{licence_type.id}`); nothing was issued"
        )


@dataclass(frozen=True)
class SealingKey:
    """The agency's seal key as issuing uses it: the private key of keys/seal.json, which
    is the registry's seal key number `number` for the agency."""

    private: bytes = field(repr=False)
    public: bytes
    number: int


def sealing_key(
    registry: Registry, agency_id: int, local: bytes | None, *, home_file: str = "keys/seal.json"
) -> SealingKey | None:
    """The key to seal this run's batches with, or None when the agency has no seal key
    for the next block (it issues unsealed, as before seals).

    Raises:
        IssuingError: the agency has a seal key there but `local` is missing or another
            key, or that key is reported compromised.
    """
    try:
        block = registry.chain.block_number() + 1  # the first block a batch can land in
        registered = registry.seal_key_at(agency_id, block)
    except LedgerError as exc:
        raise IssuingError(f"cannot read the agency's seal key from the registry: {exc}") from exc
    if registered is None:
        return None
    named = f"seal key {registered.number} (0x{registered.public_key.hex()})"
    if local is None:
        raise IssuingError(
            f"agency {agency_id} seals its batches with {named}, but this home has no SM2 "
            f"seal key ({home_file} is missing): put the agency's seal keystore there; "
            "nothing was issued"
        )
    public = sm2_seal.public_key(local)
    if public != registered.public_key:
        raise IssuingError(
            f"{home_file} holds the SM2 key 0x{public.hex()}, but agency {agency_id} seals "
            f"with {named} from block {registered.valid_from}: use the keystore of that "
            "key, or have the governor register this one; nothing was issued"
        )
    if registered.compromised_from is not None and block >= registered.compromised_from:
        raise IssuingError(
            f"agency {agency_id}'s {named} is reported compromised from block "
            f"{registered.compromised_from}: seals made with it do not count; the governor "
            "must register a new seal key (`elicence agency seal-key register`); nothing was "
            "issued"
        )
    return SealingKey(local, public, registered.number)


def _check_sealed_at(
    registry: Registry, agency_id: int, block: int, staged: Staged, sealing: SealingKey | None
) -> None:
    # The key valid at the anchoring block decides; it can differ from the one this run
    # sealed with only if a rotation took effect between the check and the anchor.
    try:
        key = registry.seal_key_at(agency_id, block)
    except LedgerError as exc:
        raise IssuingError(f"cannot read the agency's seal key from the registry: {exc}") from exc
    expected = None if key is None else key.public_key
    used = None if staged.seal is None or sealing is None else sealing.public
    if expected != used:
        wanted = "no seal" if key is None else f"a seal by seal key {key.number}"
        raise IssuingError(
            f"batch 0x{staged.root.hex()} was anchored in block {block}, where the agency's "
            f"batches carry {wanted}, but its documents were sealed otherwise; its files are "
            "kept unpublished: run the same input again with the seal key of that block"
        )


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
    sealing: SealingKey | None = None,
) -> Anchored:
    """Plan (if new) and anchor (if not yet on chain) one staged batch; then check that its
    seal (or none) is what the agency's seal key at the anchoring block asks for."""
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
    if record.block is not None:
        _check_sealed_at(agency.registry, agency_id, record.block, staged, sealing)
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
                sent = registry.anchor(
                    agency.key,
                    record.root,
                    licence_type.code,
                    record.count,
                    type_version=licence_type.version,
                )
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
