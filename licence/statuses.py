"""The status of one licence in the registry: the contract's `LeafStatus`, by value.

The registry stores a leaf's status as this enum's value (one byte), so the members and
their order are those of `enum LeafStatus` in contracts/ILicenceRegistry.sol (a test
compares the two). Revoked, superseded and cancelled are final.
"""

from __future__ import annotations

from enum import IntEnum


class LeafStatus(IntEnum):
    """Status of one licence as its anchoring agency recorded it."""

    ACTIVE = 0
    SUSPENDED = 1
    REVOKED = 2  # 吊销, final
    SUPERSEDED = 3  # replaced by a successor licence, final
    CANCELLED = 4  # 注销, given up by the holder, final


FINAL = frozenset({LeafStatus.REVOKED, LeafStatus.SUPERSEDED, LeafStatus.CANCELLED})
