"""Licence types on the registry: the governor publishes each version (its definition's
SHA-256 on chain, the bytes in the event); agencies are authorised for, and anchor
batches of, published types only."""

from __future__ import annotations

import dataclasses
import hashlib
import os
from typing import Any

import pytest
from eth_account.signers.local import LocalAccount

from ledger import Registry, RegistryRejected, RegistryUnauthorised
from ledger.errors import TypeDefinitionMismatch, TypePublishedOtherwise
from ledger.registry import DIGEST_BYTES, MAX_DEFINITION_BYTES
from licence.catalogue import LicenceType, catalogue
from tests.conftest import AGENCY_ID, key_for, publish_types

NEW_CODE = "91440300000000001" + "2"
UNPUBLISHED = 7  # a shipped type the registry fixture does not publish


def new_root() -> bytes:
    return os.urandom(DIGEST_BYTES)


def shipped(code: int) -> LicenceType:
    return catalogue().by_code(code)


def next_version(licence_type: LicenceType, version: int = 2) -> LicenceType:
    """The same type under a later version whose definition differs (as a new label would)."""
    definition = licence_type.definition.replace(b'"version":1', f'"version":{version}'.encode())
    assert definition != licence_type.definition
    return dataclasses.replace(licence_type, version=version, definition=definition)


def test_governor_publishes_a_type_and_the_registry_records_its_hash(
    registry: Registry, governor: LocalAccount
) -> None:
    licence_type = shipped(UNPUBLISHED)
    sent = registry.publish_licence_type(governor, licence_type)
    published = registry.licence_type(UNPUBLISHED, 1)
    assert published is not None
    assert published.definition_hash == hashlib.sha256(licence_type.definition).digest()
    assert published.block_number == sent.block_number
    assert registry.latest_type_version(UNPUBLISHED) == 1
    assert sent.event("LicenceTypePublished").args == {
        "licenceType": UNPUBLISHED,
        "version": 1,
        "definitionHash": licence_type.definition_hash,
        "definition": licence_type.definition,
    }


def test_unpublished_type_reads_as_none_and_version_zero(registry: Registry) -> None:
    assert registry.licence_type(UNPUBLISHED, 1) is None
    assert registry.latest_type_version(UNPUBLISHED) == 0
    assert registry.licence_type_definition(UNPUBLISHED, 1) is None


@pytest.mark.parametrize("who", ["agency_key", "outsider"])
def test_only_the_governor_can_publish_a_type(
    registry: Registry, request: pytest.FixtureRequest, who: str
) -> None:
    sender: LocalAccount = request.getfixturevalue(who)
    with pytest.raises(RegistryUnauthorised) as caught:
        registry.publish_licence_type(sender, shipped(UNPUBLISHED))
    assert caught.value.error_name == "AccessControlUnauthorizedAccount"
    assert registry.latest_type_version(UNPUBLISHED) == 0


def test_a_version_must_follow_the_latest_published(
    registry: Registry, governor: LocalAccount
) -> None:
    first = shipped(UNPUBLISHED)
    with pytest.raises(RegistryRejected) as skipped:
        registry.publish_licence_type(governor, next_version(first))
    assert skipped.value.error_name == "LicenceRegistryInvalidTypeVersion"
    assert skipped.value.error_args == {"licenceType": UNPUBLISHED, "version": 2, "latest": 0}
    registry.publish_licence_type(governor, first)
    with pytest.raises(RegistryRejected) as again:
        registry.publish_licence_type(governor, first)
    assert again.value.error_args == {"licenceType": UNPUBLISHED, "version": 1, "latest": 1}
    registry.publish_licence_type(governor, next_version(first))
    assert registry.latest_type_version(UNPUBLISHED) == 2
    # Both versions stay readable: licences issued under each keep verifying.
    assert registry.licence_type_definition(UNPUBLISHED, 1) == first.definition
    assert registry.licence_type_definition(UNPUBLISHED, 2) == next_version(first).definition


def test_type_zero_cannot_be_published(registry: Registry, governor: LocalAccount) -> None:
    with pytest.raises(RegistryRejected) as caught:
        registry.publish_licence_type(governor, dataclasses.replace(shipped(1), code=0))
    assert caught.value.error_name == "LicenceRegistryInvalidLicenceType"


@pytest.mark.parametrize("size", [0, MAX_DEFINITION_BYTES + 1])
def test_a_definition_has_1_to_16384_bytes(
    registry: Registry, governor: LocalAccount, size: int
) -> None:
    oversized = dataclasses.replace(shipped(UNPUBLISHED), definition=b"{" * size)
    with pytest.raises(RegistryRejected) as caught:
        registry.publish_licence_type(governor, oversized)
    assert caught.value.error_name == "LicenceRegistryInvalidTypeDefinition"
    assert caught.value.error_args == {"licenceType": UNPUBLISHED, "length": size}


def test_publishing_the_catalogue_skips_versions_already_published(
    registry: Registry, governor: LocalAccount
) -> None:
    # The fixture published 1, 2 and 3: only the other shipped types are sent.
    sent = publish_types(registry, governor)
    assert len(sent) == len(catalogue()) - 3
    assert publish_types(registry, governor) == []
    for licence_type in catalogue():
        published = registry.licence_type(licence_type.code, licence_type.version)
        assert published is not None
        assert published.definition_hash == licence_type.definition_hash


def test_publishing_another_definition_under_a_published_version_is_refused(
    registry: Registry, governor: LocalAccount
) -> None:
    changed = dataclasses.replace(shipped(1), definition=shipped(1).definition + b" ")
    with pytest.raises(TypePublishedOtherwise) as caught:
        registry.publish_licence_types(governor, [shipped(UNPUBLISHED), changed])
    assert (caught.value.code, caught.value.version) == (1, 1)
    assert caught.value.published_hash == shipped(1).definition_hash
    assert caught.value.given_hash == changed.definition_hash
    # Checked before anything was sent: the other type is not published either.
    assert registry.latest_type_version(UNPUBLISHED) == 0


def test_publishing_types_sends_versions_in_order(
    registry: Registry, governor: LocalAccount
) -> None:
    first = shipped(UNPUBLISHED)
    sent = registry.publish_licence_types(governor, [next_version(first), first])
    assert [s.event("LicenceTypePublished").args["version"] for s in sent] == [1, 2]


# ---- authorisation ----------------------------------------------------------------------


def test_an_agency_cannot_be_registered_for_an_unpublished_type(
    registry: Registry, governor: LocalAccount
) -> None:
    with pytest.raises(RegistryRejected) as caught:
        registry.register_agency(governor, NEW_CODE, "机关", key_for("n").address, {1, UNPUBLISHED})
    assert caught.value.error_name == "LicenceRegistryTypeNotPublished"
    assert caught.value.error_args == {"licenceType": UNPUBLISHED, "version": 0}
    assert registry.agency_count() == 2


def test_an_agency_cannot_be_authorised_for_an_unpublished_type(
    registry: Registry, governor: LocalAccount
) -> None:
    with pytest.raises(RegistryRejected) as caught:
        registry.set_agency_types(governor, AGENCY_ID, {1, 2, UNPUBLISHED})
    assert caught.value.error_name == "LicenceRegistryTypeNotPublished"
    assert caught.value.error_args == {"licenceType": UNPUBLISHED, "version": 0}
    assert registry.agency(AGENCY_ID).licence_types == {1, 2}


def test_authorisation_follows_publication(registry: Registry, governor: LocalAccount) -> None:
    publish_types(registry, governor, {UNPUBLISHED})
    sent = registry.set_agency_types(governor, AGENCY_ID, {1, 2, UNPUBLISHED})
    assert [e.args for e in sent.events] == [
        {"agencyId": AGENCY_ID, "licenceType": UNPUBLISHED, "authorised": True}
    ]
    assert registry.is_authorised(AGENCY_ID, UNPUBLISHED)
    assert registry.agency_types(AGENCY_ID) == [1, 2, UNPUBLISHED]


def test_an_agency_cannot_anchor_a_type_it_is_not_authorised_for(
    registry: Registry, agency_key: LocalAccount
) -> None:
    with pytest.raises(RegistryUnauthorised) as caught:
        registry.anchor(agency_key, new_root(), 3, 10)  # published, for agency 2 only
    assert caught.value.error_name == "LicenceRegistryNotAuthorised"
    assert caught.value.error_args == {"agencyId": AGENCY_ID, "licenceType": 3}


@pytest.mark.parametrize("version", [0, 2, 65535])
def test_an_agency_cannot_anchor_an_unpublished_version(
    registry: Registry, agency_key: LocalAccount, version: int
) -> None:
    root = new_root()
    with pytest.raises(RegistryRejected) as caught:
        registry.anchor(agency_key, root, 1, 10, type_version=version)
    assert caught.value.error_name == "LicenceRegistryTypeNotPublished"
    assert caught.value.error_args == {"licenceType": 1, "version": version}
    assert registry.anchor_of(root) is None


def test_a_batch_of_a_later_version_is_anchored_with_it(
    registry: Registry, governor: LocalAccount, agency_key: LocalAccount
) -> None:
    registry.publish_licence_type(governor, next_version(shipped(1)))
    old, new = new_root(), new_root()
    registry.anchor(agency_key, old, 1, 10)
    sent = registry.anchor(agency_key, new, 1, 10, type_version=2)
    assert sent.event("BatchAnchored").args["typeVersion"] == 2
    old_anchor, new_anchor = registry.anchor_of(old), registry.anchor_of(new)
    assert old_anchor is not None and new_anchor is not None
    assert (old_anchor.licence_type, old_anchor.type_version) == (1, 1)
    assert (new_anchor.licence_type, new_anchor.type_version, new_anchor.count) == (1, 2, 10)


def test_a_withdrawn_type_cannot_be_anchored_but_old_anchors_stay(
    registry: Registry, governor: LocalAccount, agency_key: LocalAccount
) -> None:
    root = new_root()
    registry.anchor(agency_key, root, 2, 10)
    sent = registry.set_agency_types(governor, AGENCY_ID, {1})
    assert [e.args for e in sent.events] == [
        {"agencyId": AGENCY_ID, "licenceType": 2, "authorised": False}
    ]
    with pytest.raises(RegistryUnauthorised) as caught:
        registry.anchor(agency_key, new_root(), 2, 10)
    assert caught.value.error_name == "LicenceRegistryNotAuthorised"
    anchor = registry.anchor_of(root)
    assert anchor is not None and anchor.licence_type == 2
    registry.revoke(agency_key, root, new_root(), 1)  # its licences can still be managed


def test_a_retired_agency_types_cannot_change(registry: Registry, governor: LocalAccount) -> None:
    registry.retire_agency(governor, AGENCY_ID)
    with pytest.raises(RegistryUnauthorised) as caught:
        registry.set_agency_types(governor, AGENCY_ID, {1})
    assert caught.value.error_name == "LicenceRegistryAgencyRetired"


def test_a_rotated_key_keeps_its_agency_types(
    registry: Registry, governor: LocalAccount, agency_key: LocalAccount
) -> None:
    new_key = key_for("agency-rotated")
    registry.chain.fund(new_key.address, 10**18)
    registry.rotate_signer(agency_key, AGENCY_ID, new_key.address)
    registry.anchor(new_key, new_root(), 2, 1)
    with pytest.raises(RegistryUnauthorised):
        registry.anchor(new_key, new_root(), 3, 1)


# ---- definitions from the log ------------------------------------------------------------


def test_a_definition_round_trips_from_its_log_in_one_read(
    registry: Registry, monkeypatch: pytest.MonkeyPatch
) -> None:
    eth = registry.chain.w3.eth
    real = eth.get_logs
    asked: list[Any] = []

    def counted(params: Any) -> Any:
        asked.append(params)
        return real(params)

    monkeypatch.setattr(eth, "get_logs", counted)
    assert registry.licence_type_definition(2, 1) == shipped(2).definition
    assert len(asked) == 1
    published = registry.licence_type(2, 1)
    assert published is not None
    only_block = registry.licence_type_definition(2, 1, block_number=published.block_number)
    assert only_block == shipped(2).definition


def test_a_tampered_definition_log_is_refused(
    registry: Registry, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A node that answers with other definition bytes under the recorded hash.
    eth = registry.chain.w3.eth
    real = eth.get_logs

    def tampered(params: Any) -> Any:
        logs = [dict(log) for log in real(params)]
        data = bytearray(logs[0]["data"])
        data[-40] ^= 0x01  # a byte of the definition, inside its padded tail
        logs[0]["data"] = bytes(data)
        return logs

    monkeypatch.setattr(eth, "get_logs", tampered)
    with pytest.raises(TypeDefinitionMismatch) as caught:
        registry.licence_type_definition(1, 1)
    assert (caught.value.code, caught.value.version) == (1, 1)
    assert "hashes to" in caught.value.reason


def test_a_log_of_another_type_is_refused(
    registry: Registry, monkeypatch: pytest.MonkeyPatch
) -> None:
    eth = registry.chain.w3.eth
    real = eth.get_logs

    def other_type(params: Any) -> Any:
        wrong = dict(params)
        wrong["topics"] = [params["topics"][0], "0x" + (3).to_bytes(32, "big").hex()]
        return real(wrong)

    monkeypatch.setattr(eth, "get_logs", other_type)
    with pytest.raises(TypeDefinitionMismatch):
        registry.licence_type_definition(1, 1)
