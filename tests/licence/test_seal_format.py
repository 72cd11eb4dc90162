"""The seal in the format: `anchor.seal` in documents, item 8 of the EL1 payload, kept
by presentations; documents and payloads without a seal read as before."""

from __future__ import annotations

import zlib

import base45
import cbor2
import pytest

from issuer.batch import wrap_batch
from licence.catalogue import catalogue
from licence.document import LicenceDocument, loads_document, parse_document
from licence.errors import DocumentError, PayloadError
from licence.payload import decode_payload
from licence.payload import encode_payload as encode_any_payload
from licence.presentation import present
from tests.samples import business_licence

REGISTRY = "0x5FbDB2315678afecb367f032d93F642f64180aa3"
BUSINESS = catalogue().get("business-licence")
SEAL = bytes(range(64))


@pytest.fixture(scope="module")
def sealed() -> LicenceDocument:
    rows = [business_licence(i) for i in range(3)]
    return wrap_batch(
        BUSINESS, rows, chain_id=1337, registry=REGISTRY, sealer=lambda root: SEAL
    ).documents[1]


@pytest.fixture(scope="module")
def unsealed() -> LicenceDocument:
    rows = [business_licence(i) for i in range(3)]
    return wrap_batch(BUSINESS, rows, chain_id=1337, registry=REGISTRY).documents[1]


def encode_payload(document: LicenceDocument) -> str:
    """The EL1: payload, whose item 8 is the seal (EL2:'s item 6: test_payload_el2.py)."""
    return encode_any_payload(document, layout=1)


def cbor_items(payload: str) -> list:
    return cbor2.loads(zlib.decompress(base45.b45decode(payload[4:])))


def pack(items: list) -> str:
    raw = cbor2.dumps(items, canonical=True)
    return "EL1:" + base45.b45encode(zlib.compress(raw, 9)).decode()


def test_a_sealed_document_writes_and_reads_its_seal(sealed):
    raw = sealed.to_json()
    assert raw["anchor"]["seal"] == "0x" + SEAL.hex()
    assert list(raw["anchor"]) == ["chainId", "registry", "root", "seal", "proof"]
    assert loads_document(sealed.to_bytes()) == sealed


def test_an_unsealed_document_has_no_seal_member(unsealed):
    assert "seal" not in unsealed.to_json()["anchor"]
    assert loads_document(unsealed.to_bytes()).anchor.seal is None


@pytest.mark.parametrize(
    "value",
    [
        "0x" + SEAL.hex().upper(),
        "0x" + SEAL.hex()[:-2],
        "0x" + SEAL.hex() + "00",
        SEAL.hex() + "00",
        "",
        None,
        64,
    ],
)
def test_a_malformed_seal_is_refused_naming_anchor_seal(sealed, value):
    raw = sealed.to_json()
    raw["anchor"]["seal"] = value
    with pytest.raises(DocumentError) as caught:
        parse_document(raw)
    assert caught.value.path == "anchor.seal"


def test_presentations_keep_the_seal(sealed):
    shown = present(sealed, [])
    assert shown.anchor.seal == SEAL
    assert loads_document(shown.to_bytes()).anchor.seal == SEAL
    assert present(shown, []).anchor.seal == SEAL


def test_a_sealed_payload_has_nine_items_the_last_the_seal(sealed):
    for document in (sealed, present(sealed, [])):
        payload = encode_payload(document)
        items = cbor_items(payload)
        assert len(items) == 9 and items[8] == SEAL
        assert decode_payload(payload) == document


def test_an_unsealed_payload_keeps_eight_items(unsealed):
    payload = encode_payload(present(unsealed, []))
    assert len(cbor_items(payload)) == 8
    assert decode_payload(payload).anchor.seal is None


@pytest.mark.parametrize("bad", [SEAL[:63], SEAL + b"\x00", "0x" + SEAL.hex(), None, 0, [SEAL]])
def test_a_payload_whose_ninth_item_is_not_64_bytes_is_refused(sealed, bad):
    items = cbor_items(encode_payload(present(sealed, [])))
    items[8] = bad
    with pytest.raises(PayloadError) as caught:
        decode_payload(pack(items))
    assert caught.value.reason == "layout"


def test_a_payload_of_ten_items_is_refused(sealed):
    items = cbor_items(encode_payload(sealed))
    with pytest.raises(PayloadError) as caught:
        decode_payload(pack([*items, SEAL]))
    assert caught.value.reason == "layout"


def test_a_seal_stripped_from_a_payload_decodes_as_unsealed(sealed):
    # Decoding does not judge: the verifier's seal check reports the missing seal.
    items = cbor_items(encode_payload(sealed))
    assert decode_payload(pack(items[:8])).anchor.seal is None
