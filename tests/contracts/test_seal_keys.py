"""SM2 seal keys in the registry: only a governor registers them, each from a block on,
and the key for a batch is the one valid at its anchoring block, rotations included."""

from __future__ import annotations

import os

import pytest
from eth_account.signers.local import LocalAccount

from ledger import Registry, RegistryRejected, RegistryUnauthorised
from licence import seal
from tests.conftest import AGENCY_ID, OTHER_AGENCY_ID


def new_public_key() -> bytes:
    return seal.public_key(seal.new_private_key())


def test_a_registered_seal_key_is_the_agencys_key_from_its_block_on(
    registry: Registry, governor: LocalAccount
) -> None:
    public = new_public_key()
    start = registry.chain.block_number() + 1
    sent = registry.register_seal_key(governor, AGENCY_ID, public, start)
    assert sent.block_number == start
    found = registry.seal_key_at(AGENCY_ID, start)
    assert found is not None
    assert (found.number, found.public_key, found.valid_from) == (1, public, start)
    assert registry.seal_key_at(AGENCY_ID, start - 1) is None
    assert registry.seal_key_at(OTHER_AGENCY_ID, start) is None


def test_a_rotated_seal_key_leaves_earlier_batches_with_the_old_key(
    registry: Registry, governor: LocalAccount, agency_key: LocalAccount
) -> None:
    old, new = new_public_key(), new_public_key()
    first = registry.register_seal_key(governor, AGENCY_ID, old, registry.chain.block_number() + 1)
    anchored = registry.anchor(agency_key, os.urandom(16), 1, 10)
    switch = registry.chain.block_number() + 5
    registry.register_seal_key(governor, AGENCY_ID, new, switch)
    old_key = registry.seal_key_at(AGENCY_ID, anchored.block_number)
    assert old_key is not None and old_key.public_key == old
    assert registry.seal_key_at(AGENCY_ID, switch - 1).public_key == old  # type: ignore[union-attr]
    new_key = registry.seal_key_at(AGENCY_ID, switch)
    assert new_key is not None and (new_key.number, new_key.public_key) == (2, new)
    assert first.block_number < anchored.block_number < switch


def test_only_a_governor_registers_a_seal_key(
    registry: Registry, agency_key: LocalAccount, outsider: LocalAccount
) -> None:
    for caller in (agency_key, outsider):
        with pytest.raises(RegistryUnauthorised):
            registry.register_seal_key(
                caller, AGENCY_ID, new_public_key(), registry.chain.block_number() + 1
            )
    assert registry.seal_key_at(AGENCY_ID, 2**63) is None


def test_a_seal_key_cannot_start_in_the_past_nor_rewrite_a_later_key(
    registry: Registry, governor: LocalAccount
) -> None:
    now = registry.chain.block_number()
    with pytest.raises(RegistryRejected) as caught:
        registry.register_seal_key(governor, AGENCY_ID, new_public_key(), now)
    assert caught.value.error_name == "LicenceRegistryInvalidSealKeyBlock"
    registry.register_seal_key(governor, AGENCY_ID, new_public_key(), now + 10)
    with pytest.raises(RegistryRejected) as caught:
        registry.register_seal_key(governor, AGENCY_ID, new_public_key(), now + 10)
    assert caught.value.error_name == "LicenceRegistryInvalidSealKeyBlock"


def test_a_zero_seal_key_or_an_unknown_agency_is_refused(
    registry: Registry, governor: LocalAccount
) -> None:
    start = registry.chain.block_number() + 1
    with pytest.raises(RegistryRejected) as caught:
        registry.register_seal_key(governor, AGENCY_ID, bytes(64), start)
    assert caught.value.error_name == "LicenceRegistryInvalidSealKey"
    with pytest.raises(RegistryRejected) as caught:
        registry.register_seal_key(governor, 99, new_public_key(), start)
    assert caught.value.error_name == "LicenceRegistryUnknownAgency"


# ---- markSealKeyCompromised ----------------------------------------------------------


def test_a_seal_key_reported_compromised_says_from_which_block(
    registry: Registry, governor: LocalAccount
) -> None:
    public = new_public_key()
    start = registry.chain.block_number() + 1
    registry.register_seal_key(governor, AGENCY_ID, public, start)
    since = registry.chain.block_number()
    sent = registry.mark_seal_key_compromised(governor, AGENCY_ID, 1, since)
    found = registry.seal_key_at(AGENCY_ID, since)
    assert found is not None
    assert (found.number, found.public_key, found.compromised_from) == (1, public, since)
    receipt = registry.chain.w3.eth.get_transaction_receipt(sent.tx_hash)
    (event,) = registry._contract.events.SealKeyCompromised().process_receipt(receipt)
    assert dict(event["args"]) == {"agencyId": AGENCY_ID, "keyNumber": 1, "fromBlock": since}


def test_an_uncompromised_seal_key_reads_as_not_compromised(
    registry: Registry, governor: LocalAccount
) -> None:
    registry.register_seal_key(
        governor, AGENCY_ID, new_public_key(), registry.chain.block_number() + 1
    )
    found = registry.seal_key_at(AGENCY_ID, 2**40)
    assert found is not None and found.compromised_from is None


def test_only_a_governor_reports_a_seal_key_compromised(
    registry: Registry, governor: LocalAccount, agency_key: LocalAccount, outsider: LocalAccount
) -> None:
    registry.register_seal_key(
        governor, AGENCY_ID, new_public_key(), registry.chain.block_number() + 1
    )
    for caller in (agency_key, outsider):
        with pytest.raises(RegistryUnauthorised):
            registry.mark_seal_key_compromised(caller, AGENCY_ID, 1, 1)
    assert registry.seal_key_at(AGENCY_ID, 2**40).compromised_from is None  # type: ignore[union-attr]


def test_a_compromise_report_names_an_existing_key_and_a_block_not_in_the_future(
    registry: Registry, governor: LocalAccount
) -> None:
    registry.register_seal_key(
        governor, AGENCY_ID, new_public_key(), registry.chain.block_number() + 1
    )
    now = registry.chain.block_number()
    for agency_id, number in ((AGENCY_ID, 0), (AGENCY_ID, 2), (OTHER_AGENCY_ID, 1), (99, 1)):
        with pytest.raises(RegistryRejected) as caught:
            registry.mark_seal_key_compromised(governor, agency_id, number, now)
        assert caught.value.error_name == "LicenceRegistryUnknownSealKey"
    for block in (0, now + 5):
        with pytest.raises(RegistryRejected) as caught:
            registry.mark_seal_key_compromised(governor, AGENCY_ID, 1, block)
        assert caught.value.error_name == "LicenceRegistryInvalidCompromiseBlock"


def test_a_second_report_may_only_move_the_compromise_earlier(
    registry: Registry, governor: LocalAccount
) -> None:
    registry.register_seal_key(
        governor, AGENCY_ID, new_public_key(), registry.chain.block_number() + 1
    )
    now = registry.chain.block_number()
    registry.mark_seal_key_compromised(governor, AGENCY_ID, 1, now)
    for block in (now, registry.chain.block_number()):
        with pytest.raises(RegistryRejected) as caught:
            registry.mark_seal_key_compromised(governor, AGENCY_ID, 1, block)
        assert caught.value.error_name == "LicenceRegistrySealKeyAlreadyCompromised"
    registry.mark_seal_key_compromised(governor, AGENCY_ID, 1, now - 1)
    assert registry.seal_key_at(AGENCY_ID, now).compromised_from == now - 1  # type: ignore[union-attr]
