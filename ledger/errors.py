"""Errors of the ledger package: everything that can go wrong talking to a chain.

web3's own exceptions never leave this package; they are translated where ledger calls
web3 (see ``ledger.chain``), so callers catch these and nothing else.

    LedgerError
    ├── ChainUnreachable (ConnectionError)    no node answers at the URL
    ├── WrongChain (ValueError)               the node serves another chain id
    ├── RegistryNotFound (LookupError)        no contract code at the registry address
    ├── InvalidValue (ValueError)             an argument the registry cannot take as given
    ├── TypePublishedOtherwise (ValueError)   a type version is published with another hash
    ├── TypeDefinitionMismatch (ValueError)   a node's type definition log fails its hash
    ├── InsufficientFunds                     the sender cannot pay for gas (and value)
    ├── NodeBusy (RuntimeError)               another embedded node runs on that home
    ├── IndexMismatch (ValueError)            an index file of another chain or registry
    │   └── SnapshotRefused                   an index snapshot that does not fit the chain
    ├── ChainReadFailed (RuntimeError)        the node refused a read it should answer
    ├── TransactionFailed (RuntimeError)      mined with status 0, not mined in time,
    │                                         or refused by the node for another reason
    └── RegistryRejected                      the registry reverted with a custom error
        └── RegistryUnauthorised (PermissionError)  ... because the caller may not do this
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = [
    "ChainReadFailed",
    "ChainUnreachable",
    "IndexMismatch",
    "InsufficientFunds",
    "InvalidValue",
    "LedgerError",
    "NodeBusy",
    "RegistryNotFound",
    "RegistryRejected",
    "RegistryUnauthorised",
    "SnapshotRefused",
    "TransactionFailed",
    "TypeDefinitionMismatch",
    "TypePublishedOtherwise",
    "WrongChain",
]


class LedgerError(Exception):
    """Root of every error raised by the ledger package."""


class ChainUnreachable(LedgerError, ConnectionError):
    """No Ethereum JSON-RPC node answers at the given URL."""


class WrongChain(LedgerError, ValueError):
    """The node at the URL serves a different chain id than expected."""


class RegistryNotFound(LedgerError, LookupError):
    """There is no contract code at the given registry address."""


class InvalidValue(LedgerError, ValueError):
    """An argument cannot be sent to the registry as given (wrong length, out of range)."""


class TypePublishedOtherwise(LedgerError, ValueError):
    """A licence type version is published on the registry with another definition than
    the one given: a version, once published, never changes (publish a new version)."""

    def __init__(self, code: int, version: int, published_hash: bytes, given_hash: bytes) -> None:
        self.code = code
        self.version = version
        self.published_hash = published_hash
        self.given_hash = given_hash
        super().__init__(
            f"licence type {code} version {version} is published with definition hash "
            f"0x{published_hash.hex()}, not 0x{given_hash.hex()}: publish the change as "
            f"version {version + 1} or later"
        )

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.code, self.version, self.published_hash, self.given_hash))


class TypeDefinitionMismatch(LedgerError, ValueError):
    """The node answered a licence type definition read with a log that is not that
    type version's, or whose bytes do not hash to the hash it records."""

    def __init__(self, code: int, version: int, reason: str) -> None:
        self.code = code
        self.version = version
        self.reason = reason
        super().__init__(f"licence type {code} version {version} from the chain: {reason}")

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.code, self.version, self.reason))


class InsufficientFunds(LedgerError):
    """The sending account cannot pay for the transaction's gas and value."""


class TransactionFailed(LedgerError, RuntimeError):
    """A transaction failed without a registry error to explain it."""


def _render(value: Any) -> str:
    if isinstance(value, bytes):
        return "0x" + value.hex()
    if isinstance(value, str):
        return value if value.startswith("0x") else repr(value)
    return str(value)


class RegistryRejected(LedgerError):
    """The registry reverted with one of its custom errors (decoded from the ABI)."""

    def __init__(self, error_name: str, error_args: Mapping[str, Any]) -> None:
        self.error_name = error_name
        self.error_args: dict[str, Any] = dict(error_args)
        rendered = ", ".join(f"{k}={_render(v)}" for k, v in self.error_args.items())
        self._message = f"{error_name}({rendered})"
        super().__init__(self._message)

    def __str__(self) -> str:
        # PermissionError (an OSError) would otherwise render its args as errno/strerror.
        return self._message

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.error_name, self.error_args))


class RegistryUnauthorised(RegistryRejected, PermissionError):
    """The registry refused because the caller lacks the role or agency it needs."""


class NodeBusy(LedgerError, RuntimeError):
    """Another embedded node already runs on the same home folder."""


class CannotListen(LedgerError, OSError):
    """The node cannot listen at the address it was given (taken, or not this machine's)."""


class IndexMismatch(LedgerError, ValueError):
    """An index file belongs to another chain or registry than the one asked for."""


class SnapshotRefused(IndexMismatch):
    """An index snapshot cannot be imported: damaged or truncated, of another registry or
    chain, or of a block the chain does not have at its height."""


class ChainReadFailed(LedgerError, RuntimeError):
    """The node refused a read indexing needs (the logs of one block, a block it has)."""
