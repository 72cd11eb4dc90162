"""API keys, least privilege, quotas, purposes and the audit log, as callers and the
operator see them; and that no licence field reaches the audit log or the service log."""

from __future__ import annotations

import logging
import time

from tests.samples import business_licence, food_business_licence
from tests.service.conftest import make_service
from verifier.service.apikeys import KEY_RECHECK_S, ApiKeyStore
from verifier.service.audit import AuditLog


def audit_of(service):
    # Read as `elicence audit` would, from another connection: an answer leaves only
    # once its record is written.
    log = AuditLog(service.settings.service_dir / "audit.sqlite")
    try:
        return log.query()
    finally:
        log.close()


def test_unknown_key_is_refused_with_a_bearer_challenge(service):
    batch = service.issue([business_licence(0)])
    answer = service.verify(batch.documents[0], key="elk_" + "x" * 43)
    assert answer.status_code == 401
    assert answer.headers["www-authenticate"].startswith("Bearer")
    assert answer.json()["type"].endswith("/unauthenticated")


def test_malformed_authorization_header_is_refused(service):
    batch = service.issue([business_licence(0)])
    answer = service.post(
        "/v1/verifications", {"qr": "EL1:X"}, headers={"Authorization": "Basic dXNlcg=="}
    )
    assert answer.status_code == 401
    del batch


def test_key_revoked_by_another_process_is_refused_within_the_recheck_time(service):
    batch = service.issue([business_licence(0)])
    key = service.key("county-approvals")
    assert service.verify(batch.documents[0], key=key).status_code == 200
    store = ApiKeyStore(service.settings.service_dir / "apikeys.sqlite")
    store.revoke("county-approvals")
    store.close()
    time.sleep(KEY_RECHECK_S)  # issue 17 allows up to one second on every replica
    answer = service.verify(batch.documents[0], key=key)
    assert answer.status_code == 401
    assert answer.json()["type"].endswith("/unauthenticated")


def test_key_limited_to_types_may_not_verify_another_type(service):
    food = service.issue([food_business_licence(0)], "food-business-licence")
    key = service.key("business-only", types=frozenset({"business-licence"}))
    answer = service.verify(food.documents[0], key=key)
    assert answer.status_code == 403
    assert "business-licence" in answer.json()["detail"]


def test_key_limited_to_fields_sees_only_those_and_the_same_verdict(service):
    batch = service.issue([business_licence(0)])
    document = batch.documents[0]
    key = service.key("minimal", fields=frozenset({"licenceNumber", "validUntil"}))
    full = service.post("/v1/verifications", {"document": document.to_json()}).json()
    limited = service.post("/v1/verifications", {"document": document.to_json()}, key=key).json()
    assert limited["status"] == full["status"] == "VALID"
    # The same outcomes; reasons quoting withheld fields are redacted (tests/verifier/
    # test_redaction.py).
    assert [(c["name"], c["outcome"]) for c in limited["checks"]] == [
        (c["name"], c["outcome"]) for c in full["checks"]
    ]
    assert set(limited["fields"]) == {"licenceNumber", "validUntil"}
    assert "legalRepresentative" in limited["withheld"]
    assert "holderName" in limited["withheld"]
    # (The anonymous caller is not shown the personal field either.)
    assert set(limited["withheld"]) | set(limited["fields"]) == set(full["fields"]) | set(
        full["withheld"]
    )
    assert "张三" not in str(limited)


def test_anonymous_callers_over_the_rate_get_429_with_retry_after(tmp_path, registry, agency_key):
    slow = make_service(tmp_path, registry, agency_key, anonymous_rate=0.01, anonymous_burst=2)
    with slow.client:
        batch = slow.issue([business_licence(0)])
        statuses = [slow.verify(batch.documents[0]).status_code for _ in range(3)]
        assert statuses == [200, 200, 429]
        refused = slow.verify(batch.documents[0])
        assert int(refused.headers["retry-after"]) >= 1
        assert refused.json()["type"].endswith("/rate-limited")
        # A key has its own quota, untouched by the anonymous one.
        key = slow.key("approvals")
        assert slow.verify(batch.documents[0], key=key).status_code == 200


def test_a_key_over_its_own_rate_gets_429(service):
    batch = service.issue([business_licence(0)])
    key = service.key("trickle", rate=0.001)
    statuses = [service.verify(batch.documents[0], key=key).status_code for _ in range(3)]
    assert statuses[0] == 200 and statuses[-1] == 429


def test_purpose_and_client_are_recorded_in_the_audit_log(service):
    batch = service.issue([business_licence(0), business_licence(1)])
    key = service.key("hz-approvals")
    service.verify(batch.documents[0], key=key, purpose="审批-2026-000123")
    service.verify(batch.documents[1])
    records = audit_of(service)
    assert [(r.client, r.purpose, r.verdict) for r in records] == [
        ("hz-approvals", "审批-2026-000123", "VALID"),
        ("anonymous", None, "VALID"),
    ]
    assert records[0].licence_id == "0x" + batch.documents[0].licence_id.hex()
    assert records[0].licence_type == "business-licence"
    assert records[0].block_height == service.registry.chain.block_number()


def test_no_licence_field_or_key_reaches_the_audit_log_or_the_service_log(service, caplog):
    batch = service.issue([business_licence(7)])
    document = batch.documents[0]
    key = service.key("watchful")
    with caplog.at_level(logging.DEBUG):
        service.post("/v1/verifications", {"document": document.to_json()}, key=key)
        service.verify(document)
        audit_of(service)
    assert "elicence.service" in {r.name for r in caplog.records}
    log_text = caplog.text
    audit_bytes = b"".join(
        p.read_bytes() for p in (service.settings.service_dir).glob("audit.sqlite*")
    )
    for value in document.fields.values():
        assert value not in log_text
        assert value.encode() not in audit_bytes
    assert key not in log_text


def test_holder_learns_who_verified_their_licence(service):
    batch = service.issue([business_licence(0)])
    document = batch.documents[0]
    service.verify(document, key=service.key("hz-approvals"), purpose="case-9")
    service.verify(document)
    answer = service.post("/v1/holder/verifications", {"document": document.to_json()})
    assert answer.status_code == 200
    body = answer.json()
    assert body["licenceId"] == "0x" + document.licence_id.hex()
    assert [(v["client"], v["purpose"], v["operation"]) for v in body["verifications"]] == [
        ("hz-approvals", "case-9", "verify"),
        ("anonymous", None, "verify"),
        ("anonymous", None, "holder-log"),  # this very query
    ]


def test_holder_log_needs_a_document_that_proves_holding(service):
    batch = service.issue([business_licence(0)])
    raw = batch.documents[0].to_json()
    raw["fields"]["holderName"] = "别人的公司"
    answer = service.post("/v1/holder/verifications", {"document": raw})
    assert answer.status_code == 403
    assert answer.json()["type"].endswith("/holding-not-proven")
