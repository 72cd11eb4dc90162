"""The registry read over JSON-RPC as a LedgerSource (one chain call per question)."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from functools import cached_property
from typing import TypeVar

from ledger.errors import ChainUnreachable
from ledger.registry import Agency, Anchor, LeafState, PublishedType, Registry, SealKey
from verifier.errors import CouldNotCheck

T = TypeVar("T")


def _reading(call: Callable[[], T]) -> T:
    # An unreachable chain means "could not check", never a verdict about the licence.
    try:
        return call()
    except ChainUnreachable as exc:
        raise CouldNotCheck(f"could not check: {exc}") from exc


class RegistrySource:
    """Answers verification's questions by calling the registry's views."""

    def __init__(self, registry: Registry) -> None:
        self._registry = registry
        # The registry never overwrites an anchor, so a found anchor can be kept; nor a
        # published type version.
        self._anchors: dict[bytes, Anchor] = {}
        self._types: dict[tuple[int, int], PublishedType] = {}

    @cached_property
    def chain_id(self) -> int:
        """The chain the registry lives on."""
        return self._registry.chain.chain_id

    @property
    def registry_address(self) -> str:
        """The trusted registry's address."""
        return self._registry.address

    def block_number(self) -> int:
        """The chain's current height."""
        return _reading(self._registry.chain.block_number)

    def anchor_of(self, root: bytes) -> Anchor | None:
        """The anchor of a batch root, or None."""
        if root not in self._anchors:
            found = _reading(lambda: self._registry.anchor_of(root))
            if found is None:
                return None
            self._anchors[root] = found
        return self._anchors[root]

    def agency(self, agency_id: int) -> Agency:
        """An agency by id."""
        return _reading(lambda: self._registry.agency(agency_id))

    def status_of(self, root: bytes, leaf: bytes) -> LeafState:
        """A licence's status under its root."""
        return _reading(lambda: self._registry.status_of(root, leaf))

    def compromised_from(self, agency_id: int, key_number: int) -> int | None:
        """The block from which an agency key was reported compromised, or None (asked
        every time: a report can come at any moment)."""
        return _reading(lambda: self._registry.compromised_from(agency_id, key_number))

    def seal_key_at(self, agency_id: int, block_number: int) -> SealKey | None:
        """The agency's seal key for batches anchored in `block_number`, or None (asked
        every time, as `compromised_from`: a compromise can be reported at any moment;
        the costly part, verifying a seal, is cached per root by verifier.checks)."""
        return _reading(lambda: self._registry.seal_key_at(agency_id, block_number))

    def licence_type(self, code: int, version: int) -> PublishedType | None:
        """A published type version (its definition's hash), or None; kept once found."""
        key = (code, version)
        if key not in self._types:
            found = _reading(lambda: self._registry.licence_type(code, version))
            if found is None:
                return None
            self._types[key] = found
        return self._types[key]

    def licence_type_definition(self, code: int, version: int) -> bytes | None:
        """A published type version's definition, from its event (one read: the event
        carries the hash too, so `licence_type` then asks nothing more), or None."""
        definition = _reading(lambda: self._registry.licence_type_definition(code, version))
        if definition is not None:
            # The block is not needed by verification; 0 says "not read".
            digest = hashlib.sha256(definition).digest()
            self._types.setdefault((code, version), PublishedType(code, version, digest, 0))
        return definition
