"""The service reads only the chain its configuration trusts (issue 15.3)."""

from __future__ import annotations

import pytest

from ledger import Registry, connect
from ledger.config import HomeConfig
from ledger.errors import WrongChain
from tests.conftest import ANVIL_FAUCET_KEY, key_for
from verifier.service.app import registry_opener
from verifier.service.settings import Settings


def _deployed(url: str) -> Registry:
    chain = connect(url, faucet_key=ANVIL_FAUCET_KEY)
    governor = key_for("trusted-chain-governor")
    chain.fund(governor.address, 10**19)
    return Registry.deploy(chain, governor)


def test_a_node_serving_another_chain_than_the_configured_one_is_not_read(anvil_url, tmp_path):
    registry = _deployed(anvil_url)
    served = registry.chain.chain_id
    HomeConfig(chain_url=anvil_url, chain_id=served + 1, registry=registry.address).save(tmp_path)
    with pytest.raises(WrongChain, match=f"serves chain id {served}"):
        registry_opener(Settings(home=tmp_path))()


def test_the_configured_chain_is_read(anvil_url, tmp_path):
    registry = _deployed(anvil_url)
    HomeConfig(
        chain_url=anvil_url, chain_id=registry.chain.chain_id, registry=registry.address
    ).save(tmp_path)
    opened = registry_opener(Settings(home=tmp_path))()
    assert opened.address == registry.address
