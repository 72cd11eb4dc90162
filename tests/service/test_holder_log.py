"""POST /v1/holder/verifications against callers who are not the holder: only the full
licence (its secret) proves holding; nobody can write history into another's licence;
API keys keep their type limits here too; and the query is itself audited."""

from __future__ import annotations

import copy

from licence.payload import encode_payload
from licence.presentation import present
from tests.samples import business_licence, food_business_licence
from verifier.service.audit import AuditLog

HOLDER_LOG = "/v1/holder/verifications"


def audit_of(service, licence_id: str | None = None):
    log = AuditLog(service.settings.service_dir / "audit.sqlite")
    try:
        return log.query(licence_id=licence_id)
    finally:
        log.close()


def holder_log(service, document, **kwargs):
    return service.post(HOLDER_LOG, {"document": document.to_json()}, **kwargs)


def test_a_presentation_does_not_prove_holding(service):
    batch = service.issue([business_licence(0)])
    document = batch.documents[0]
    service.verify(document, key=service.key("hz-approvals"), purpose="case-9")
    shown = present(document, ["legalRepresentative", "registeredAddress"])
    for body in ({"document": shown.to_json()}, {"qr": encode_payload(shown)}):
        answer = service.post(HOLDER_LOG, body)
        assert answer.status_code == 403, answer.text
        assert answer.json()["type"].endswith("/holding-not-proven")
        assert "case-9" not in answer.text and "hz-approvals" not in answer.text


def test_the_full_licence_shows_its_holder_every_client_and_purpose(service):
    batch = service.issue([business_licence(1)])
    document = batch.documents[0]
    service.verify(document, key=service.key("hz-approvals"), purpose="case-9")
    answer = service.post(HOLDER_LOG, {"qr": encode_payload(document)})  # the full QR payload
    assert answer.status_code == 200, answer.text
    rows = answer.json()["verifications"]
    assert [(r["client"], r["purpose"], r["operation"]) for r in rows] == [
        ("hz-approvals", "case-9", "verify"),
        ("anonymous", None, "holder-log"),
    ]


def test_tampered_documents_leave_no_history_under_the_licence_they_claim(service):
    batch = service.issue([business_licence(2), business_licence(3)])
    document = batch.documents[0]
    licence_id = "0x" + document.licence_id.hex()
    # From a presentation anyone has seen: the same commitments (so the same licence
    # id), a changed proof (TAMPERED), or a root of the forger's own (NOT_ANCHORED).
    shown = present(document, []).to_json()
    tampered = copy.deepcopy(shown)
    tampered["anchor"]["proof"] = ["0x" + "11" * 16]
    own_root = copy.deepcopy(shown)
    own_root["anchor"]["root"], own_root["anchor"]["proof"] = licence_id, []
    for forged, status in ((tampered, "TAMPERED"), (own_root, "NOT_ANCHORED")):
        answer = service.post(
            "/v1/verifications", {"document": forged, "purpose": "fake-history"}
        ).json()
        assert (answer["status"], answer["licenceId"]) == (status, licence_id)
    batch_answer = service.post(
        "/v1/verifications/batch", {"items": [{"document": tampered}], "purpose": "fake-history"}
    )
    assert batch_answer.status_code == 200
    answer = holder_log(service, document)
    assert answer.status_code == 200
    assert "fake-history" not in answer.text
    assert [r["operation"] for r in answer.json()["verifications"]] == ["holder-log"]
    # The attempts are still audited, filed under no licence.
    unproven = [r for r in audit_of(service) if r.purpose == "fake-history"]
    assert [r.verdict for r in unproven] == ["TAMPERED", "NOT_ANCHORED", "TAMPERED"]
    assert all(r.licence_id == "unproven:" + licence_id for r in unproven)


def test_a_key_limited_to_other_types_may_not_read_the_holder_log(service):
    batch = service.issue([business_licence(4)])
    key = service.key("food-only", types=frozenset({"food-business-licence"}))
    answer = holder_log(service, batch.documents[0], key=key)
    assert answer.status_code == 403
    assert answer.json()["type"].endswith("/not-permitted")
    food = service.issue([food_business_licence(0)], "food-business-licence")
    assert holder_log(service, food.documents[0], key=key).status_code == 200


def test_the_holder_query_is_audited_and_so_are_refused_attempts(service):
    batch = service.issue([business_licence(5)])
    document = batch.documents[0]
    licence_id = "0x" + document.licence_id.hex()
    key = service.key("curious")
    refused = service.post(HOLDER_LOG, {"document": present(document, []).to_json()}, key=key)
    assert refused.status_code == 403
    assert holder_log(service, document).status_code == 200
    rows = audit_of(service, licence_id)
    assert [(r.client, r.operation, r.verdict, r.purpose) for r in rows] == [
        ("curious", "holder-log", "HOLDING_NOT_PROVEN", None),
        ("anonymous", "holder-log", "VALID", None),
    ]
