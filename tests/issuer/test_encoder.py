"""Issuing's batch encoders (issuer/encoder.py, in C) give the bytes of the format's
Python definitions (licence/), on any text."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import sys
import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st

import issuer
from issuer import compiled
from issuer.batch import encode_batch, wrap_batch
from issuer.encoder import FullDocumentWriter, LicenceIds, proof_texts
from licence.catalogue import catalogue
from licence.digest import commitment, derive_salts, leaf_hash
from licence.document import AnchorRef
from licence.merkle import build_tree
from tests.samples import business_licence, food_business_licence

BUSINESS = catalogue().get("business-licence")
REGISTRY = "0x5FbDB2315678afecb367f032d93F642f64180aa3"


_NAMES = ["licenceNumber", "holderName", "validUntil", "名称", "\u20ac", "\r", 'q"']


@given(
    st.lists(
        st.tuples(
            st.binary(min_size=16, max_size=16),
            st.dictionaries(
                st.sampled_from(_NAMES),
                st.text(st.characters(codec="utf-8"), max_size=30),
                min_size=1,
            ),
        ),
        min_size=1,
        max_size=4,
    )
)
def test_batch_licence_ids_equal_the_reference_functions(licences):
    # The C encoder (issuer/_wrap.c) against the Python definitions, on any text:
    # quotes, backslashes, control characters, Chinese, astral characters.
    ids, members = LicenceIds("business-licence", _NAMES).encode(
        [fields for _, fields in licences], b"".join(secret for secret, _ in licences)
    )
    for (secret, fields), licence_id, member_text in zip(licences, ids, members, strict=True):
        present = {n: fields[n] for n in _NAMES if n in fields}
        salts = derive_salts(secret, list(present))
        commitments = {
            n: commitment(n, v, s) for (n, v), s in zip(present.items(), salts, strict=True)
        }
        assert licence_id == leaf_hash("business-licence", commitments)
        as_json = json.dumps(present, ensure_ascii=False, separators=(",", ":"))
        assert member_text == as_json[1:-1].encode("utf-8")


def test_batch_encoder_refuses_what_it_cannot_hash():
    encoder = LicenceIds("business-licence", ["holderName"])
    with pytest.raises(UnicodeEncodeError):
        encoder.encode([{"holderName": "a\ud800"}], bytes(16))
    with pytest.raises(TypeError, match="holderName"):
        encoder.encode([{"holderName": 7}], bytes(16))  # type: ignore[dict-item]
    with pytest.raises(ValueError, match="2 rows need 32 bytes of secrets, not 16"):
        encoder.encode([{"holderName": "a"}, {"holderName": "b"}], bytes(16))
    assert encoder.encode([], b"") == ([], [])


def test_without_the_compiled_extension_issuing_writes_the_same_documents(monkeypatch):
    # As if elicence were installed where issuer/_wrap.c could not be built.
    secrets = _same_secrets(3)
    rows = [business_licence(i) for i in range(3)]
    expected = wrap_batch(BUSINESS, rows, chain_id=1, registry=REGISTRY, secrets=secrets)
    monkeypatch.delattr(issuer, "_wrap", raising=False)
    monkeypatch.setitem(sys.modules, "issuer._wrap", None)
    compiled.available.cache_clear()
    try:
        assert not compiled.available()
        encoded = encode_batch(BUSINESS, rows, chain_id=1, registry=REGISTRY, secrets=secrets)
    finally:
        monkeypatch.undo()
        compiled.available.cache_clear()
    assert encoded.documents == [document.to_bytes() for document in expected.documents]
    assert encoded.root == expected.root


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


def test_every_document_of_a_batch_names_its_type_version_on_both_paths():
    # A version 2 of the type (as a catalogue loaded from the registry would hold): the
    # documents say which version they were issued under, in the compiled and Python
    # writers alike (FullDocumentWriter's head, which issuer/_wrap.c copies as it is).
    second = dataclasses.replace(BUSINESS, version=2)
    rows = [business_licence(i) for i in range(3)]
    secrets = _same_secrets(3)
    wrapped = wrap_batch(second, rows, chain_id=31337, registry=REGISTRY, secrets=secrets)
    encoded = encode_batch(second, rows, chain_id=31337, registry=REGISTRY, secrets=secrets)
    assert encoded.documents == [d.to_bytes() for d in wrapped.documents]
    for document in encoded.documents:
        assert json.loads(document)["typeVersion"] == 2
        assert document.startswith(
            b'{"format":"elicence/1","hashSuite":"sha256-128","type":"business-licence",'
            b'"typeVersion":2,"fields":{'
        )


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
