"""Errors raised by the verifier package.

VerifierError
├── CouldNotCheck      (also ConnectionError)  the ledger could not be read: no verdict is possible
├── UntrustedRegistry  (also ValueError)       no trust anchor, or a document naming another
└── TypeUnavailable    (also LookupError)      a licence type version that cannot be loaded:
    │                                           could not check, never TAMPERED
    └── DefinitionMismatch                      a copy whose hash is not the registry's
"""

from __future__ import annotations


class VerifierError(Exception):
    """Root of every error the verifier package raises."""


class CouldNotCheck(VerifierError, ConnectionError):
    """The ledger could not be read, so no verdict can be given (never 'invalid')."""


class UntrustedRegistry(VerifierError, ValueError):
    """No trusted registry is configured, the node serves another chain than the trusted
    one, or the document names another registry or chain than the trusted one."""


class TypeUnavailable(VerifierError, LookupError):
    """A licence names a type version this verifier cannot load (not published in the
    trusted registry, or no copy that matches what it recorded): the licence may be
    genuine, so it is reported as "could not check", never as TAMPERED."""

    code = "type.unavailable"

    def __init__(self, type_ref: str | int, version: int, detail: str) -> None:
        self.type_ref = type_ref
        self.version = version
        self.detail = detail
        super().__init__(
            f"licence type {type_ref} version {version} cannot be loaded: {detail}; the "
            "licence could not be checked (it may be genuine)"
        )


class DefinitionMismatch(TypeUnavailable):
    """A copy of a type definition (from a folder, a URL or the chain's event) whose
    SHA-256 is not the hash the registry recorded for that code and version: refused."""

    def __init__(self, source: str, code: int, version: int, recorded: bytes, found: bytes) -> None:
        self.source = source
        self.recorded = recorded
        self.found = found
        super().__init__(
            code,
            version,
            f"the definition from {source} has SHA-256 0x{found.hex()}, but the registry "
            f"recorded 0x{recorded.hex()} for code {code} version {version}: refused",
        )
