"""Wrapping batches and reading documents back: strict parsing with named errors."""

from __future__ import annotations

import copy
import json

import pytest

from issuer.batch import wrap_batch
from issuer.errors import LicenceValidationError
from licence.catalogue import catalogue
from licence.document import MAX_DOCUMENT_BYTES, loads_document, parse_document
from licence.errors import DocumentError
from tests.samples import business_licence

BUSINESS = catalogue().get("business-licence")
REGISTRY = "0x5FbDB2315678afecb367f032d93F642f64180aa3"


def _batch(n=3):
    rows = [business_licence(i) for i in range(n)]
    return wrap_batch(BUSINESS, rows, chain_id=31337, registry=REGISTRY)


def test_each_document_leads_to_the_batch_root():
    batch = _batch(5)
    assert [d.computed_root() for d in batch.documents] == [batch.root] * 5
    assert [d.licence_id for d in batch.documents] == list(batch.tree.leaves)


def test_document_survives_a_json_round_trip():
    document = _batch().documents[1]
    again = loads_document(document.to_bytes())
    assert again.licence_id == document.licence_id
    assert again.to_json() == document.to_json()


def test_document_names_format_suite_chain_and_registry():
    raw = _batch().documents[0].to_json()
    assert raw["format"] == "elicence/1" and raw["hashSuite"] == "sha256-128"
    assert raw["anchor"]["chainId"] == 31337 and raw["anchor"]["registry"] == REGISTRY


def test_salts_differ_between_licences_with_equal_fields():
    rows = [business_licence(1), business_licence(2, holderName=business_licence(1)["holderName"])]
    batch = wrap_batch(BUSINESS, rows, chain_id=1, registry=REGISTRY)
    a, b = batch.documents
    assert a.commitments["holderName"] != b.commitments["holderName"]


def test_a_batch_with_bad_rows_reports_every_row_and_issues_nothing():
    rows = [
        business_licence(0),
        business_licence(1, unifiedSocialCreditCode="91110108551385082A"),
        business_licence(2, validFrom="yesterday"),
        business_licence(3, licenceNumber=business_licence(0)["licenceNumber"]),
    ]
    with pytest.raises(LicenceValidationError) as caught:
        wrap_batch(BUSINESS, rows, chain_id=1, registry=REGISTRY)
    found = [(p.row, p.path) for p in caught.value.problems]
    assert found == [(2, "unifiedSocialCreditCode"), (3, "validFrom"), (4, "licenceNumber")]
    assert "row 4: licenceNumber: repeats row 1" in str(caught.value)


def _mutated(mutate):
    raw = copy.deepcopy(_batch().documents[0].to_json())
    mutate(raw)
    return raw


def _set(path, value):
    def mutate(raw):
        target = raw
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value

    return mutate


def _delete(path):
    def mutate(raw):
        target = raw
        for key in path[:-1]:
            target = target[key]
        del target[path[-1]]

    return mutate


@pytest.mark.parametrize(
    ("mutate", "path", "words"),
    [
        (_set(["format"], "elicence/2"), "format", "unsupported format 'elicence/2'"),
        (_set(["hashSuite"], "sm2"), "hashSuite", "unsupported hash suite"),
        (_set(["type"], "driving-licence"), "type", "unknown licence type"),
        (_set(["type"], 7), "type", "must be a string, not a number"),
        (_delete(["fields", "holderName"]), "fields.holderName", "neither disclosed nor hidden"),
        (_set(["fields", "holderName"], 42), "fields.holderName", "must be a string"),
        (_set(["fields", "nickname"], "x"), "fields.nickname", "not a field of 营业执照"),
        (_set(["fields"], []), "fields", "must be a JSON object, not a list"),
        (_delete(["secret"]), "secret", "missing"),
        (_set(["secret"], "0x1234"), "secret", "32 lowercase hex digits"),
        (_set(["secret"], "0x" + "G" * 32), "secret", "32 lowercase hex digits"),
        (_delete(["anchor"]), "anchor", "is missing"),
        (_delete(["anchor", "root"]), "anchor.root", "is missing"),
        (_set(["anchor", "root"], "12" * 16), "anchor.root", "0x followed by 32"),
        (_set(["anchor", "proof"], ["0xzz"]), "anchor.proof[0]", "hex digits"),
        (_set(["anchor", "proof"], "0x00"), "anchor.proof", "must be a list"),
        (_set(["anchor", "chainId"], "31337"), "anchor.chainId", "positive whole number"),
        (_set(["anchor", "chainId"], True), "anchor.chainId", "positive whole number"),
        (_set(["anchor", "chainId"], 0), "anchor.chainId", "positive whole number"),
        (_set(["anchor", "registry"], "0x1234"), "anchor.registry", "40 hex digits"),
        (_set(["anchor", "registry"], REGISTRY[:-1] + "A"), "anchor.registry", "EIP-55"),
        (_set(["anchor", "extra"], 1), "anchor.extra", "not a member"),
        (_set(["signature"], "x"), "signature", "not a member"),
        (_set(["salts"], {}), "salts", "no salts or hidden"),
    ],
)
def test_malformed_document_error_names_the_member(mutate, path, words):
    with pytest.raises(DocumentError) as caught:
        parse_document(_mutated(mutate))
    assert caught.value.path == path
    assert words in caught.value.reason


def test_document_must_be_an_object():
    with pytest.raises(DocumentError, match="must be a JSON object, not a list"):
        parse_document([1, 2])


@pytest.mark.parametrize(
    ("text", "words"),
    [
        (b"{not json", "not JSON"),
        (b"\xff\xfe{}", "not UTF-8"),
        (b'{"format": NaN}', "NaN is not a JSON number"),
        (b'{"format": "a", "format": "b"}', "appears twice"),
    ],
)
def test_unreadable_text_is_a_named_error(text, words):
    with pytest.raises(DocumentError, match=words):
        loads_document(text)


def test_oversized_document_is_refused_before_parsing():
    with pytest.raises(DocumentError, match="limit is"):
        loads_document(b" " * (MAX_DOCUMENT_BYTES + 1))


def test_utf8_bom_is_accepted():
    document = _batch().documents[0]
    assert loads_document(b"\xef\xbb\xbf" + document.to_bytes()).licence_id == document.licence_id


def test_written_documents_keep_chinese_readable():
    text = _batch().documents[0].to_bytes().decode("utf-8")
    assert "深圳福田第0号科技有限公司" in text
    assert json.loads(text)["fields"]["issuingAuthority"].endswith("市场监督管理局")
