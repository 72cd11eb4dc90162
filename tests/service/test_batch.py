"""POST /v1/verifications/batch: one matter, several licences (一件事一次办)."""

from __future__ import annotations

from licence.payload import encode_payload
from licence.presentation import present
from licence.reasons import Reason
from tests.samples import business_licence, food_business_licence


def qr(document):
    return {"qr": encode_payload(present(document, []))}


def test_matching_licences_of_every_required_type_satisfy_the_matter(service):
    business = service.issue([business_licence(1)])
    food = service.issue([food_business_licence(1)], "food-business-licence")
    answer = service.post(
        "/v1/verifications/batch",
        {
            "items": [qr(business.documents[0]), qr(food.documents[0])],
            "requiredTypes": ["business-licence", "food-business-licence"],
            "purpose": "开办餐饮店",
        },
    )
    assert answer.status_code == 200
    body = answer.json()
    assert body["satisfied"] is True and body["reasons"] == []
    assert [i["verdict"]["status"] for i in body["items"]] == ["VALID", "VALID"]


def test_missing_type_is_named(service):
    business = service.issue([business_licence(1)])
    body = service.post(
        "/v1/verifications/batch",
        {
            "items": [qr(business.documents[0])],
            "requiredTypes": ["business-licence", "food-business-licence"],
        },
    ).json()
    assert body["satisfied"] is False
    assert [(r["code"], r["licenceType"]) for r in body["reasons"]] == [
        ("missing-type", "food-business-licence")
    ]


def test_licences_of_different_holders_are_a_mismatch(service):
    business = service.issue([business_licence(1)])
    food = service.issue([food_business_licence(2)], "food-business-licence")
    body = service.post(
        "/v1/verifications/batch", {"items": [qr(business.documents[0]), qr(food.documents[0])]}
    ).json()
    assert body["satisfied"] is False
    mismatch = [r for r in body["reasons"] if r["code"] == "holder-mismatch"]
    assert len(mismatch) == 1 and mismatch[0]["items"] == [1]


def test_mixed_verdicts_name_the_invalid_items(service):
    batch = service.issue(
        [business_licence(1), business_licence(1, licenceNumber="110108999999999999")]
    )
    revoked = batch.documents[1]
    service.registry.revoke(
        service.agency, revoked.anchor.root, revoked.licence_id, int(Reason.COURT_ORDER)
    )
    body = service.post(
        "/v1/verifications/batch",
        {"items": [qr(batch.documents[0]), qr(revoked), {"qr": "EL1:%%%"}]},
    ).json()
    assert body["satisfied"] is False
    items = body["items"]
    assert items[0]["verdict"]["status"] == "VALID"
    assert items[1]["verdict"]["status"] == "REVOKED"
    assert items[2]["verdict"] is None and items[2]["problem"]["reason"] == "base45"
    invalid = next(r for r in body["reasons"] if r["code"] == "invalid-item")
    assert invalid["items"] == [1, 2]


def test_more_than_100_items_is_a_schema_error(service):
    answer = service.post("/v1/verifications/batch", {"items": [{"qr": "EL1:X"}] * 101})
    assert answer.status_code == 422
    assert answer.json()["errors"][0]["path"] == "items"


def test_unknown_required_type_is_a_schema_error(service):
    answer = service.post(
        "/v1/verifications/batch", {"items": [{"qr": "EL1:X"}], "requiredTypes": ["passport"]}
    )
    assert answer.status_code == 422
    assert answer.json()["errors"][0]["path"] == "requiredTypes.0"
