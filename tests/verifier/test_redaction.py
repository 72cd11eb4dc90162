"""A caller limited to some fields learns nothing of the others from any part of a
verdict: not from `fields`, not from the checks' reasons, not from `issuer`.

The scan is of the whole answer as sent, for the value of every withheld field, so a
new reason that quotes a field without declaring it fails here."""

from __future__ import annotations

import json

import pytest

from licence.payload import encode_payload
from licence.presentation import present
from tests.samples import business_licence
from tests.service.conftest import make_service
from verifier.checks import verify
from verifier.verdict import Check, CheckName, Outcome, Status

LIMITED = frozenset({"licenceNumber", "holderName"})

CASES = {
    "VALID": business_licence(80),
    "EXPIRED": business_licence(
        81, dateOfEstablishment="2010-03-01", validFrom="2011-04-02", validUntil="2021-12-31"
    ),
    "NOT_YET_VALID": business_licence(82, validFrom="2098-01-02", validUntil="2099-03-04"),
    "ISSUER_NOT_AUTHORISED": business_licence(83, issuingAuthority="上海市浦东新区市场监督管理局"),
}


@pytest.fixture
def service(tmp_path, registry, agency_key):
    made = make_service(tmp_path, registry, agency_key)
    with made.client:
        yield made


def _withheld_values(fields: dict[str, str]) -> dict[str, str]:
    return {name: value for name, value in fields.items() if name not in LIMITED}


@pytest.mark.parametrize("status", list(CASES))
def test_limited_key_learns_no_withheld_value_from_any_part_of_the_answer(service, status):
    limited = service.key(f"limited-{status.lower()}", fields=LIMITED)
    full = service.key(f"full-{status.lower()}")
    document = service.issue([CASES[status]]).documents[0]
    body = {"document": document.to_json()}

    answer = service.post("/v1/verifications", body, key=limited)
    assert answer.status_code == 200, answer.text
    verdict = answer.json()
    assert verdict["status"] == status
    assert set(verdict["fields"]) == LIMITED
    sent = answer.content.decode("utf-8")
    for name, value in _withheld_values(document.fields).items():
        assert value not in sent, f"{name} ({value}) leaks into the answer"
    # The same checks, with the same outcomes, as a caller who sees everything.
    unrestricted = service.post("/v1/verifications", body, key=full).json()
    assert unrestricted["status"] == status
    assert [(c["name"], c["outcome"]) for c in verdict["checks"]] == [
        (c["name"], c["outcome"]) for c in unrestricted["checks"]
    ]


def test_limited_key_gets_the_agency_by_its_registry_identity_only(service):
    limited = service.key("limited-agency", fields=LIMITED)
    document = service.issue([business_licence(84)]).documents[0]
    verdict = service.post(
        "/v1/verifications", {"document": document.to_json()}, key=limited
    ).json()
    issuer = verdict["issuer"]
    assert issuer["name"] is None  # the licence's issuingAuthority, as written
    assert issuer["code"] and issuer["address"].startswith("0x") and issuer["agencyId"] == 1


def test_caller_who_sees_the_fields_gets_the_full_reasons(service):
    full = service.key("full-reasons")
    expired = service.issue([CASES["EXPIRED"]]).documents[0]
    verdict = service.post("/v1/verifications", {"document": expired.to_json()}, key=full).json()
    reasons = {c["name"]: c["reason"] for c in verdict["checks"]}
    assert "expired on 2021-12-31" in reasons["validity"]
    assert verdict["issuer"]["name"] == expired.fields["issuingAuthority"]


def test_anonymous_caller_sees_validity_reasons_but_not_personal_fields(service):
    document = service.issue([CASES["EXPIRED"]]).documents[0]
    shown = present(document, ["legalRepresentative"])
    verdict = service.post("/v1/verifications", {"qr": encode_payload(shown)}).json()
    assert verdict["status"] == "EXPIRED"
    assert "2021-12-31" in json.dumps(verdict)  # validity dates are not personal
    assert document.fields["legalRepresentative"] not in json.dumps(verdict, ensure_ascii=False)


@pytest.mark.parametrize("status", list(CASES))
def test_every_reason_that_quotes_a_field_declares_it(world, status):
    """In process: each check's reason quotes only fields it names in `reveals`."""
    document = world.issue([CASES[status]]).documents[0]
    verdict = verify(document, world.source)
    assert verdict.status.value == status
    for check in verdict.checks:
        declared = {document.fields.get(name) for name in check.reveals}
        for name, value in document.fields.items():
            # (Two fields may hold the same text: validFrom and dateOfEstablishment.)
            if value in check.reason:
                assert value in declared, (check.name, name)
            if check.redacted is not None:
                assert value not in check.redacted or value not in declared, (check.name, name)


def test_a_check_that_reveals_fields_without_a_redacted_reason_is_refused():
    with pytest.raises(ValueError, match="unredacted"):
        Check(
            CheckName.VALIDITY,
            Outcome.FAILED,
            "expired on 2021-12-31",
            Status.EXPIRED,
            reveals=frozenset({"validUntil"}),
        )
