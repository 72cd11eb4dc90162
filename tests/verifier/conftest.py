"""The shared registry (tests/conftest.py) wrapped for verification tests."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from eth_account.signers.local import LocalAccount

from issuer.batch import WrappedBatch, wrap_batch
from ledger.chain import Chain
from ledger.registry import Registry
from licence.catalogue import catalogue
from tests.samples import business_licence
from verifier.chain_source import RegistrySource


@dataclass
class World:
    """The chain, the registry, its governor and agencies 1 and 2, and a reader."""

    chain: Chain
    registry: Registry
    governor: LocalAccount
    agency: LocalAccount
    other_agency: LocalAccount
    source: RegistrySource

    def wrap(self, rows, type_id="business-licence") -> WrappedBatch:
        """Wrap rows into a batch naming this registry, without anchoring it."""
        return wrap_batch(
            catalogue().get(type_id),
            rows,
            chain_id=self.chain.chain_id,
            registry=self.registry.address,
        )

    def issue(self, rows, type_id="business-licence", by=None) -> WrappedBatch:
        """Wrap rows and anchor the batch (by agency 1 unless `by` says otherwise)."""
        batch = self.wrap(rows, type_id)
        code = catalogue().get(type_id).code
        self.registry.anchor(by or self.agency, batch.root, code, len(batch.documents))
        return batch


@pytest.fixture
def world(chain, registry, governor, agency_key, other_agency_key) -> World:
    return World(chain, registry, governor, agency_key, other_agency_key, RegistrySource(registry))


@pytest.fixture
def issued(world) -> WrappedBatch:
    """Three business licences issued in one batch by agency 1."""
    return world.issue([business_licence(i) for i in range(3)])
