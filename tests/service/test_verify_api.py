"""POST /v1/verifications as an approval system sees it: verdicts, freshness, problems."""

from __future__ import annotations

import io

import pytest

from issuer.qr import qr_png
from licence.payload import encode_payload
from licence.presentation import present
from licence.reasons import Reason
from tests.samples import business_licence

PROBLEM = "application/problem+json"


def test_valid_licence_gets_every_part_of_the_verdict(service):
    batch = service.issue([business_licence(i) for i in range(3)])
    answer = service.verify(batch.documents[0])
    assert answer.status_code == 200
    body = answer.json()
    assert body["status"] == "VALID"
    assert [c["name"] for c in body["checks"]] == [
        "integrity",
        "anchor",
        "issuer",
        "seal",
        "status",
        "validity",
    ]
    assert all(c["outcome"] == "passed" and c["reason"] for c in body["checks"])
    assert body["licenceType"] == "business-licence" and body["licenceTypeName"] == "营业执照"
    assert body["fields"]["holderName"] == "深圳福田第0号科技有限公司"
    assert "legalRepresentative" in body["hidden"] and body["withheld"] == []
    assert body["issuer"]["name"] == "深圳市福田区市场监督管理局"
    assert body["issuer"]["code"] == "11440304007556212D"
    assert body["anchor"]["root"] == "0x" + batch.root.hex()
    assert (
        body["anchor"]["transaction"].startswith("0x") and len(body["anchor"]["transaction"]) == 66
    )
    assert body["blockHeight"] >= body["anchor"]["blockNumber"]
    assert body["statusReason"] is None and body["checkedAt"]


def test_full_document_as_json_is_verified_like_its_qr_code(service):
    batch = service.issue([business_licence(1)])
    answer = service.post("/v1/verifications", {"document": batch.documents[0].to_json()})
    assert answer.status_code == 200
    assert answer.json()["status"] == "VALID"
    # Anonymous callers are not shown personal fields unless the operator says so.
    assert answer.json()["withheld"] == ["legalRepresentative"]


def test_revocation_is_seen_by_the_next_verification(service):
    batch = service.issue([business_licence(i) for i in range(2)])
    assert service.verify(batch.documents[1]).json()["status"] == "VALID"
    document = batch.documents[1]
    service.registry.revoke(
        service.agency, document.anchor.root, document.licence_id, int(Reason.COURT_ORDER)
    )
    body = service.verify(document).json()
    assert body["status"] == "REVOKED"
    assert body["statusReason"]
    assert [c["outcome"] for c in body["checks"]][4] == "failed"  # status


def test_altered_field_is_a_tampered_verdict_not_an_error(service):
    batch = service.issue([business_licence(2)])
    raw = batch.documents[0].to_json()
    raw["fields"]["registeredCapital"] = "9999万元人民币"
    answer = service.post("/v1/verifications", {"document": raw})
    assert answer.status_code == 200
    assert answer.json()["status"] == "TAMPERED"


def test_licence_never_anchored_is_not_anchored(service):
    from issuer.batch import wrap_batch
    from licence.catalogue import catalogue

    batch = wrap_batch(
        catalogue().get("business-licence"),
        [business_licence(3)],
        chain_id=service.registry.chain.chain_id,
        registry=service.registry.address,
    )
    assert service.verify(batch.documents[0]).json()["status"] == "NOT_ANCHORED"


def test_photo_of_the_qr_code_gets_the_same_verdict(service, tmp_path):
    batch = service.issue([business_licence(4)])
    path = tmp_path / "licence.png"
    qr_png(encode_payload(present(batch.documents[0], [])), path)
    answer = service.client.post(
        "/v1/verifications/image",
        files={"image": ("licence.png", path.read_bytes(), "image/png")},
        data={"purpose": "窗口核验"},
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["status"] == "VALID"


def test_image_without_a_qr_code_is_a_problem_naming_the_reason(service):
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("L", (200, 200), 255).save(buffer, format="PNG")
    answer = service.client.post(
        "/v1/verifications/image", files={"image": ("blank.png", buffer.getvalue(), "image/png")}
    )
    assert answer.status_code == 422
    assert answer.headers["content-type"] == PROBLEM
    assert answer.json()["reason"] == "no-qr"


@pytest.mark.parametrize(
    ("body", "status", "kind", "words"),
    [
        (b'{"qr": ', 400, "malformed-request", "not JSON"),
        (b'{"qr": "EL1:A", "qr": "EL1:B"}', 400, "malformed-request", "appears twice"),
        (b"\xff\xfe", 400, "malformed-request", "UTF-8"),
        (b'{"qr": 5}', 422, "invalid-request", "the request does not follow the schema"),
        (b'{"qr": "EL1:X", "document": {}}', 422, "invalid-request", "exactly one"),
        (b'{"qr": "EL1:X", "colour": "red"}', 422, "invalid-request", "schema"),
        (b'{"qr": "EL1:%%%"}', 422, "unusable-licence", "base45"),
        (b'{"document": {"format": "elicence/9"}}', 422, "unusable-licence", "document"),
    ],
    ids=[
        "truncated",
        "duplicate-key",
        "not-utf8",
        "wrong-type",
        "both",
        "unknown-member",
        "bad-payload",
        "bad-document",
    ],
)
def test_bad_requests_are_problems_that_say_what_is_wrong(service, body, status, kind, words):
    answer = service.post("/v1/verifications", body)
    assert answer.status_code == status
    assert answer.headers["content-type"] == PROBLEM
    problem = answer.json()
    assert problem["type"].endswith("/" + kind)
    assert problem["status"] == status and problem["title"]
    assert words in problem["detail"] or any(
        words in e["message"] for e in problem.get("errors", [])
    )


def test_schema_error_names_the_member_at_fault(service):
    answer = service.post("/v1/verifications", {"qr": "EL1:X", "purpose": "x" * 201})
    assert answer.status_code == 422
    assert [e["path"] for e in answer.json()["errors"]] == ["purpose"]


def test_body_over_the_limit_is_413(service):
    answer = service.post("/v1/verifications", {"qr": "EL1:" + "A" * 200_000})
    assert answer.status_code == 413
    assert answer.headers["content-type"] == PROBLEM
    assert "131072 bytes" in answer.json()["detail"]


def test_chunked_body_over_the_limit_is_413_before_it_is_all_read(service):
    def chunks():
        yield b'{"qr": "EL1:'
        for _ in range(40):
            yield b"A" * 4096  # 160 KiB in all, no Content-Length to refuse it by

    answer = service.client.post(
        "/v1/verifications", content=chunks(), headers={"Content-Type": "application/json"}
    )
    assert answer.status_code == 413
    assert answer.headers["content-type"] == PROBLEM
    assert answer.headers["connection"] == "close"


def test_the_caller_is_checked_before_the_body(service):
    # A wrong key is a 401 whatever the body: nothing about the body reaches an outsider.
    answer = service.client.post(
        "/v1/verifications",
        content=b"not json",
        headers={"Content-Type": "text/plain", "Authorization": "Bearer elk_unknown"},
    )
    assert answer.status_code == 401
    assert answer.headers["www-authenticate"] == 'Bearer realm="elicence"'


def test_a_bug_is_a_500_problem_and_is_logged_without_the_body(service, monkeypatch, caplog):
    # No input makes the service fail; a fault injected into verification stands for a bug.
    batch = service.issue([business_licence(6)])

    async def broken(*args, **kwargs):
        raise RuntimeError("a bug")

    monkeypatch.setattr(service.client.app.state.services.verification, "verify_one", broken)
    answer = service.verify(batch.documents[0])
    assert answer.status_code == 500
    assert answer.headers["content-type"] == PROBLEM
    assert answer.json()["type"].endswith("/internal")
    assert "unexpected error on POST /v1/verifications" in caplog.text
    assert "EL1:" not in caplog.text
    metrics = service.client.get("/metrics").text
    assert 'route="/v1/verifications",status="500"' in metrics


def test_form_body_is_415(service):
    answer = service.client.post("/v1/verifications", data={"qr": "EL1:X"})
    assert answer.status_code == 415
    assert answer.json()["type"].endswith("/unsupported-media-type")


def test_unknown_route_is_a_404_problem(service):
    answer = service.client.get("/v1/licences")
    assert answer.status_code == 404
    assert answer.headers["content-type"] == PROBLEM
    assert "/v1/licences" in answer.json()["detail"]


def test_catalogue_lists_types_with_labels_and_personal_fields(service):
    body = service.client.get("/v1/catalogue").json()
    business = next(t for t in body["licenceTypes"] if t["id"] == "business-licence")
    assert business["name"]["zh"] == "营业执照" and business["code"] == 1
    representative = next(f for f in business["fields"] if f["name"] == "legalRepresentative")
    assert representative["personal"] is True
    assert representative["label"] == {"zh": "法定代表人", "en": "Legal representative"}
    assert "unifiedSocialCreditCode" in business["mandatoryDisclosure"]


def test_health_readiness_and_metrics(service):
    batch = service.issue([business_licence(5)])
    service.verify(batch.documents[0])
    assert service.client.get("/healthz").json() == {"status": "ok"}
    ready = service.client.get("/readyz").json()
    assert ready["status"] == "ready"
    assert ready["blockHeight"] == service.registry.chain.block_number()
    metrics = service.client.get("/metrics").text
    assert 'elicence_verdicts_total{status="VALID"} 1.0' in metrics
    assert 'route="/v1/verifications"' in metrics
    assert "elicence_http_request_duration_seconds_bucket" in metrics
    assert f"elicence_index_height {float(ready['blockHeight'])}" in metrics


def test_web_page_is_served_at_the_root_and_api_routes_still_win(tmp_path, registry, agency_key):
    from tests.service.conftest import make_service

    web = tmp_path / "web"
    web.mkdir()
    (web / "index.html").write_text("<h1>核验</h1>", encoding="utf-8")
    (web / "healthz").write_text("a file that must not shadow the route")
    made = make_service(tmp_path, registry, agency_key, web_root=web)
    with made.client:
        assert "核验" in made.client.get("/").text
        assert made.client.get("/healthz").json() == {"status": "ok"}
        assert made.client.get("/openapi.json").json()["info"]["title"]
        assert made.client.get("/docs").status_code == 200
        assert made.client.get("/no-such-page").headers["content-type"] == PROBLEM
