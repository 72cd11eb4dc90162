"""elicence ledger: the chain seam (connect, send signed transactions) and the registry.

Typical use: `chain = connect("embedded")` (or an http:// URL of any EVM node), then
`registry = Registry.deploy(chain, governor)` or `Registry.at(chain, address)`.
"""

from __future__ import annotations

from ledger.chain import Chain, EventLog, Sent, connect
from ledger.errors import (
    ChainUnreachable,
    InsufficientFunds,
    InvalidValue,
    LedgerError,
    RegistryNotFound,
    RegistryRejected,
    RegistryUnauthorised,
    TransactionFailed,
    TypeDefinitionMismatch,
    TypePublishedOtherwise,
    WrongChain,
)
from ledger.registry import Agency, Anchor, LeafState, PublishedType, Registry

__all__ = [
    "Agency",
    "Anchor",
    "Chain",
    "ChainUnreachable",
    "EventLog",
    "InsufficientFunds",
    "InvalidValue",
    "LeafState",
    "LedgerError",
    "PublishedType",
    "Registry",
    "RegistryNotFound",
    "RegistryRejected",
    "RegistryUnauthorised",
    "Sent",
    "TransactionFailed",
    "TypeDefinitionMismatch",
    "TypePublishedOtherwise",
    "WrongChain",
    "connect",
]
