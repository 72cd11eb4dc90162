"""Who may do what in the registry: every unauthorised path reverts with its named error."""

from __future__ import annotations

import os

import pytest
from eth_account.signers.local import LocalAccount

from ledger import Registry, RegistryRejected, RegistryUnauthorised
from ledger.registry import DIGEST_BYTES
from tests.conftest import (
    AGENCY_CODE,
    AGENCY_ID,
    AGENCY_NAME,
    OTHER_AGENCY_ID,
    key_for,
    publish_types,
)

NEW_CODE = "91440300000000001" + "2"  # 18 characters; the registry checks length only


def new_root() -> bytes:
    return os.urandom(DIGEST_BYTES)


def test_outsider_cannot_anchor(registry: Registry, outsider: LocalAccount) -> None:
    with pytest.raises(RegistryUnauthorised) as caught:
        registry.anchor(outsider, new_root(), 1, 10)
    assert caught.value.error_name == "LicenceRegistryNotAgency"
    assert caught.value.error_args == {"caller": outsider.address}


def test_agency_cannot_anchor_a_type_it_is_not_authorised_for(
    registry: Registry, agency_key: LocalAccount
) -> None:
    with pytest.raises(RegistryUnauthorised) as caught:
        registry.anchor(agency_key, new_root(), 3, 10)
    assert caught.value.error_name == "LicenceRegistryNotAuthorised"
    assert caught.value.error_args == {"agencyId": AGENCY_ID, "licenceType": 3}


@pytest.mark.parametrize("licence_type", [0, 64, 255, 65535])
def test_types_never_published_are_never_authorised(
    registry: Registry, agency_key: LocalAccount, licence_type: int
) -> None:
    with pytest.raises(RegistryUnauthorised) as caught:
        registry.anchor(agency_key, new_root(), licence_type, 1)
    assert caught.value.error_name == "LicenceRegistryNotAuthorised"


def test_retired_agency_cannot_anchor(
    registry: Registry, governor: LocalAccount, agency_key: LocalAccount
) -> None:
    registry.retire_agency(governor, AGENCY_ID)
    with pytest.raises(RegistryUnauthorised) as caught:
        registry.anchor(agency_key, new_root(), 1, 10)
    assert caught.value.error_name == "LicenceRegistryAgencyRetired"
    assert caught.value.error_args == {"agencyId": AGENCY_ID}


def test_retired_agency_cannot_change_statuses_but_its_anchors_stay(
    registry: Registry, governor: LocalAccount, agency_key: LocalAccount
) -> None:
    root = new_root()
    registry.anchor(agency_key, root, 1, 10)
    registry.retire_agency(governor, AGENCY_ID)
    with pytest.raises(RegistryUnauthorised) as caught:
        registry.revoke(agency_key, root, os.urandom(DIGEST_BYTES), 1)
    assert caught.value.error_name == "LicenceRegistryAgencyRetired"
    anchor = registry.anchor_of(root)
    assert anchor is not None and anchor.agency_id == AGENCY_ID
    assert registry.agency(AGENCY_ID).retired


def test_retired_agency_cannot_be_changed_again(registry: Registry, governor: LocalAccount) -> None:
    registry.retire_agency(governor, AGENCY_ID)
    for change in (
        lambda: registry.retire_agency(governor, AGENCY_ID),
        lambda: registry.set_agency_types(governor, AGENCY_ID, {1}),
        lambda: registry.rotate_signer(governor, AGENCY_ID, key_for("fresh").address),
    ):
        with pytest.raises(RegistryRejected) as caught:
            change()
        assert caught.value.error_name == "LicenceRegistryAgencyRetired"


def test_rotated_away_key_cannot_anchor_but_earlier_anchors_stay(
    registry: Registry, agency_key: LocalAccount, chain, governor: LocalAccount
) -> None:
    earlier = new_root()
    registry.anchor(agency_key, earlier, 1, 10)
    new_key = key_for("agency-rotated")
    chain.fund(new_key.address, 10**18)
    registry.rotate_signer(agency_key, AGENCY_ID, new_key.address)

    with pytest.raises(RegistryUnauthorised) as caught:
        registry.anchor(agency_key, new_root(), 1, 10)
    assert caught.value.error_name == "LicenceRegistryNotAgency"
    registry.anchor(new_key, new_root(), 1, 10)
    earlier_anchor = registry.anchor_of(earlier)
    assert earlier_anchor is not None and earlier_anchor.agency_id == AGENCY_ID
    assert registry.agency_id_of(agency_key.address) is None
    assert registry.agency_id_of(new_key.address) == AGENCY_ID
    assert registry.agency(AGENCY_ID).signer == new_key.address


def test_rotated_away_key_cannot_change_statuses_and_new_key_can(
    registry: Registry, agency_key: LocalAccount, chain
) -> None:
    root, leaf = new_root(), os.urandom(DIGEST_BYTES)
    registry.anchor(agency_key, root, 1, 10)
    new_key = key_for("agency-rotated")
    chain.fund(new_key.address, 10**18)
    registry.rotate_signer(agency_key, AGENCY_ID, new_key.address)

    with pytest.raises(RegistryUnauthorised) as caught:
        registry.revoke(agency_key, root, leaf, 1)
    assert caught.value.error_name == "LicenceRegistryNotBatchIssuer"
    registry.revoke(new_key, root, leaf, 1)


def test_signer_key_can_never_be_reused(
    registry: Registry, governor: LocalAccount, agency_key: LocalAccount
) -> None:
    registry.rotate_signer(governor, AGENCY_ID, key_for("agency-rotated").address)
    with pytest.raises(RegistryRejected) as caught:
        registry.register_agency(governor, NEW_CODE, "新机关", agency_key.address, {1})
    assert caught.value.error_name == "LicenceRegistrySignerAlreadyUsed"
    assert caught.value.error_args == {"signer": agency_key.address}
    with pytest.raises(RegistryRejected) as caught:
        registry.rotate_signer(governor, OTHER_AGENCY_ID, agency_key.address)
    assert caught.value.error_name == "LicenceRegistrySignerAlreadyUsed"


def test_outsider_cannot_rotate_an_agency_key(registry: Registry, outsider: LocalAccount) -> None:
    with pytest.raises(RegistryUnauthorised) as caught:
        registry.rotate_signer(outsider, AGENCY_ID, outsider.address)
    assert caught.value.error_name == "LicenceRegistryNotSignerOrGovernor"
    assert caught.value.error_args == {"caller": outsider.address, "agencyId": AGENCY_ID}


def test_other_agency_cannot_rotate_a_key_it_does_not_hold(
    registry: Registry, other_agency_key: LocalAccount
) -> None:
    with pytest.raises(RegistryUnauthorised) as caught:
        registry.rotate_signer(other_agency_key, AGENCY_ID, key_for("x").address)
    assert caught.value.error_name == "LicenceRegistryNotSignerOrGovernor"


def test_other_agency_cannot_change_statuses_under_a_root_it_did_not_anchor(
    registry: Registry, agency_key: LocalAccount, other_agency_key: LocalAccount
) -> None:
    root = new_root()
    registry.anchor(agency_key, root, 1, 10)
    with pytest.raises(RegistryUnauthorised) as caught:
        registry.revoke(other_agency_key, root, os.urandom(DIGEST_BYTES), 1)
    assert caught.value.error_name == "LicenceRegistryNotBatchIssuer"
    assert caught.value.error_args == {"caller": other_agency_key.address, "root": root}


def test_outsider_cannot_change_statuses(
    registry: Registry, agency_key: LocalAccount, outsider: LocalAccount
) -> None:
    root = new_root()
    registry.anchor(agency_key, root, 1, 10)
    with pytest.raises(RegistryUnauthorised) as caught:
        registry.set_statuses(outsider, root, [os.urandom(DIGEST_BYTES)], 2, 1)
    assert caught.value.error_name == "LicenceRegistryNotBatchIssuer"


GOVERNOR_ONLY = {
    "register_agency": lambda r, s: r.register_agency(
        s, NEW_CODE, "新机关", key_for("n").address, {1}
    ),
    "set_agency_types": lambda r, s: r.set_agency_types(s, AGENCY_ID, {1, 2, 3}),
    "retire_agency": lambda r, s: r.retire_agency(s, AGENCY_ID),
}


@pytest.mark.parametrize("call", GOVERNOR_ONLY.values(), ids=GOVERNOR_ONLY.keys())
@pytest.mark.parametrize("who", ["agency_key", "outsider"])
def test_governor_only_calls_reject_everyone_else(
    registry: Registry, request: pytest.FixtureRequest, call, who: str
) -> None:
    sender: LocalAccount = request.getfixturevalue(who)
    with pytest.raises(RegistryUnauthorised) as caught:
        call(registry, sender)
    assert caught.value.error_name == "AccessControlUnauthorizedAccount"
    assert caught.value.error_args["account"] == sender.address
    assert caught.value.error_args["neededRole"] == registry.governor_role()


def test_agencies_get_sequential_ids_and_read_back(
    registry: Registry, governor: LocalAccount, agency_key: LocalAccount
) -> None:
    agency = registry.agency(AGENCY_ID)
    assert (agency.signer, agency.code, agency.name) == (
        agency_key.address,
        AGENCY_CODE,
        AGENCY_NAME,
    )
    assert agency.licence_types == {1, 2} and not agency.retired
    publish_types(registry, governor, {5, 20})
    new_signer = key_for("third-agency").address
    agency_id, sent = registry.register_agency(
        governor, NEW_CODE, "深圳市市场监督管理局", new_signer, {5, 20}
    )
    assert agency_id == 3 and registry.agency_count() == 3
    assert sent.event("AgencyRegistered").args == {
        "agencyId": 3,
        "signer": new_signer,
        "code": NEW_CODE,
        "name": "深圳市市场监督管理局",
    }
    authorised = [e.args for e in sent.events if e.name == "AgencyTypeAuthorised"]
    assert authorised == [
        {"agencyId": 3, "licenceType": 5, "authorised": True},
        {"agencyId": 3, "licenceType": 20, "authorised": True},
    ]
    assert registry.agency_id_of(new_signer) == 3
    assert registry.agency(3).licence_types == {5, 20}


@pytest.mark.parametrize(
    "code", ["", "9111010855138508", "91110108551385082QX", "统一社会信用代码一二三四五六"]
)
def test_agency_code_must_have_18_characters(
    registry: Registry, governor: LocalAccount, code: str
) -> None:
    with pytest.raises(RegistryRejected) as caught:
        registry.register_agency(governor, code, "机关", key_for("n").address, {1})
    assert caught.value.error_name == "LicenceRegistryInvalidAgencyCode"
    assert caught.value.error_args == {"code": code}


def test_agency_code_is_registered_once(registry: Registry, governor: LocalAccount) -> None:
    with pytest.raises(RegistryRejected) as caught:
        registry.register_agency(governor, AGENCY_CODE, "机关", key_for("n").address, {1})
    assert caught.value.error_name == "LicenceRegistryAgencyCodeTaken"
    assert caught.value.error_args == {"code": AGENCY_CODE, "agencyId": AGENCY_ID}


def test_unknown_agency_is_a_named_error(registry: Registry) -> None:
    with pytest.raises(RegistryRejected) as caught:
        registry.agency(99)
    assert caught.value.error_name == "LicenceRegistryUnknownAgency"


def test_changed_types_govern_later_anchors(
    registry: Registry, governor: LocalAccount, agency_key: LocalAccount
) -> None:
    sent = registry.set_agency_types(governor, AGENCY_ID, {2, 3})
    assert [e.args for e in sent.events if e.name == "AgencyTypeAuthorised"] == [
        {"agencyId": AGENCY_ID, "licenceType": 1, "authorised": False},
        {"agencyId": AGENCY_ID, "licenceType": 3, "authorised": True},
    ]
    assert registry.agency(AGENCY_ID).licence_types == {2, 3}
    registry.anchor(agency_key, new_root(), 3, 1)
    with pytest.raises(RegistryUnauthorised) as caught:
        registry.anchor(agency_key, new_root(), 1, 1)
    assert caught.value.error_name == "LicenceRegistryNotAuthorised"


def test_governance_events_carry_their_values(
    registry: Registry, governor: LocalAccount, agency_key: LocalAccount
) -> None:
    new_key = key_for("agency-rotated").address
    rotated = registry.rotate_signer(governor, AGENCY_ID, new_key)
    assert rotated.event("SignerRotated").args == {
        "agencyId": AGENCY_ID,
        "oldSigner": agency_key.address,
        "newSigner": new_key,
    }
    retired = registry.retire_agency(governor, AGENCY_ID)
    assert retired.event("AgencyRetired").args == {"agencyId": AGENCY_ID}


def test_rotated_away_key_cannot_rotate_again(registry: Registry, agency_key: LocalAccount) -> None:
    registry.rotate_signer(agency_key, AGENCY_ID, key_for("agency-rotated").address)
    with pytest.raises(RegistryUnauthorised) as caught:
        registry.rotate_signer(agency_key, AGENCY_ID, key_for("agency-rotated-twice").address)
    assert caught.value.error_name == "LicenceRegistryNotSignerOrGovernor"
    assert caught.value.error_args == {"caller": agency_key.address, "agencyId": AGENCY_ID}
