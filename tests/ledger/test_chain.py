"""Connecting to chains, and how failures surface as ledger errors."""

from __future__ import annotations

import os

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount
from web3.exceptions import ContractLogicError

from ledger import (
    Chain,
    ChainUnreachable,
    InsufficientFunds,
    InvalidValue,
    Registry,
    RegistryNotFound,
    RegistryRejected,
    RegistryUnauthorised,
    WrongChain,
    connect,
)
from ledger.registry import DIGEST_BYTES
from licence.statuses import LeafStatus
from tests.conftest import AGENCY_ID, free_port


def test_dead_url_is_chain_unreachable() -> None:
    with pytest.raises(ChainUnreachable):
        connect(f"http://127.0.0.1:{free_port()}", timeout=1)


def test_unknown_url_scheme_is_refused() -> None:
    with pytest.raises(InvalidValue, match="unsupported chain URL"):
        connect("ftp://example.org")


def test_unexpected_chain_id_is_wrong_chain(chain: Chain) -> None:
    with pytest.raises(WrongChain):
        connect("embedded", expected_chain_id=chain.chain_id + 1)


def test_embedded_chain_has_a_faucet(chain: Chain) -> None:
    assert chain.url == "embedded" and chain.faucet is not None
    fresh = Account.create()
    chain.fund(fresh.address, 12345)
    assert chain.balance(fresh.address) == 12345


def test_address_without_code_is_registry_not_found(chain: Chain, outsider: LocalAccount) -> None:
    with pytest.raises(RegistryNotFound):
        Registry.at(chain, outsider.address)


def test_registry_at_binds_to_deployed_code(registry: Registry) -> None:
    again = Registry.at(registry.chain, registry.address.lower())
    assert again.address == registry.address and again.agency_count() == 2


def test_transactions_are_signed_locally_by_keys_the_node_does_not_hold(
    registry: Registry, agency_key: LocalAccount
) -> None:
    w3 = registry.chain.w3
    assert agency_key.address not in w3.eth.accounts
    sent = registry.anchor(agency_key, os.urandom(DIGEST_BYTES), 1, 1)
    assert w3.eth.get_transaction(sent.tx_hash)["from"] == agency_key.address


def test_revert_decodes_to_registry_rejected_with_name_and_args(
    registry: Registry, agency_key: LocalAccount
) -> None:
    with pytest.raises(RegistryRejected) as caught:
        registry.anchor(agency_key, os.urandom(DIGEST_BYTES), 9, 1)
    error = caught.value
    assert isinstance(error, RegistryUnauthorised) and isinstance(error, PermissionError)
    assert error.error_name == "LicenceRegistryNotAuthorised"
    assert error.error_args == {"agencyId": AGENCY_ID, "licenceType": 9}
    assert str(error) == f"LicenceRegistryNotAuthorised(agencyId={AGENCY_ID}, licenceType=9)"


def test_unfunded_sender_is_insufficient_funds(registry: Registry) -> None:
    with pytest.raises(InsufficientFunds):
        registry.anchor(Account.create(), os.urandom(DIGEST_BYTES), 1, 1)


@pytest.mark.parametrize(
    "call",
    [
        lambda r, k: r.anchor(k, b"short", 1, 1),
        lambda r, k: r.anchor(k, os.urandom(DIGEST_BYTES), 65536, 1),
        lambda r, k: r.anchor(k, os.urandom(DIGEST_BYTES), 1, 2**32),
        lambda r, k: r.revoke(k, os.urandom(DIGEST_BYTES), os.urandom(DIGEST_BYTES - 1), 1),
        lambda r, k: r.set_statuses(
            k, os.urandom(DIGEST_BYTES), [os.urandom(DIGEST_BYTES)], LeafStatus.REVOKED, 300
        ),
        lambda r, k: r.anchor(k, os.urandom(DIGEST_BYTES), 1, 1, type_version=65536),
        lambda r, k: r.set_agency_types(k, 1, {65536}),
    ],
)
def test_values_the_registry_cannot_take_are_invalid_value(
    registry: Registry, agency_key: LocalAccount, call
) -> None:
    with pytest.raises(InvalidValue):
        call(registry, agency_key)


DIGEST_ARGUMENTS = {
    "root": lambda r, k, bad: r.anchor(k, bad, 1, 1),
    "leaf": lambda r, k, bad: r.revoke(k, os.urandom(DIGEST_BYTES), bad, 1),
    "successor": lambda r, k, bad: r.supersede(
        k, os.urandom(DIGEST_BYTES), os.urandom(DIGEST_BYTES), bad, 1
    ),
    "proof element": lambda r, k, bad: r.includes(
        os.urandom(DIGEST_BYTES), os.urandom(DIGEST_BYTES), [bad]
    ),
}


@pytest.mark.parametrize("length", [0, DIGEST_BYTES - 1, DIGEST_BYTES + 1, 32])
@pytest.mark.parametrize(("name", "call"), DIGEST_ARGUMENTS.items(), ids=DIGEST_ARGUMENTS.keys())
def test_digest_of_the_wrong_length_is_invalid_value_naming_the_argument(
    registry: Registry, agency_key: LocalAccount, name: str, call, length: int
) -> None:
    with pytest.raises(InvalidValue, match=f"^{name} must be 16 bytes"):
        call(registry, agency_key, os.urandom(length))


def test_digests_are_16_bytes() -> None:
    assert DIGEST_BYTES == 16


def test_embedded_gas_estimate_is_the_least_gas_the_transaction_runs_with(
    registry: Registry, agency_key: LocalAccount
) -> None:
    # The embedded chain estimates with one run and a confirming one instead of py-evm's
    # bisection; the answer must still be enough, and not more than needed.
    root = bytes(range(DIGEST_BYTES))
    call = {
        "from": agency_key.address,
        "to": registry.address,
        "data": registry._contract.encode_abi("anchor", args=[root, 1, 1, 10]),
    }
    w3 = registry.chain.w3
    needed = w3.eth.estimate_gas(call)  # type: ignore[arg-type]
    w3.eth.call({**call, "gas": needed})  # type: ignore[typeddict-item]
    with pytest.raises(ContractLogicError, match="Out of gas"):
        w3.eth.call({**call, "gas": needed - 1})  # type: ignore[typeddict-item]
    assert registry.anchor(agency_key, root, 1, 10).block_number > 0
