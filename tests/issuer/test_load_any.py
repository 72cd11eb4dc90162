"""Reading a licence in any of its forms: JSON, `EL1:` text, or a QR image (verifier.images)."""

from __future__ import annotations

import pytest

from issuer.batch import wrap_batch
from licence.catalogue import catalogue
from licence.document import LicenceDocument
from licence.errors import PayloadError
from licence.payload import encode_payload
from tests.samples import business_licence
from verifier.images import load_any

REGISTRY = "0x5FbDB2315678afecb367f032d93F642f64180aa3"
BUSINESS = catalogue().get("business-licence")


@pytest.fixture(scope="module")
def licence() -> LicenceDocument:
    rows = [business_licence(i) for i in range(5)]
    return wrap_batch(BUSINESS, rows, chain_id=1337, registry=REGISTRY).documents[2]


def test_load_any_reads_json_and_trimmed_payload_text(licence):
    payload = encode_payload(licence)
    assert load_any(licence.to_bytes()) == licence
    # An EL2: payload is read with the reader's own chain and registry.
    text = f"  {payload}\r\n".encode()
    assert load_any(text, chain_id=1337, registry=REGISTRY) == licence
    with pytest.raises(PayloadError) as caught:
        load_any(text)
    assert caught.value.reason == "deployment"
    # Payloads printed before EL2: carry their own.
    assert load_any(encode_payload(licence, layout=1).encode()) == licence


def test_load_any_refuses_binary_that_is_nothing_it_knows():
    with pytest.raises(PayloadError) as caught:
        load_any(b"\x00\xff\xfe binary")
    assert caught.value.reason == "unrecognised"
