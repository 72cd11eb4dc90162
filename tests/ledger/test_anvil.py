"""The same binding against a real, separate node (anvil) over HTTP."""

from __future__ import annotations

import os

import pytest
from eth_account import Account

from ledger import Registry, RegistryUnauthorised, connect
from ledger.registry import DIGEST_BYTES
from tests.conftest import AGENCY_CODE, AGENCY_NAME, ANVIL_FAUCET_KEY, publish_types

pytestmark = pytest.mark.anvil


def test_deploy_anchor_and_read_back_over_http(anvil_url: str) -> None:
    chain = connect(anvil_url, faucet_key=ANVIL_FAUCET_KEY)
    governor, agency = Account.create(), Account.create()
    for account in (governor, agency):
        chain.fund(account.address, 10**19)
    registry = Registry.deploy(chain, governor)
    publish_types(registry, governor, {1, 2, 3})
    agency_id, _ = registry.register_agency(governor, AGENCY_CODE, AGENCY_NAME, agency.address, {1})
    root = os.urandom(DIGEST_BYTES)

    sent = registry.anchor(agency, root, 1, 42)

    assert agency.address not in chain.w3.eth.accounts
    anchor = Registry.at(chain, registry.address).anchor_of(root)
    assert anchor is not None
    assert (anchor.agency_id, anchor.licence_type, anchor.count, anchor.block_number) == (
        agency_id,
        1,
        42,
        sent.block_number,
    )
    assert sent.events[0].args["root"] == root


def test_revert_on_a_real_node_decodes_the_same(anvil_url: str) -> None:
    chain = connect(anvil_url, faucet_key=ANVIL_FAUCET_KEY)
    governor, outsider = Account.create(), Account.create()
    for account in (governor, outsider):
        chain.fund(account.address, 10**19)
    registry = Registry.deploy(chain, governor)
    with pytest.raises(RegistryUnauthorised) as caught:
        registry.anchor(outsider, os.urandom(DIGEST_BYTES), 1, 1)
    assert caught.value.error_name == "LicenceRegistryNotAgency"
    assert caught.value.error_args == {"caller": outsider.address}
