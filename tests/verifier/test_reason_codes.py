"""Every check's reason is a stable code with parameters, worded in Chinese and English
from one table: the API's English `reason` is the table's English words, and the Chinese
words need nothing the verdict does not carry."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import re

import pytest

from licence.document import AnchorRef, loads_document
from licence.reasons import Reason
from tests.samples import business_licence
from verifier.checks import verify
from verifier.verdict import REASON_TEXTS, Verdict, reason_table, word

_PLACEHOLDER = re.compile(r"\{(\w+)(?:\|(\w+))?\}")
_FILTERS = {"", "type", "statusReason", "fields", "time"}
_LANGUAGE_FREE = re.compile(r"0x[0-9a-fA-F]+|[0-9A-Z]{18}|\d{4}-\d\d-\d\dT[\d:+]+")


def _verdicts(world) -> dict[str, Verdict]:
    """A verdict for every way a check can go."""
    batch = world.issue([business_licence(200 + i) for i in range(6)])
    docs = batch.documents
    found: dict[str, Verdict] = {"valid": verify(docs[0], world.source)}
    raw = json.loads(json.dumps(docs[1].to_json()))
    raw["fields"]["registeredCapital"] = "10000万元人民币"
    found["tampered"] = verify(loads_document(json.dumps(raw).encode()), world.source)
    raw["fields"]["unifiedSocialCreditCode"] = "91440304700000001A"
    found["tampered-field"] = verify(loads_document(json.dumps(raw).encode()), world.source)
    found["not-anchored"] = verify(world.wrap([business_licence(299)]).documents[0], world.source)
    elsewhere = AnchorRef(
        docs[0].anchor.chain_id, "0x" + "00" * 19 + "01", docs[0].anchor.root, docs[0].anchor.proof
    )
    found["other-registry"] = verify(dataclasses.replace(docs[0], anchor=elsewhere), world.source)
    world.registry.revoke(world.agency, batch.root, docs[2].licence_id, Reason.FRAUD)
    found["revoked"] = verify(docs[2], world.source)
    world.registry.suspend(world.agency, batch.root, docs[3].licence_id, Reason.COURT_ORDER)
    found["suspended"] = verify(docs[3], world.source)
    found["expired"] = verify(docs[4], world.source, today=dt.date(2099, 1, 1))
    found["not-yet"] = verify(docs[4], world.source, today=dt.date(2001, 1, 1))
    elsewhere_named = business_licence(298, issuingAuthority="佛山市南海区市场监督管理局")
    found["other-authority"] = verify(world.issue([elsewhere_named]).documents[0], world.source)
    no_end = world.issue([{k: v for k, v in business_licence(297).items() if k != "validUntil"}])
    found["no-end"] = verify(no_end.documents[0], world.source)
    return found


def test_every_template_uses_known_filters_and_both_languages():
    for code, text in REASON_TEXTS.items():
        for language in (text.zh, text.en):
            assert {f for _, f in _PLACEHOLDER.findall(language)} <= _FILTERS, code
        assert re.search(r"[\u4e00-\u9fff]", text.zh), f"{code} has no Chinese words"


def test_page_table_is_the_source_table():
    table = reason_table()
    assert {c: (t["zh"], t["en"]) for c, t in table["checks"].items()} == {
        c: (t.zh, t.en) for c, t in REASON_TEXTS.items()
    }
    assert table["statusReasons"][str(int(Reason.FRAUD))]["en"] == "obtained by fraud or bribery"


@pytest.fixture
def verdicts(world) -> dict[str, Verdict]:
    return _verdicts(world)


def test_every_reason_is_its_codes_english_words_and_reads_in_chinese(verdicts):
    codes = set()
    for case, verdict in verdicts.items():
        for check in verdict.to_json()["checks"]:
            assert check["code"] in REASON_TEXTS, (case, check)
            codes.add(check["code"])
            assert check["reason"] == word(check["code"], check["params"], "en"), case
            chinese = word(check["code"], check["params"], "zh")
            plain = _LANGUAGE_FREE.sub(" ", chinese)
            assert not re.search(r"[a-z]{3,}", plain), (case, check["code"], chinese)
    assert {
        "integrity.ok",
        "integrity.mismatch",
        "integrity.mismatch-fields",
        "anchor.ok",
        "anchor.not-found",
        "anchor.other-registry",
        "issuer.ok",
        "issuer.other-authority",
        "status.ok",
        "status.revoked",
        "status.suspended",
        "validity.ok",
        "validity.ok-no-end",
        "validity.expired",
        "validity.not-yet",
        "skipped",
    } <= codes


def test_a_caller_limited_in_fields_gets_the_redacted_code_and_no_field_in_params(verdicts):
    expired = verdicts["expired"]
    until = expired.fields["validUntil"]
    shown = expired.to_json(visible={"licenceNumber"})
    validity = next(c for c in shown["checks"] if c["name"] == "validity")
    assert validity["code"] == "validity.expired-redacted"
    assert until not in json.dumps(validity)
    full = next(c for c in expired.to_json()["checks"] if c["name"] == "validity")
    assert (full["code"], full["params"]["validUntil"]) == ("validity.expired", until)


def test_revoked_status_reason_code_is_a_parameter(verdicts):
    status = verdicts["revoked"].to_json()["checks"][4]
    assert status["code"] == "status.revoked"
    assert status["params"]["reason"] == int(Reason.FRAUD)
    assert word(status["code"], status["params"], "zh").endswith("以欺骗、贿赂等不正当手段取得")
