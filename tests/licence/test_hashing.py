"""Canonical form, commitments, leaves and Merkle trees, with worked examples.

The worked examples pin the exact bytes of docs/format.md: a second implementation
that reproduces them agrees with this one.
"""

from __future__ import annotations

import hashlib
import hmac

import pytest
from hypothesis import given
from hypothesis import strategies as st

from licence.canonical import canonical_json
from licence.digest import (
    commitment,
    derive_salts,
    hash_function,
    leaf_body_reference,
    leaf_hash,
    salt,
)
from licence.errors import DocumentError
from licence.merkle import build_tree, fold_proof, node_hash

SECRET = bytes(range(16))


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ({"b": 1, "a": 2}, b'{"a":2,"b":1}'),  # keys sorted
        ({"a": {"d": 1, "c": 2}}, b'{"a":{"c":2,"d":1}}'),  # at every depth
        (["名称", "杭州"], '["名称","杭州"]'.encode()),  # Chinese stays UTF-8
        (["a\nb", 'q"'], b'["a\\nb","q\\""]'),  # short escapes
        (["\x01"], b'["\\u0001"]'),  # other control characters as \u00XX
        ({"\u20ac": 1, "\r": 2}, '{"\\r":2,"\u20ac":1}'.encode()),  # UTF-16 order
        (1.0, b"1"),  # ECMAScript number form
    ],
)
def test_canonical_json_table(value, expected):
    assert canonical_json(value) == expected


def test_salt_is_hmac_sha256_of_the_field_name():
    assert salt(SECRET, "holderName") == hmac.new(SECRET, b"holderName", "sha256").digest()[:16]
    assert salt(SECRET, "holderName") != salt(SECRET, "licenceNumber")


def test_commitment_worked_example():
    # secret 000102...0f; the values below are what docs/format.md's rules give.
    field_salt = salt(SECRET, "holderName")
    assert field_salt.hex() == "2c5d6572ac9cd63213fadc49dbbc8519"
    expected = hashlib.sha256(
        b"\x02" + field_salt + '["holderName","杭州某公司"]'.encode()
    ).digest()[:16]
    assert commitment("holderName", "杭州某公司", field_salt) == expected
    assert expected.hex() == "0b38c89facf67877b1fbbaf29891a2e8"


def test_leaf_worked_example():
    commitments = {"licenceNumber": b"\x11" * 16, "holderName": b"\x22" * 16}
    body = (
        '{"commitments":{"holderName":"0x'
        + "22" * 16
        + '","licenceNumber":"0x'
        + "11" * 16
        + '"},"format":"elicence/1","hashSuite":"sha256-128","type":"business-licence"}'
    )
    expected = hashlib.sha256(b"\x00" + body.encode()).digest()[:16]
    assert leaf_hash("business-licence", commitments) == expected
    assert expected.hex() == "737b6fddb36cb1765e1911efcd33779e"


def test_key_order_of_commitments_does_not_change_the_leaf():
    a = {"x": b"\x01" * 16, "y": b"\x02" * 16}
    b = {"y": b"\x02" * 16, "x": b"\x01" * 16}
    assert leaf_hash("business-licence", a) == leaf_hash("business-licence", b)


def test_unicode_values_commit_by_code_points():
    field_salt = salt(SECRET, "holderName")
    assert commitment("holderName", "杭州", field_salt) != commitment(
        "holderName", "杭洲", field_salt
    )


def test_unknown_hash_suite_is_a_named_error():
    with pytest.raises(DocumentError, match="unsupported hash suite 'md5'"):
        hash_function("md5")


def _leaves(n: int) -> list[bytes]:
    return [hashlib.sha256(i.to_bytes(4, "big")).digest()[:16] for i in range(n)]


@pytest.mark.parametrize("n", [1, 2, 3, 4, 5, 8, 9, 17, 33, 1000])
def test_every_proof_leads_to_the_root(n):
    leaves = _leaves(n)
    tree = build_tree(leaves)
    for i, leaf in enumerate(leaves):
        assert fold_proof(leaf, tree.proof(i)) == tree.root


@pytest.mark.parametrize(
    ("n", "proof_lengths"),
    [
        (1, [0]),
        (2, [1, 1]),
        (3, [2, 2, 1]),  # the odd leaf moves up unchanged
        (5, [3, 3, 3, 3, 1]),  # 2^2 + 1
        (9, [4] * 8 + [1]),  # 2^3 + 1
    ],
)
def test_proof_lengths_table(n, proof_lengths):
    tree = build_tree(_leaves(n))
    assert [len(tree.proof(i)) for i in range(n)] == proof_lengths


def test_one_leaf_tree_root_is_the_leaf():
    leaf = _leaves(1)[0]
    assert build_tree([leaf]).root == leaf


def test_two_leaf_root_worked_example():
    a, b = _leaves(2)
    low, high = sorted([a, b])
    assert build_tree([a, b]).root == hashlib.sha256(b"\x01" + low + high).digest()[:16]
    assert node_hash(a, b) == node_hash(b, a)


def test_a_proof_from_another_leaf_leads_elsewhere():
    leaves = _leaves(9)
    tree = build_tree(leaves)
    assert fold_proof(leaves[0], tree.proof(1)) != tree.root


def test_an_inner_node_cannot_pose_as_a_leaf():
    # A "leaf" equal to an inner node with a shortened proof would give the root only if
    # leaves and nodes were hashed alike; the 0x00/0x01 prefixes make that meaningless
    # because a licence id is always the hash of 0x00 || canonical JSON.
    leaves = _leaves(4)
    tree = build_tree(leaves)
    inner = tree.levels[1][0]
    assert fold_proof(inner, tree.proof(0)[1:]) == tree.root  # the structure allows it...
    assert inner not in leaves  # ...but no document can have an inner node as its id


def test_empty_tree_is_refused():
    with pytest.raises(ValueError, match="at least one leaf"):
        build_tree([])


@given(st.lists(st.binary(min_size=16, max_size=16), min_size=1, max_size=70))
def test_any_leaf_set_proves_every_member(leaves):
    tree = build_tree(leaves)
    assert all(fold_proof(leaf, tree.proof(i)) == tree.root for i, leaf in enumerate(leaves))


@given(
    st.binary(min_size=16, max_size=16),
    st.lists(st.text(st.characters(codec="utf-8"), max_size=20), min_size=1, max_size=12),
)
def test_derived_salts_are_truncated_hmac_sha256(secret, names):
    expected = [hmac.new(secret, n.encode(), "sha256").digest()[:16] for n in names]
    assert derive_salts(secret, names) == expected


@given(
    st.dictionaries(
        st.text(st.characters(codec="utf-8"), min_size=1, max_size=12),
        st.binary(min_size=16, max_size=16),
        min_size=1,
        max_size=12,
    ),
    st.text(st.characters(codec="utf-8"), min_size=1, max_size=20),
)
def test_fast_leaf_hash_equals_the_reference_canonical_form(commitments, licence_type):
    reference = hashlib.sha256(b"\x00" + leaf_body_reference(licence_type, commitments))
    assert leaf_hash(licence_type, commitments) == reference.digest()[:16]


@given(st.text(st.characters(codec="utf-8"), max_size=60), st.binary(min_size=16, max_size=16))
def test_fast_commitment_equals_the_reference_canonical_form(value, field_salt):
    reference = hashlib.sha256(b"\x02" + field_salt + canonical_json(["holderName", value]))
    assert commitment("holderName", value, field_salt) == reference.digest()[:16]
