"""Python binding of the LicenceRegistry contract.

Bytes in, bytes out: roots, leaves, successors and proof nodes are 16-byte ``bytes``
(:data:`DIGEST_BYTES`: SHA-256 truncated to its first 16 bytes, the contract's
``bytes16``); addresses come back checksummed. Writes take the sending account (a
``LocalAccount``) and return :class:`~ledger.chain.Sent`; a revert raises
:class:`~ledger.errors.RegistryRejected` naming the contract's custom error and its
arguments. Reads return frozen dataclasses.

Licence types are published on the registry (code and version, uint16 each; the
SHA-256 of the definition's canonical bytes), and agencies are authorised per type. The
definitions themselves live only in the ``LicenceTypePublished`` logs, read back with one
``eth_getLogs`` and checked against the hash they carry.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from eth_abi.abi import decode as abi_decode
from eth_account.signers.local import LocalAccount
from eth_typing import ChecksumAddress, HexStr
from web3 import Web3
from web3.contract import Contract

from contracts import load_artifact
from ledger.chain import Chain, Sent, translate_errors
from ledger.errors import (
    InvalidValue,
    RegistryNotFound,
    TransactionFailed,
    TypeDefinitionMismatch,
    TypePublishedOtherwise,
)
from licence.statuses import LeafStatus

if TYPE_CHECKING:
    from licence.catalogue import LicenceType

__all__ = [
    "DIGEST_BYTES",
    "MAX_DEFINITION_BYTES",
    "Agency",
    "Anchor",
    "LeafState",
    "PublishedType",
    "Registry",
]

DIGEST_BYTES = 16  # roots, leaves, successors, proof nodes: the contract's bytes16
MAX_DEFINITION_BYTES = 16_384  # the contract's bound on a published definition
_PUBLISHED_TOPIC = Web3.keccak(text="LicenceTypePublished(uint16,uint16,bytes32,bytes)")


@dataclass(frozen=True)
class Anchor:
    """An anchored batch: which agency (and which of its keys), which licence type and
    version, how many, when. ``key_number`` is 1 for the key the agency was registered
    with, +1 per rotation."""

    root: bytes
    agency_id: int
    licence_type: int
    count: int
    block_number: int
    timestamp: int
    key_number: int
    type_version: int = 1


@dataclass(frozen=True)
class PublishedType:
    """A published version of a licence type: the SHA-256 of its definition (the RFC
    8785 canonical JSON, ``licence.catalogue.LicenceType.definition``) and the block it
    was published in."""

    code: int
    version: int
    definition_hash: bytes
    block_number: int


@dataclass(frozen=True)
class Agency:
    """An issuing agency as the registry records it."""

    id: int
    signer: ChecksumAddress
    licence_types: frozenset[int]
    retired: bool
    code: str
    name: str


@dataclass(frozen=True)
class SealKey:
    """An agency's SM2 seal key (licence.seal) as the registry records it: the
    ``number``th (from 1), public key X || Y (64 bytes), sealing the batches the agency
    anchors from block ``valid_from`` until its next seal key's ``valid_from``;
    ``compromised_from``: the block from which it was reported compromised (seals of
    batches anchored from then on do not count), None if it was not."""

    agency_id: int
    number: int
    public_key: bytes
    valid_from: int
    compromised_from: int | None = None


@dataclass(frozen=True)
class LeafState:
    """The status of one leaf; ``changed_at_block`` is 0 for a leaf never changed.

    ``batch_revoked``: the status is that of its whole batch, revoked by a governor (the
    reason and block are the batch's).
    """

    status: LeafStatus
    reason: int
    changed_at_block: int
    successor: bytes | None
    batch_revoked: bool = False


def _type_codes(licence_types: Iterable[int]) -> list[int]:
    return sorted({_uint("licence type", code, 16) for code in licence_types})


def _topic(value: int) -> str:
    return "0x" + value.to_bytes(32, "big").hex()


def _digest(name: str, value: bytes) -> bytes:
    if not isinstance(value, bytes) or len(value) != DIGEST_BYTES:
        raise InvalidValue(f"{name} must be {DIGEST_BYTES} bytes, got {value!r}")
    return value


def _uint(name: str, value: int, bits: int) -> int:
    if not 0 <= value < 1 << bits:
        raise InvalidValue(f"{name} must fit in uint{bits}, got {value}")
    return value


class Registry:
    """A deployed LicenceRegistry on a :class:`~ledger.chain.Chain`."""

    def __init__(self, chain: Chain, address: ChecksumAddress) -> None:
        """Bind without checks; prefer :meth:`at` or :meth:`deploy`."""
        self.chain = chain
        self.address = address
        self._abi = load_artifact().abi
        self._contract: Contract = chain.w3.eth.contract(address=address, abi=list(self._abi))

    def __repr__(self) -> str:
        return f"Registry({self.address} on {self.chain.url})"

    @property
    def abi(self) -> tuple[dict[str, Any], ...]:
        """The registry's ABI (functions, events, errors), e.g. to decode its logs."""
        return self._abi

    # ---- construction ----------------------------------------------------------------

    @classmethod
    def deploy(cls, chain: Chain, governor: LocalAccount) -> Registry:
        """Deploy a new registry with ``governor`` as admin and governor."""
        artifact = load_artifact()
        factory = chain.w3.eth.contract(abi=list(artifact.abi), bytecode=artifact.bytecode)
        data = factory.constructor(governor.address).data_in_transaction
        sent = chain.transact(governor, data=HexStr(data), abi=artifact.abi)
        if sent.contract_address is None:
            raise TransactionFailed(f"deployment {sent.tx_hash} created no contract")
        return cls(chain, sent.contract_address)

    @classmethod
    def at(cls, chain: Chain, address: str) -> Registry:
        """Bind to the registry at ``address``.

        Raises:
            RegistryNotFound: there is no contract code at ``address``.
        """
        checksummed = Web3.to_checksum_address(address)
        with translate_errors():
            code = chain.w3.eth.get_code(checksummed)
        if len(code) == 0:
            raise RegistryNotFound(f"no contract code at {checksummed} on {chain.url}")
        return cls(chain, checksummed)

    # ---- governance ------------------------------------------------------------------

    def publish_licence_type(self, sender: LocalAccount, licence_type: LicenceType) -> Sent:
        """Publish ``licence_type`` (its code, version and canonical definition; the
        governor's). The version must be the type's latest published one + 1."""
        return self._send(
            sender,
            "publishLicenceType",
            _uint("licence type code", licence_type.code, 16),
            _uint("licence type version", licence_type.version, 16),
            licence_type.definition,
        )

    def publish_licence_types(
        self, sender: LocalAccount, types: Iterable[LicenceType]
    ) -> list[Sent]:
        """Publish, in version order, each of ``types`` not published yet; returns the
        transactions sent (none when every one is published already).

        Every version is checked before anything is sent.

        Raises:
            TypePublishedOtherwise: a version is published with another definition.
        """
        wanted = sorted(types, key=lambda t: (t.code, t.version))
        latest: dict[int, int] = {}
        to_publish = []
        for licence_type in wanted:
            code, version = licence_type.code, licence_type.version
            if code not in latest:
                latest[code] = self.latest_type_version(code)
            if version > latest[code]:
                to_publish.append(licence_type)
                continue
            published = self.licence_type(code, version)
            if published is not None and published.definition_hash != licence_type.definition_hash:
                raise TypePublishedOtherwise(
                    code, version, published.definition_hash, licence_type.definition_hash
                )
        return [self.publish_licence_type(sender, t) for t in to_publish]

    def register_agency(
        self,
        sender: LocalAccount,
        code: str,
        name: str,
        signer_address: str,
        licence_types: Iterable[int],
    ) -> tuple[int, Sent]:
        """Register an agency authorised for ``licence_types`` (each must be published);
        returns its new id and the transaction."""
        codes = _type_codes(licence_types)
        signer = Web3.to_checksum_address(signer_address)
        sent = self._send(sender, "registerAgency", code, name, signer, codes)
        return int(sent.event("AgencyRegistered").args["agencyId"]), sent

    def set_agency_types(
        self, sender: LocalAccount, agency_id: int, licence_types: Iterable[int]
    ) -> Sent:
        """Make ``licence_types`` the set of types agency ``agency_id`` may issue: sends
        the types to authorise (each must be published) and those to withdraw."""
        wanted = set(_type_codes(licence_types))
        current = set(self.agency_types(agency_id))
        return self._send(
            sender,
            "setAgencyTypes",
            _uint("agency_id", agency_id, 32),
            sorted(wanted - current),
            sorted(current - wanted),
        )

    def retire_agency(self, sender: LocalAccount, agency_id: int) -> Sent:
        """Retire agency ``agency_id`` (its earlier anchors stay valid)."""
        return self._send(sender, "retireAgency", _uint("agency_id", agency_id, 32))

    def rotate_signer(self, sender: LocalAccount, agency_id: int, new_signer: str) -> Sent:
        """Make ``new_signer`` the key of agency ``agency_id``; the old key is spent."""
        new = Web3.to_checksum_address(new_signer)
        return self._send(sender, "rotateSigner", _uint("agency_id", agency_id, 32), new)

    def revoke_batch(self, sender: LocalAccount, root: bytes, reason: int) -> Sent:
        """Revoke the whole batch ``root`` (the governor's): every licence under it reads as
        revoked, unless its own status is final already."""
        return self._send(sender, "revokeBatch", _digest("root", root), _uint("reason", reason, 8))

    def mark_signer_compromised(self, sender: LocalAccount, signer: str, from_block: int) -> Sent:
        """Report agency key ``signer`` compromised from block ``from_block`` on (the
        governor's): its anchors from that block on no longer count, and it is spent."""
        return self._send(
            sender,
            "markSignerCompromised",
            Web3.to_checksum_address(signer),
            _uint("from_block", from_block, 64),
        )

    def register_seal_key(
        self, sender: LocalAccount, agency_id: int, public_key: bytes, valid_from: int
    ) -> Sent:
        """Register SM2 public key X || Y as agency ``agency_id``'s seal key for batches
        anchored from block ``valid_from`` on (the governor's)."""
        if len(public_key) != 64:
            raise ValueError("an SM2 public key is 64 bytes X || Y")
        return self._send(
            sender,
            "registerSealKey",
            _uint("agency_id", agency_id, 32),
            public_key[:32],
            public_key[32:],
            _uint("valid_from", valid_from, 64),
        )

    def mark_seal_key_compromised(
        self, sender: LocalAccount, agency_id: int, key_number: int, from_block: int
    ) -> Sent:
        """Report agency ``agency_id``'s ``key_number``th seal key compromised from block
        ``from_block`` on (the governor's): seals of batches anchored from that block on
        no longer count."""
        return self._send(
            sender,
            "markSealKeyCompromised",
            _uint("agency_id", agency_id, 32),
            _uint("key_number", key_number, 32),
            _uint("from_block", from_block, 64),
        )

    # ---- anchoring and statuses ------------------------------------------------------

    def anchor(
        self,
        sender: LocalAccount,
        root: bytes,
        licence_type: int,
        count: int,
        type_version: int = 1,
    ) -> Sent:
        """Anchor batch ``root`` of ``count`` licences of version ``type_version`` of type
        ``licence_type``."""
        return self._send(
            sender,
            "anchor",
            _digest("root", root),
            _uint("licence_type", licence_type, 16),
            _uint("type_version", type_version, 16),
            _uint("count", count, 32),
        )

    def revoke(self, sender: LocalAccount, root: bytes, leaf: bytes, reason: int) -> Sent:
        """Revoke (吊销) ``leaf`` under ``root``; final."""
        return self._leaf_call(sender, "revoke", root, leaf, reason)

    def suspend(self, sender: LocalAccount, root: bytes, leaf: bytes, reason: int) -> Sent:
        """Suspend ``leaf`` under ``root`` until reinstated."""
        return self._leaf_call(sender, "suspend", root, leaf, reason)

    def reinstate(self, sender: LocalAccount, root: bytes, leaf: bytes, reason: int) -> Sent:
        """Reinstate suspended ``leaf`` under ``root``."""
        return self._leaf_call(sender, "reinstate", root, leaf, reason)

    def cancel(self, sender: LocalAccount, root: bytes, leaf: bytes, reason: int) -> Sent:
        """Cancel (注销) ``leaf`` under ``root``: the holder gave it up; final."""
        return self._leaf_call(sender, "cancel", root, leaf, reason)

    def supersede(
        self, sender: LocalAccount, root: bytes, leaf: bytes, successor: bytes, reason: int
    ) -> Sent:
        """Mark ``leaf`` under ``root`` as superseded by leaf ``successor``; final."""
        return self._send(
            sender,
            "supersede",
            _digest("root", root),
            _digest("leaf", leaf),
            _digest("successor", successor),
            _uint("reason", reason, 8),
        )

    def set_statuses(
        self,
        sender: LocalAccount,
        root: bytes,
        leaves: Sequence[bytes],
        status: LeafStatus,
        reason: int,
    ) -> Sent:
        """Set ``status`` on every leaf in ``leaves`` under ``root`` in one transaction.

        All or nothing; the receipt carries one ``LeafStatusesChanged`` event naming
        every leaf (not one event per leaf: see docs/gas.md).
        """
        return self._send(
            sender,
            "setStatuses",
            _digest("root", root),
            [_digest("leaf", leaf) for leaf in leaves],
            int(LeafStatus(status)),
            _uint("reason", reason, 8),
        )

    # ---- reads -----------------------------------------------------------------------

    def anchor_of(self, root: bytes) -> Anchor | None:
        """The anchor of ``root``, or None if it was never anchored."""
        agency_id, licence_type, type_version, count, block, timestamp, key_number = self._call(
            "anchorOf", _digest("root", root)
        )
        if agency_id == 0:
            return None
        return Anchor(
            root, agency_id, licence_type, count, block, timestamp, key_number, type_version
        )

    def batch_revocation_of(self, root: bytes) -> tuple[int, int] | None:
        """(reason, block) if batch ``root`` was revoked as a whole, else None."""
        revoked, reason, block = self._call("batchRevocationOf", _digest("root", root))
        return (int(reason), int(block)) if revoked else None

    def compromised_from(self, agency_id: int, key_number: int) -> int | None:
        """The block from which the ``key_number``th key of agency ``agency_id`` was
        reported compromised, or None if it was not."""
        compromised, from_block, _ = self._call(
            "compromiseOf", _uint("agency_id", agency_id, 32), _uint("key_number", key_number, 32)
        )
        return int(from_block) if compromised else None

    def anchor_compromised_from(self, root: bytes) -> int | None:
        """The compromise block of the key that anchored ``root``, if it was anchored at or
        after that block; None if the anchor counts (or there is none)."""
        anchor = self.anchor_of(root)
        if anchor is None:
            return None
        since = self.compromised_from(anchor.agency_id, anchor.key_number)
        return since if since is not None and anchor.block_number >= since else None

    def seal_key_at(self, agency_id: int, block_number: int) -> SealKey | None:
        """Agency ``agency_id``'s seal key for batches anchored in block ``block_number``,
        or None if it had none then."""
        number, x, y, valid_from, compromised = self._call(
            "sealKeyAt", _uint("agency_id", agency_id, 32), _uint("block", block_number, 64)
        )
        if not number:
            return None
        return SealKey(
            int(agency_id),
            int(number),
            bytes(x) + bytes(y),
            int(valid_from),
            int(compromised) or None,  # 0: the registry's "not reported"
        )

    def agency(self, agency_id: int) -> Agency:
        """Agency ``agency_id``; RegistryRejected (LicenceRegistryUnknownAgency) if none."""
        signer, retired, code, name = self._call("agencyOf", _uint("agency_id", agency_id, 32))
        return Agency(
            id=agency_id,
            signer=Web3.to_checksum_address(signer),
            licence_types=frozenset(self.agency_types(agency_id)),
            retired=retired,
            code=code,
            name=name,
        )

    def agency_types(self, agency_id: int) -> list[int]:
        """The licence type codes agency ``agency_id`` may issue, ascending."""
        return sorted(int(t) for t in self._call("agencyTypes", _uint("agency_id", agency_id, 32)))

    def is_authorised(self, agency_id: int, licence_type: int) -> bool:
        """Whether agency ``agency_id`` may anchor batches of type ``licence_type``."""
        return bool(
            self._call(
                "isAuthorised",
                _uint("agency_id", agency_id, 32),
                _uint("licence_type", licence_type, 16),
            )
        )

    def licence_type(self, code: int, version: int) -> PublishedType | None:
        """Version ``version`` of licence type ``code`` as published, or None."""
        definition_hash, block = self._call(
            "licenceTypeOf", _uint("code", code, 16), _uint("version", version, 16)
        )
        if not block:
            return None
        return PublishedType(code, version, bytes(definition_hash), int(block))

    def latest_type_version(self, code: int) -> int:
        """The latest published version of licence type ``code`` (0: none)."""
        return int(self._call("latestTypeVersion", _uint("code", code, 16)))

    def licence_type_definition(
        self, code: int, version: int, *, block_number: int | None = None
    ) -> bytes | None:
        """The definition bytes of version ``version`` of type ``code`` (None if it is not
        published), read from its ``LicenceTypePublished`` log: one ``eth_getLogs``
        filtered by the event, the code and the version, over the whole chain or only
        ``block_number`` (the block it was published in, when the caller knows it: nodes
        such as Besu refuse long ranges).

        Raises:
            TypeDefinitionMismatch: the node's log is not that type's, or its bytes do not
                hash to the hash it records (a node that cannot be trusted).
        """
        low: int | str = 0 if block_number is None else block_number
        high: int | str = "latest" if block_number is None else block_number
        with translate_errors():
            logs = self.chain.w3.eth.get_logs(
                {
                    "address": self.address,
                    "fromBlock": low,  # type: ignore[typeddict-item]
                    "toBlock": high,  # type: ignore[typeddict-item]
                    "topics": [
                        "0x" + _PUBLISHED_TOPIC.hex().removeprefix("0x"),
                        _topic(_uint("code", code, 16)),
                        _topic(_uint("version", version, 16)),
                    ],
                }
            )
        if not logs:
            return None
        if len(logs) != 1:
            raise TypeDefinitionMismatch(code, version, f"{len(logs)} logs answer, not one")
        return _checked_definition(code, version, logs[0])

    def agency_id_of(self, address: str) -> int | None:
        """Id of the agency whose current signer is ``address``, else None."""
        agency_id = int(self._call("agencyIdOf", Web3.to_checksum_address(address)))
        return agency_id or None

    def agency_count(self) -> int:
        """How many agencies were ever registered."""
        return int(self._call("agencyCount"))

    def status_of(self, root: bytes, leaf: bytes) -> LeafState:
        """The status of ``leaf`` under ``root`` (Active if never changed): the one the
        root's agency recorded for the leaf, or the batch's if it was revoked as a whole."""
        status, reason, changed_at, successor, batch_revoked = self._call(
            "statusOf", _digest("root", root), _digest("leaf", leaf)
        )
        return LeafState(
            status=LeafStatus(status),
            reason=reason,
            changed_at_block=changed_at,
            successor=bytes(successor) if any(successor) else None,
            batch_revoked=bool(batch_revoked),
        )

    def includes(self, root: bytes, leaf: bytes, proof: Sequence[bytes]) -> bool:
        """Whether ``proof`` (sibling hashes, bottom-up) links ``leaf`` to ``root``."""
        return bool(
            self._call(
                "includes",
                _digest("root", root),
                _digest("leaf", leaf),
                [_digest("proof element", p) for p in proof],
            )
        )

    def governor_role(self) -> bytes:
        """The GOVERNOR_ROLE identifier, keccak256("GOVERNOR_ROLE")."""
        return bytes(self._call("GOVERNOR_ROLE"))

    def is_governor(self, address: str) -> bool:
        """Whether ``address`` holds GOVERNOR_ROLE."""
        role = self.governor_role()
        return bool(self._call("hasRole", role, Web3.to_checksum_address(address)))

    # ---- plumbing --------------------------------------------------------------------

    def _leaf_call(
        self, sender: LocalAccount, fn: str, root: bytes, leaf: bytes, reason: int
    ) -> Sent:
        return self._send(
            sender, fn, _digest("root", root), _digest("leaf", leaf), _uint("reason", reason, 8)
        )

    def _send(self, sender: LocalAccount, fn: str, *args: Any) -> Sent:
        data = self._contract.encode_abi(fn, args=list(args))
        return self.chain.transact(sender, to=self.address, data=data, abi=self._abi)

    def _call(self, fn: str, *args: Any) -> Any:
        call: Callable[..., Any] = self._contract.functions[fn](*args).call
        with translate_errors(self._abi):
            return call()


def _checked_definition(code: int, version: int, log: Any) -> bytes:
    """The definition a ``LicenceTypePublished`` log carries, if the log is that of type
    ``code`` version ``version`` and its bytes hash to the hash it records."""
    topics = [bytes(t) for t in log["topics"]]
    expected = [bytes(_PUBLISHED_TOPIC), *(v.to_bytes(32, "big") for v in (code, version))]
    if topics != expected:
        raise TypeDefinitionMismatch(code, version, "the log is not that type version's")
    try:
        recorded, definition = abi_decode(["bytes32", "bytes"], bytes(log["data"]))
    except Exception as exc:  # eth_abi raises several kinds for malformed data
        raise TypeDefinitionMismatch(code, version, f"undecodable log data ({exc})") from None
    computed = hashlib.sha256(definition).digest()
    if computed != recorded:
        raise TypeDefinitionMismatch(
            code,
            version,
            f"its definition hashes to 0x{computed.hex()}, the log records 0x{recorded.hex()}",
        )
    return bytes(definition)
