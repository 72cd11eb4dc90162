"""What verification reads from the ledger: anchors, agencies and leaf statuses.

A protocol, so the checks run the same against the registry read over JSON-RPC and
against a local index of its events.
"""

from __future__ import annotations

from typing import Protocol


class AnchorView(Protocol):
    """An anchored batch root as the registry recorded it."""

    @property
    def agency_id(self) -> int: ...
    @property
    def licence_type(self) -> int: ...
    @property
    def count(self) -> int: ...
    @property
    def block_number(self) -> int: ...
    @property
    def timestamp(self) -> int: ...
    @property
    def key_number(self) -> int: ...
    @property
    def type_version(self) -> int: ...


class AgencyView(Protocol):
    """An issuing agency as the registry records it."""

    @property
    def id(self) -> int: ...
    @property
    def signer(self) -> str: ...
    @property
    def code(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def retired(self) -> bool: ...


class SealKeyView(Protocol):
    """An agency's SM2 seal key as the registry records it (ledger.registry.SealKey):
    the ``number``th, public key X || Y, first block, and the block from which it was
    reported compromised (None if it was not)."""

    @property
    def number(self) -> int: ...
    @property
    def public_key(self) -> bytes: ...
    @property
    def valid_from(self) -> int: ...
    @property
    def compromised_from(self) -> int | None: ...


class LeafView(Protocol):
    """A licence's status under its batch root (status 0 = active), as the registry's
    `statusOf` answers: the one the anchoring agency recorded for the licence id, or the
    whole batch's revocation (`batch_revoked`)."""

    @property
    def status(self) -> int: ...
    @property
    def reason(self) -> int: ...
    @property
    def changed_at_block(self) -> int: ...
    @property
    def successor(self) -> bytes | None: ...
    @property
    def batch_revoked(self) -> bool: ...


class PublishedTypeView(Protocol):
    """A licence type version as the registry published it: its definition's SHA-256."""

    @property
    def definition_hash(self) -> bytes: ...


class LedgerSource(Protocol):
    """One trusted registry on one chain."""

    @property
    def chain_id(self) -> int: ...
    @property
    def registry_address(self) -> str: ...
    def block_number(self) -> int: ...
    def anchor_of(self, root: bytes) -> AnchorView | None: ...
    def agency(self, agency_id: int) -> AgencyView: ...
    def status_of(self, root: bytes, leaf: bytes) -> LeafView: ...
    def compromised_from(self, agency_id: int, key_number: int) -> int | None: ...
    def licence_type(self, code: int, version: int) -> PublishedTypeView | None:
        """The registry's record of a published type version, or None."""
        ...

    def seal_key_at(self, agency_id: int, block_number: int) -> SealKeyView | None:
        """The agency's seal key for batches anchored in `block_number` (the newest key
        valid from that block or earlier), or None if it had none then."""
        ...
