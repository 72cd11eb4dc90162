"""tests/vectors/seal.json: the agency seals of the shared vectors verify with
licence/seal.py, their messages are seal_message's bytes, and the sealed payload vectors
carry those seals (so a second implementation can check its seal verification and its
payload item 8 against the same bytes)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from licence import seal
from licence.document import LicenceDocument, parse_document
from licence.payload import decode_payload

VECTORS = Path(__file__).resolve().parents[1] / "vectors"


def cases(name: str) -> list[dict]:
    return json.loads((VECTORS / f"{name}.json").read_text(encoding="utf-8"))["cases"]


def b(text: str) -> bytes:
    return bytes.fromhex(text.removeprefix("0x"))


@pytest.mark.parametrize("case", cases("seal"), ids=lambda c: c["name"])
def test_each_seal_vector_verifies_and_names_its_message(case):
    assert seal.public_key(b(case["privateKey"])) == b(case["publicKey"])
    message = seal.seal_message(case["chainId"], b(case["registry"]), b(case["root"]))
    assert message == b(case["message"])
    seal.verify(b(case["publicKey"]), message, b(case["seal"]))
    altered = bytearray(b(case["seal"]))
    altered[5] ^= 1
    with pytest.raises(seal.SealMismatch):
        seal.verify(b(case["publicKey"]), message, bytes(altered))


def test_the_sealed_payload_vectors_carry_the_seal_of_their_root():
    seals = {c["root"]: c["seal"] for c in cases("seal")}
    sealed = [c for c in cases("payload") if c["name"].startswith("sealed")]
    assert len(sealed) == 8  # EL2: and EL1:, each in both suites
    for case in sealed:
        document = read(case)
        assert document == parse_document(case["document"])
        assert document.anchor.seal == b(seals[case["root"]])


def test_the_unsealed_payload_vectors_are_still_there_and_unsealed():
    unsealed = [c for c in cases("payload") if not c["name"].startswith("sealed")]
    assert [c["name"] for c in unsealed] == [
        "full licence",
        "presentation",
        "full licence (sm3-128)",
        "presentation (sm3-128)",
        "full licence (EL1:)",
        "presentation (EL1:)",
        "full licence (sm3-128) (EL1:)",
        "presentation (sm3-128) (EL1:)",
    ]
    assert all(read(c).anchor.seal is None for c in unsealed)


def read(case: dict) -> LicenceDocument:
    """The vector's payload, read with the deployment it names (EL2: carries none)."""
    return decode_payload(case["payload"], chain_id=case["chainId"], registry=case["registry"])
