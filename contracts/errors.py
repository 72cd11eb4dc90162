"""Errors of the contracts package.

The tree (each error also inherits the built-in it resembles):

    ContractsError
    ├── ArtifactInvalid (ValueError)      the shipped artifact is missing or malformed
    └── CompilerNotFound (RuntimeError)   no solc of the pinned version to build with
"""

from __future__ import annotations

__all__ = ["ArtifactInvalid", "CompilerNotFound", "ContractsError"]


class ContractsError(Exception):
    """Root of every error raised by the contracts package."""


class ArtifactInvalid(ContractsError, ValueError):
    """The shipped contract artifact is missing or lacks a field."""


class CompilerNotFound(ContractsError, RuntimeError):
    """Neither a native solc of the pinned version nor node_modules' solcjs is present."""
