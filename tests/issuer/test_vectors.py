"""Issuing's batch encoders reproduce the shared test vectors (tests/vectors/*.json).

Run on both of issuing's paths (tests/issuer/conftest.py): the compiled one
(issuer/_wrap.c) and the Python one, as tests/licence/test_vectors.py runs the format's
definitions and tests/web/test_js_vectors.py the web page's code.
"""

from __future__ import annotations

import json

import pytest

from issuer.encoder import FullDocumentWriter, LicenceIds
from licence.catalogue import catalogue
from licence.document import AnchorRef
from licence.merkle import build_tree
from tests.licence.test_vectors import cases, unhex

REGISTRY = "0x5FbDB2315678afecb367f032d93F642f64180aa3"


@pytest.mark.parametrize("case", cases("commitments"), ids=lambda c: c["licenceId"])
def test_batch_encoder_gives_the_vectors_licence_ids(case):
    kind = catalogue().get(case["type"])
    encoder = LicenceIds(kind.id, kind.field_names, case["hashSuite"])
    ids, members = encoder.encode([case["fields"]], unhex(case["secret"]))
    assert ids == [unhex(case["licenceId"])]
    present = {name: case["fields"][name] for name in kind.field_names if name in case["fields"]}
    assert json.loads(b"{" + members[0] + b"}") == present


def test_a_batch_of_every_vector_licence_gives_their_ids_in_order():
    by_type: dict[tuple[str, str], list[dict[str, object]]] = {}
    for case in cases("commitments"):
        by_type.setdefault((case["type"], case["hashSuite"]), []).append(case)
    for (type_id, suite), group in by_type.items():
        kind = catalogue().get(type_id)
        ids, _ = LicenceIds(kind.id, kind.field_names, suite).encode(
            [case["fields"] for case in group],  # type: ignore[misc]
            b"".join(unhex(str(case["secret"])) for case in group),
        )
        assert ids == [unhex(str(case["licenceId"])) for case in group]


@pytest.mark.parametrize(
    "case", cases("merkle"), ids=lambda c: f"{len(c['leaves'])}-leaves-{c['hashSuite']}"
)
def test_batch_documents_carry_the_vectors_proofs_and_root(case):
    leaves = [unhex(leaf) for leaf in case["leaves"]]
    tree = build_tree(leaves, case["hashSuite"])
    assert tree.root == unhex(case["root"])
    kind = catalogue().get("business-licence")
    writer = FullDocumentWriter(kind, AnchorRef(1, REGISTRY, tree.root, ()), case["hashSuite"])
    secrets = [bytes([index]) * 16 for index in range(len(leaves))]
    documents = writer.write_batch([b'"holderName":"x"'] * len(leaves), secrets, tree.levels)
    for document, proof in zip(documents, case["proofs"], strict=True):
        anchor = json.loads(document)["anchor"]
        assert anchor["proof"] == proof
        assert anchor["root"] == case["root"]
