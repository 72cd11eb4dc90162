"""A sealed batch: both issuing paths (issuer/_wrap.c and Python) write the seal into
every document, the same bytes as the format's to_bytes(), and the seal verifies."""

from __future__ import annotations

import pytest

from issuer.batch import encode_batch, wrap_batch
from licence import seal
from licence.catalogue import catalogue
from licence.document import loads_document
from licence.payload import decode_payload, encode_payload
from tests.issuing_paths import PATHS, issuing_path
from tests.samples import business_licence

BUSINESS = catalogue().get("business-licence")
REGISTRY = "0x5FbDB2315678afecb367f032d93F642f64180aa3"
CHAIN_ID = 31337
KEY = seal.new_private_key()


def sealer(root: bytes) -> bytes:
    return seal.seal_root(KEY, CHAIN_ID, bytes.fromhex(REGISTRY[2:]), root)


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("n", [1, 2, 5])
def test_both_issuing_paths_write_the_seal_into_every_document_as_to_bytes_does(path, n):
    rows = [business_licence(i) for i in range(n)]
    secrets = [bytes([i]) * 16 for i in range(n)]
    with issuing_path(path):
        encoded = encode_batch(
            BUSINESS, rows, chain_id=CHAIN_ID, registry=REGISTRY, secrets=secrets, sealer=sealer
        )
    assert encoded.seal is not None
    once = encoded.seal
    wrapped = wrap_batch(
        BUSINESS,
        rows,
        chain_id=CHAIN_ID,
        registry=REGISTRY,
        secrets=secrets,
        sealer=lambda root: once,
    )
    assert encoded.documents == [d.to_bytes() for d in wrapped.documents]
    for text in encoded.documents:
        document = loads_document(text)
        assert document.anchor.seal == once
    seal.check_seal(seal.public_key(KEY), CHAIN_ID, bytes.fromhex(REGISTRY[2:]), encoded.root, once)


def test_the_seal_is_made_once_per_batch():
    calls = []

    def counting(root: bytes) -> bytes:
        calls.append(root)
        return sealer(root)

    rows = [business_licence(i) for i in range(4)]
    encoded = encode_batch(BUSINESS, rows, chain_id=CHAIN_ID, registry=REGISTRY, sealer=counting)
    assert calls == [encoded.root]


def test_a_sealed_licence_keeps_its_seal_in_its_qr_payload():
    (document,) = wrap_batch(
        BUSINESS, [business_licence(1)], chain_id=CHAIN_ID, registry=REGISTRY, sealer=sealer
    ).documents
    read = decode_payload(encode_payload(document), chain_id=CHAIN_ID, registry=REGISTRY)
    assert read == document and read.anchor.seal == document.anchor.seal
