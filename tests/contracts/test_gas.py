"""Gas of the hot paths, measured on eth-tester (cancun rules).

The targets are the design's; the single-leaf and bulk ones are not met yet (see the
xfail reasons) and are kept here, strict, so that meeting them is noticed.
"""

from __future__ import annotations

import os

import pytest
from eth_account.signers.local import LocalAccount

from ledger import LeafStatus, Registry


def test_anchor_costs_at_most_50k_gas(registry: Registry, agency_key: LocalAccount) -> None:
    assert registry.anchor(agency_key, os.urandom(32), 1, 500).gas_used <= 50_000


@pytest.mark.xfail(
    reason="floor is ~50.5k: 21k intrinsic + 1.2k calldata + 3 cold SLOADs (anchor, "
    "signer, leaf) + 20k new slot + 2k LOG3; measured ~52k",
    strict=True,
)
def test_single_revoke_costs_at_most_50k_gas(registry: Registry, agency_key: LocalAccount) -> None:
    root = os.urandom(32)
    registry.anchor(agency_key, root, 1, 500)
    assert registry.revoke(agency_key, root, os.urandom(32), 1).gas_used <= 50_000


@pytest.mark.xfail(
    reason="one LOG3 per leaf (2k) on top of a new slot (22.1k) leaves ~250 gas per leaf "
    "for everything else; measured ~25.6k per leaf",
    strict=True,
)
def test_bulk_status_change_costs_at_most_25k_gas_per_leaf(
    registry: Registry, agency_key: LocalAccount
) -> None:
    root = os.urandom(32)
    registry.anchor(agency_key, root, 1, 500)
    leaves = [os.urandom(32) for _ in range(100)]
    sent = registry.set_statuses(agency_key, root, leaves, LeafStatus.REVOKED, 1)
    assert sent.gas_used <= 25_000 * 100
