"""Errors raised by the verifier package.

VerifierError
└── CouldNotCheck  (also ConnectionError)  the ledger could not be read: no verdict is possible
"""

from __future__ import annotations


class VerifierError(Exception):
    """Root of every error the verifier package raises."""


class CouldNotCheck(VerifierError, ConnectionError):
    """The ledger could not be read, so no verdict can be given (never 'invalid')."""
