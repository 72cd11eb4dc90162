"""The service and licence type versions it does not ship: loaded from its index (checked
against the registry's hash), served by GET /v1/catalogue with their state on chain, and
a version nobody published answered as "could not check" (422 type-unavailable), never
as a verdict."""

from __future__ import annotations

from issuer.batch import wrap_batch
from licence.catalogue import catalogue
from tests.samples import food_business_licence
from tests.verifier.test_type_loading import FOOD_V2, shipped_catalogue_only  # noqa: F401


def _v2_document(service, governor):
    service.registry.publish_licence_type(governor, FOOD_V2)
    batch = wrap_batch(
        FOOD_V2,
        [food_business_licence(0)],
        chain_id=service.registry.chain.chain_id,
        registry=service.registry.address,
    )
    service.registry.anchor(service.agency, batch.root, FOOD_V2.code, 1, type_version=2)
    return batch.documents[0].to_json()


def test_a_licence_of_a_version_published_after_start_verifies_valid(service, governor):
    raw = _v2_document(service, governor)
    assert not catalogue().has("food-business-licence", 2)
    answer = service.post("/v1/verifications", {"document": raw})
    assert answer.status_code == 200, answer.json()
    assert answer.json()["status"] == "VALID"
    assert catalogue().get("food-business-licence", 2).definition_hash == FOOD_V2.definition_hash


def test_a_version_the_registry_never_published_could_not_be_checked(service):
    raw = service.issue([food_business_licence(1)], "food-business-licence").documents[0]
    body = raw.to_json()
    body["typeVersion"] = 7
    answer = service.post("/v1/verifications", {"document": body})
    assert answer.status_code == 422
    problem = answer.json()
    assert problem["type"].endswith("/unusable-licence")
    assert problem["reason"] == "type-unavailable"
    assert "version 7" in problem["detail"] and "could not be checked" in problem["detail"]
    assert problem["status"] == 422  # a problem, no verdict (least of all TAMPERED)
    batch = service.post("/v1/verifications/batch", {"items": [{"document": body}]}).json()
    item = batch["items"][0]
    assert item["verdict"] is None and item["problem"]["reason"] == "type-unavailable"


def test_catalogue_says_each_versions_hash_and_whether_the_registry_published_it(service, governor):
    served = service.client.get("/v1/catalogue").json()["licenceTypes"]
    by_key = {(t["id"], t["version"]): t for t in served}
    food = by_key[("food-business-licence", 1)]
    shipped = catalogue().get("food-business-licence", 1)
    assert food["definitionHash"] == shipped.definition_hash.hex()
    assert food["published"] is True and food["publishedAt"] > 0
    assert food["publishedHash"] == food["definitionHash"]
    # The registry fixture publishes types 1-3 only.
    teacher = by_key[("teacher-certificate", 1)]
    assert teacher["published"] is False and teacher["publishedAt"] is None

    service.registry.publish_licence_type(governor, FOOD_V2)
    again = service.client.get("/v1/catalogue").json()["licenceTypes"]
    v2 = next(t for t in again if (t["id"], t["version"]) == ("food-business-licence", 2))
    assert v2["published"] is True
    assert v2["definitionHash"] == FOOD_V2.definition_hash.hex()
    assert [f["name"] for f in v2["fields"]] == list(FOOD_V2.field_names)


def test_a_service_refuses_a_catalogue_folder_copy_whose_hash_is_not_the_registrys(
    tmp_path, registry, agency_key, governor
):
    import json

    from tests.service.conftest import make_service
    from tests.verifier.test_type_loading import _food_v2

    folder = tmp_path / "types"
    folder.mkdir()
    (folder / "food-v2.json").write_text(
        json.dumps(_food_v2(label="附注"), ensure_ascii=False), "utf-8"
    )
    service = make_service(tmp_path, registry, agency_key, catalogue=folder)
    with service.client:
        raw = _v2_document(service, governor)
        answer = service.post("/v1/verifications", {"document": raw})
    assert answer.status_code == 422
    problem = answer.json()
    assert problem["reason"] == "type-unavailable"
    assert "food-v2.json" in problem["detail"]
    assert "0x" + FOOD_V2.definition_hash.hex() in problem["detail"]
    assert not catalogue().has("food-business-licence", 2)


def test_a_catalogue_url_that_is_not_https_is_refused_at_start_up(tmp_path):
    import pytest
    from pydantic import ValidationError

    from verifier.service.settings import Settings

    with pytest.raises(ValidationError, match="https"):
        Settings(home=tmp_path, catalogue_url="http://example.org/{code}/{version}.json")


def test_a_licence_of_a_type_this_service_never_shipped_is_loaded_by_its_id(service, governor):
    import copy

    from licence.catalogue_rules import parse_definition
    from tests.verifier.test_type_loading import FOOD_V1

    raw = copy.deepcopy(FOOD_V1)
    raw |= {"id": "harbour-food-licence", "code": 99}
    raw["name"] = {"zh": "港口食品经营许可证", "en": "Harbour food business licence"}
    new_type = parse_definition(raw)
    service.registry.publish_licence_type(governor, new_type)
    service.registry.set_agency_types(governor, 1, [1, 2, 99])
    batch = wrap_batch(
        new_type,
        [food_business_licence(3)],
        chain_id=service.registry.chain.chain_id,
        registry=service.registry.address,
    )
    service.registry.anchor(service.agency, batch.root, 99, 1, type_version=1)
    answer = service.post("/v1/verifications", {"document": batch.documents[0].to_json()})
    assert answer.status_code == 200, answer.json()
    assert answer.json()["status"] == "VALID"
    assert answer.json()["licenceTypeName"] == "港口食品经营许可证"
