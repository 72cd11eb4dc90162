"""The sm3-128 hash suite (国密 SM3, GB/T 32905-2016): the hash and HMAC it rests on, and
licences, presentations, Merkle trees and EL1: payloads made with it.

A second suite must not weaken the first: a document says which suite it was made with,
and a document whose suite was changed no longer leads to its root; a suite this
installation cannot compute is an error of its own, never a broken licence.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import zlib

import cbor2
import pytest

import licence.digest as digest
from issuer.batch import wrap_batch
from licence.catalogue import catalogue
from licence.digest import (
    DEFAULT_SUITE,
    SM3_SUITE,
    derive_salts,
    hash_function,
    salt,
    salt_function,
    suite_named,
)
from licence.document import loads_document
from licence.errors import DocumentError, PayloadError, UnsupportedHashSuite
from licence.merkle import build_tree, fold_proof
from licence.payload import DICTIONARY, base45_decode, decode_payload, encode_payload
from licence.presentation import present
from tests.samples import business_licence

REGISTRY = "0x5FbDB2315678afecb367f032d93F642f64180aa3"
BUSINESS = catalogue().get("business-licence")

# GB/T 32905-2016 appendix A: example 1 ("abc") and example 2 (the 64-byte message).
GBT_32905 = [
    (b"abc", "66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0"),
    (b"abcd" * 16, "debe9ff92275b8a138604889c18e5a4d6fdb70e5387e5765293dcba39c0c5732"),
]


@pytest.mark.parametrize(("message", "expected"), GBT_32905, ids=["abc", "64-bytes"])
def test_sm3_gives_the_standards_examples_and_the_suite_keeps_their_first_16_bytes(
    message, expected
):
    assert hashlib.new("sm3", message).hexdigest() == expected
    assert hash_function(SM3_SUITE)(message) == bytes.fromhex(expected)[:16]


def test_the_suite_hash_carries_nothing_from_one_message_to_the_next():
    # It copies one primed object; every padding boundary of a 64-byte block is crossed
    # (55, 56, 63, 64, 119, 120, ...). The page's independent SM3 is held to the same
    # lengths in tests/web/test_sm3_page.py.
    sm3_128 = hash_function(SM3_SUITE)
    for length in range(200):
        message = bytes(range(200))[:length]
        assert sm3_128(message) == hashlib.new("sm3", message).digest()[:16], length


@pytest.mark.parametrize("secret_length", [16, 64, 65, 100])
def test_sm3_salts_are_hmac_sm3_truncated(secret_length):
    secret = bytes(range(secret_length))
    names = ["holderName", "名称", ""]
    salts = derive_salts(secret, names, SM3_SUITE)
    for name, made in zip(names, salts, strict=True):
        assert made == hmac.digest(secret, name.encode(), "sm3")[:16]
        assert salt(secret, name, SM3_SUITE) == made


def test_the_two_suites_give_different_salts_commitments_ids_and_roots():
    rows = [business_licence(i) for i in range(3)]
    secrets = [bytes([i]) * 16 for i in range(3)]
    made = {
        suite: wrap_batch(
            BUSINESS, rows, chain_id=1, registry=REGISTRY, secrets=secrets, suite=suite
        )
        for suite in (DEFAULT_SUITE, SM3_SUITE)
    }
    sha, sm3 = made[DEFAULT_SUITE], made[SM3_SUITE]
    assert sha.root != sm3.root
    for a, b in zip(sha.documents, sm3.documents, strict=True):
        assert a.licence_id != b.licence_id
        assert set(a.commitments.values()).isdisjoint(b.commitments.values())
        assert b.suite == SM3_SUITE and b.computed_root() == sm3.root


def test_an_sm3_document_names_its_suite_and_reads_back_the_same():
    batch = wrap_batch(
        BUSINESS, [business_licence(1)], chain_id=1, registry=REGISTRY, suite="sm3-128"
    )
    document = batch.documents[0]
    assert document.to_json()["hashSuite"] == "sm3-128"
    again = loads_document(document.to_bytes())
    assert again == document and again.computed_root() == batch.root


def test_a_document_whose_suite_is_changed_no_longer_leads_to_its_root():
    batch = wrap_batch(
        BUSINESS, [business_licence(1)], chain_id=1, registry=REGISTRY, suite="sm3-128"
    )
    raw = batch.documents[0].to_json()
    raw["hashSuite"] = "sha256-128"
    forged = loads_document(json.dumps(raw, ensure_ascii=False))
    assert forged.computed_root() != batch.root


def test_a_presentation_of_an_sm3_licence_hides_fields_and_still_leads_to_the_root():
    batch = wrap_batch(
        BUSINESS,
        [business_licence(i) for i in range(5)],
        chain_id=1,
        registry=REGISTRY,
        suite=SM3_SUITE,
    )
    shown = present(batch.documents[3], [])
    assert shown.suite == SM3_SUITE and shown.hidden
    assert shown.licence_id == batch.documents[3].licence_id
    assert shown.computed_root() == batch.root


@pytest.mark.parametrize("count", [1, 2, 3, 5, 17])
def test_sm3_merkle_proofs_fold_to_the_sm3_root_only(count):
    leaves = [hash_function(SM3_SUITE)(b"leaf %d" % i) for i in range(count)]
    tree = build_tree(leaves, SM3_SUITE)
    for index, leaf in enumerate(leaves):
        assert fold_proof(leaf, tree.proof(index), SM3_SUITE) == tree.root
    if count > 1:
        assert build_tree(leaves).root != tree.root


def test_an_sm3_payload_carries_its_suite_in_the_version_byte_and_reads_back():
    batch = wrap_batch(
        BUSINESS, [business_licence(1)], chain_id=1, registry=REGISTRY, suite="sm3-128"
    )
    for document in (batch.documents[0], present(batch.documents[0], [])):
        payload = encode_payload(document)
        again = decode_payload(payload, chain_id=1, registry=REGISTRY)
        assert again == document and again.suite == SM3_SUITE
        el1 = encode_payload(document, layout=1)
        assert decode_payload(el1) == document
    # Item [0] names the suite: the layout is the same, so no byte is added.
    items = cbor2.loads(zlib.decompress(base45_decode(el1[len("EL1:") :])))
    assert items[0] == 2 and len(items) == 8
    inflater = zlib.decompressobj(-15, zdict=DICTIONARY)
    items = cbor2.loads(inflater.decompress(base45_decode(payload[len("EL2:") :])))
    assert items[0] == 2 and len(items) == 6


@pytest.mark.parametrize(
    ("name", "suite"), [("sm3", SM3_SUITE), ("sm3-128", SM3_SUITE), ("sha256", DEFAULT_SUITE)]
)
def test_short_and_full_suite_names(name, suite):
    assert suite_named(name) == suite


@pytest.mark.parametrize("name", ["md5", "sm3-256", "SM3", "", "toString"])
def test_a_suite_this_installation_lacks_is_its_own_named_error(name):
    with pytest.raises(UnsupportedHashSuite, match="unsupported hash suite") as raised:
        suite_named(name)
    assert isinstance(raised.value, DocumentError) and raised.value.path == "hashSuite"
    with pytest.raises(UnsupportedHashSuite):
        salt_function(name)


def test_an_installation_without_sm3_reports_sm3_documents_and_payloads_as_unsupported(
    monkeypatch,
):
    batch = wrap_batch(
        BUSINESS, [business_licence(1)], chain_id=1, registry=REGISTRY, suite="sm3-128"
    )
    text, payload = batch.documents[0].to_bytes(), encode_payload(batch.documents[0])
    el1 = encode_payload(batch.documents[0], layout=1)
    # As on an OpenSSL built without SM3: the suite is simply not there.
    monkeypatch.delitem(digest.SUITES, SM3_SUITE)
    with pytest.raises(UnsupportedHashSuite, match="unsupported hash suite 'sm3-128'"):
        loads_document(text)
    for read in (
        lambda: decode_payload(payload, chain_id=1, registry=REGISTRY),
        lambda: decode_payload(el1),
    ):
        with pytest.raises(PayloadError) as raised:
            read()
        assert raised.value.reason == UnsupportedHashSuite.code == "unsupported-hash-suite"
