"""Wrapping batches and reading documents back: strict parsing with named errors."""

from __future__ import annotations

import copy
import hashlib
import json
import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st

from issuer.batch import encode_batch, wrap_batch
from issuer.catalogue import catalogue
from issuer.document import (
    MAX_DOCUMENT_BYTES,
    AnchorRef,
    FullDocumentWriter,
    loads_document,
    parse_document,
    proof_texts,
)
from issuer.errors import DocumentError, LicenceValidationError
from issuer.merkle import build_tree
from tests.samples import business_licence, food_business_licence

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
    assert "北京海淀第0号科技有限公司" in text
    assert json.loads(text)["fields"]["issuingAuthority"].endswith("市场监督管理局")


# ---- encode_batch: issuing's fast path gives the bytes to_bytes() gives -----------------


def _same_secrets(n):
    return [bytes([i % 251]) * 16 for i in range(n)]


@pytest.mark.parametrize("n", [1, 2, 3, 5, 9, 17])
def test_encode_batch_writes_the_bytes_to_bytes_writes(n):
    rows = [business_licence(i) for i in range(n)]
    del rows[0]["validUntil"]  # long term: a field absent
    rows[-1]["holderName"] = 'Quote " back\\slash é 𝄞 \u2028 名称'
    secrets = _same_secrets(n)
    wrapped = wrap_batch(BUSINESS, rows, chain_id=31337, registry=REGISTRY, secrets=secrets)
    encoded = encode_batch(BUSINESS, rows, chain_id=31337, registry=REGISTRY, secrets=secrets)
    assert encoded.root == wrapped.root
    assert encoded.licence_ids == [d.licence_id for d in wrapped.documents]
    assert encoded.documents == [d.to_bytes() for d in wrapped.documents]
    assert encoded.secrets == secrets


def test_encode_batch_of_another_type_and_a_lower_case_registry():
    food = catalogue().get("food-business-licence")
    rows = [food_business_licence(i) for i in range(4)]
    secrets = _same_secrets(4)
    registry = REGISTRY.lower()
    wrapped = wrap_batch(food, rows, chain_id=7, registry=registry, secrets=secrets)
    encoded = encode_batch(food, rows, chain_id=7, registry=registry, secrets=secrets)
    assert encoded.documents == [d.to_bytes() for d in wrapped.documents]


_valid_text = st.text(
    st.characters(codec="utf-8", exclude_categories=("Cc", "Cs")), min_size=1, max_size=60
).filter(lambda t: t == t.strip() and unicodedata.is_normalized("NFC", t))


@given(st.lists(_valid_text, min_size=1, max_size=6))
def test_encode_batch_equals_to_bytes_for_any_valid_text(names):
    rows = [business_licence(i, holderName=name) for i, name in enumerate(names)]
    secrets = _same_secrets(len(rows))
    wrapped = wrap_batch(BUSINESS, rows, chain_id=1, registry=REGISTRY, secrets=secrets)
    encoded = encode_batch(BUSINESS, rows, chain_id=1, registry=REGISTRY, secrets=secrets)
    assert encoded.documents == [d.to_bytes() for d in wrapped.documents]


@pytest.mark.parametrize("n", [1, 2, 3, 4, 5, 8, 9, 17])
def test_proof_texts_are_the_json_of_each_proof(n):
    tree = build_tree([bytes([i]) * 16 for i in range(n)])
    expected = [
        json.dumps(["0x" + p.hex() for p in tree.proof(i)], separators=(",", ":")).encode()
        for i in range(n)
    ]
    assert proof_texts(tree.levels) == expected


@given(st.integers(min_value=1, max_value=70), st.binary(min_size=0, max_size=40))
def test_batch_documents_in_c_are_what_write_and_proof_texts_give(n, field_bytes):
    tree = build_tree([hashlib.sha256(bytes([i, n])).digest()[:16] for i in range(n)])
    writer = FullDocumentWriter(BUSINESS, AnchorRef(31337, REGISTRY, tree.root, ()), "sha256-128")
    fields = [field_bytes + str(i).encode() for i in range(n)]
    secrets = _same_secrets(n)
    expected = [
        writer.write(f, secret, proof)
        for f, secret, proof in zip(fields, secrets, proof_texts(tree.levels), strict=True)
    ]
    assert writer.write_batch(fields, secrets, tree.levels) == expected


def test_batch_documents_refuse_a_tree_that_is_not_the_batchs():
    tree = build_tree([bytes([i]) * 16 for i in range(3)])
    writer = FullDocumentWriter(BUSINESS, AnchorRef(1, REGISTRY, tree.root, ()), "sha256-128")
    with pytest.raises(ValueError, match="leaves must be the licences"):
        writer.write_batch([b"a", b"b"], _same_secrets(2), tree.levels)
    with pytest.raises(ValueError, match="16 bytes of secret"):
        writer.write_batch([b"a", b"b", b"c"], _same_secrets(2), tree.levels)
    with pytest.raises(ValueError, match="16 bytes"):
        writer.write_batch([b"a", b"b"], _same_secrets(2), [[b"x" * 16, b"short"], [b"r" * 16]])


def test_fresh_secrets_are_distinct_and_full_length():
    encoded = encode_batch(
        BUSINESS, [business_licence(i) for i in range(50)], chain_id=1, registry=REGISTRY
    )
    assert len(set(encoded.secrets)) == 50
    assert {len(s) for s in encoded.secrets} == {16}
