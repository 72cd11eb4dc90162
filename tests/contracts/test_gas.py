"""Gas of the hot paths, measured on eth-tester (cancun rules).

The targets are the design's (docs/gas.md). The one-leaf status change cannot meet its
target while it keeps a named-error check, a new storage slot and an event with root and
leaf as topics: docs/gas.md proves the floor (50,156 gas before any instruction runs).
Those tests stay strict xfails, so that anything that breaks the arithmetic is noticed.

Roots and leaves are fixed 16-byte hashes rather than random bytes: calldata costs 4 gas
per zero byte and 16 per other byte, so random values would move the figures a little.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable

import pytest
from eth_account.signers.local import LocalAccount

from ledger import Registry, Sent
from ledger.registry import DIGEST_BYTES
from licence.statuses import LeafStatus

SINGLE_LEAF_FLOOR = (
    "floor 50,156 gas before any instruction: 21,000 intrinsic + 844 calldata (bytes16 "
    "root and leaf) + 3 cold slots (anchor, signer record, leaf) 6,300 + new leaf slot "
    "20,000 + LeafStatusChanged with root and leaf as topics (LOG3, two data words) "
    "2,012; measured ~52,000 (revoke 52,002, suspend 52,023; docs/gas.md)"
)


def h(label: str) -> bytes:
    return hashlib.sha256(label.encode()).digest()[:DIGEST_BYTES]


@pytest.fixture
def root(registry: Registry, agency_key: LocalAccount) -> bytes:
    anchored = h("gas root")
    registry.anchor(agency_key, anchored, 1, 500)
    return anchored


ANCHOR_FLOOR = (
    "floor 50,384 gas before any instruction: 21,000 intrinsic + 816 calldata (root, type, "
    "version, count) + 3 cold slots (signer record, the agency's authorisation for the type, "
    "anchor) 6,300 + new anchor slot 20,000 + BatchAnchored (LOG3, three data words) 2,268; "
    "measured 52,215 (docs/gas.md)"
)


@pytest.mark.xfail(reason=ANCHOR_FLOOR, strict=True)
def test_anchor_costs_at_most_50k_gas(registry: Registry, agency_key: LocalAccount) -> None:
    assert registry.anchor(agency_key, h("anchor"), 1, 500).gas_used <= 50_000


def test_anchor_of_a_published_type_costs_at_most_53k_gas(
    registry: Registry, agency_key: LocalAccount
) -> None:
    # The bitmask's 49,361 + one cold read for the authorisation + a data word for the
    # version: a regression past that means the check grew.
    assert registry.anchor(agency_key, h("anchor"), 1, 500).gas_used <= 53_000


ONE_LEAF: dict[str, Callable[[Registry, LocalAccount, bytes, bytes], Sent]] = {
    "revoke": lambda r, k, root, leaf: r.revoke(k, root, leaf, 1),
    "suspend": lambda r, k, root, leaf: r.suspend(k, root, leaf, 1),
}


@pytest.mark.xfail(reason=SINGLE_LEAF_FLOOR, strict=True)
@pytest.mark.parametrize("change", ONE_LEAF.values(), ids=ONE_LEAF.keys())
def test_one_leaf_status_change_costs_at_most_50k_gas(
    registry: Registry, agency_key: LocalAccount, root: bytes, change
) -> None:
    assert change(registry, agency_key, root, h("leaf")).gas_used <= 50_000


def test_revoking_a_whole_batch_costs_about_one_leaf(
    registry: Registry, governor: LocalAccount, root: bytes
) -> None:
    # One new slot and one event, whatever the batch's size (500 licences here).
    assert registry.revoke_batch(governor, root, 7).gas_used <= 52_000


def test_bulk_status_change_costs_at_most_25k_gas_per_leaf(
    registry: Registry, agency_key: LocalAccount, root: bytes
) -> None:
    leaves = [h(f"leaf {i}") for i in range(100)]
    sent = registry.set_statuses(agency_key, root, leaves, LeafStatus.REVOKED, 1)
    assert sent.gas_used <= 25_000 * 100
