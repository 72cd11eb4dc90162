"""The Python definitions reproduce the shared test vectors (tests/vectors/*.json).

The vectors are written by scripts/make_vectors; any implementation of elicence/1 (the
web page's JS, the C encoder) can check itself against the same files.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from pathlib import Path
from typing import Any

import pytest

from licence.canonical import canonical_json
from licence.catalogue import catalogue
from licence.digest import SUITES, commitment, derive_salts, leaf_hash, salt
from licence.document import parse_document
from licence.merkle import build_tree, fold_proof
from licence.payload import decode_payload, encode_payload

VECTORS = Path(__file__).parents[1] / "vectors"


def cases(name: str) -> list[dict[str, Any]]:
    loaded: list[dict[str, Any]] = json.loads((VECTORS / f"{name}.json").read_text("utf-8"))[
        "cases"
    ]
    return loaded


def unhex(text: str) -> bytes:
    assert text.startswith("0x")
    return bytes.fromhex(text[2:])


@pytest.mark.parametrize("case", cases("canonical"), ids=lambda c: c["name"])
def test_canonical_form_is_the_vectors(case):
    data = canonical_json(case["value"])
    assert data == case["canonical"].encode("utf-8") == unhex(case["canonicalHex"])


_HASHLIB_NAMES = {"sha256-128": "sha256", "sm3-128": "sm3"}


@pytest.mark.parametrize("case", cases("hashes"), ids=lambda c: f"{c['hashSuite']} {c['name']}")
def test_each_suites_hash_and_hmac_are_the_vectors(case):
    name, message = _HASHLIB_NAMES[case["hashSuite"]], unhex(case["messageHex"])
    if "hash" in case:
        assert hashlib.new(name, message).digest() == unhex(case["hash"])
        assert SUITES[case["hashSuite"]](message) == unhex(case["hash"])[:16]
    else:
        assert hmac.digest(unhex(case["keyHex"]), message, name) == unhex(case["hmac"])


@pytest.mark.parametrize(
    "case", cases("commitments"), ids=lambda c: f"{c['type']} {c['hashSuite']}"
)
def test_salts_commitments_and_licence_id_are_the_vectors(case):
    secret, suite = unhex(case["secret"]), case["hashSuite"]
    names = list(case["fields"])
    assert [s.hex() for s in derive_salts(secret, names, suite)] == [
        unhex(case["salts"][n]).hex() for n in names
    ]
    for name, value in case["fields"].items():
        field_salt = unhex(case["salts"][name])
        assert salt(secret, name, suite) == field_salt
        assert commitment(name, value, field_salt, suite) == unhex(case["commitments"][name])
    made = {name: unhex(c) for name, c in case["commitments"].items()}
    assert leaf_hash(case["type"], made, suite) == unhex(case["licenceId"])
    # Every field of the type that the licence has is committed to, in no particular order.
    assert set(made) <= set(catalogue().get(case["type"]).field_names)


@pytest.mark.parametrize(
    "case", cases("merkle"), ids=lambda c: f"{len(c['leaves'])} leaves {c['hashSuite']}"
)
def test_merkle_roots_and_proofs_are_the_vectors(case):
    leaves, suite = [unhex(leaf) for leaf in case["leaves"]], case["hashSuite"]
    tree = build_tree(leaves, suite)
    assert tree.root == unhex(case["root"])
    for index, proof in enumerate(case["proofs"]):
        assert tree.proof(index) == [unhex(p) for p in proof]
        assert fold_proof(leaves[index], [unhex(p) for p in proof], suite) == tree.root


@pytest.mark.parametrize("case", cases("payload"), ids=lambda c: c["name"])
def test_payload_decodes_to_the_vectors_document(case):
    document = decode_payload(case["payload"], chain_id=case["chainId"], registry=case["registry"])
    assert document.to_json() == case["document"]
    assert document == parse_document(case["document"])
    assert document.licence_id == unhex(case["licenceId"])
    assert document.computed_root() == unhex(case["root"]) == document.anchor.root
    # Writers compress at level 9; with the same zlib the payload is the same text.
    layout = 1 if case["payload"].startswith("EL1:") else 2
    assert encode_payload(document, layout=layout) == case["payload"]


def test_the_payload_vectors_hold_el2_and_the_el1_that_old_qr_codes_carry():
    prefixes = [case["payload"][:4] for case in cases("payload")]
    assert prefixes.count("EL2:") == prefixes.count("EL1:") == 8


def test_every_vector_file_is_checked():
    assert {p.stem for p in VECTORS.glob("*.json")} == {
        "canonical",
        "hashes",
        "commitments",
        "merkle",
        "payload",
        "seal",  # tests/licence/test_seal_vectors.py
    }
