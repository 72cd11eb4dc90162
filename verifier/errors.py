"""Errors raised by the verifier package.

VerifierError
├── CouldNotCheck      (also ConnectionError)  the ledger could not be read: no verdict is possible
└── UntrustedRegistry  (also ValueError)       no trust anchor, or a document naming another
"""

from __future__ import annotations


class VerifierError(Exception):
    """Root of every error the verifier package raises."""


class CouldNotCheck(VerifierError, ConnectionError):
    """The ledger could not be read, so no verdict can be given (never 'invalid')."""


class UntrustedRegistry(VerifierError, ValueError):
    """No trusted registry is configured, the node serves another chain than the trusted
    one, or the document names another registry or chain than the trusted one."""
