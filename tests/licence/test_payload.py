"""The EL1: payload, which every reader keeps reading (QR codes printed before EL2:):
round trips, every way decoding refuses, and the property that no changed payload
decodes to a licence whose hashes still hold. EL2: is tests/licence/test_payload_el2.py."""

from __future__ import annotations

import zlib

import base45
import cbor2
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from issuer.batch import wrap_batch
from licence.catalogue import catalogue
from licence.document import LicenceDocument
from licence.errors import PayloadError
from licence.payload import (
    MAX_CBOR_BYTES,
    MAX_PAYLOAD_CHARS,
    base45_decode,
    decode_payload,
)
from licence.payload import encode_payload as encode_any_payload
from licence.presentation import present
from tests.licence.payload_strategies import BASE45, changed_payloads, documents
from tests.samples import business_licence, food_business_licence

REGISTRY = "0x5FbDB2315678afecb367f032d93F642f64180aa3"
BUSINESS = catalogue().get("business-licence")


@pytest.fixture(scope="module")
def licence() -> LicenceDocument:
    rows = [business_licence(i) for i in range(5)]
    return wrap_batch(BUSINESS, rows, chain_id=1337, registry=REGISTRY).documents[2]


def encode_payload(document: LicenceDocument) -> str:
    """The EL1: payload (writers write EL2: now; old QR codes are EL1:)."""
    return encode_any_payload(document, layout=1)


def pack(cbor: bytes) -> str:
    return "EL1:" + base45.b45encode(zlib.compress(cbor, 9)).decode()


def layout(licence: LicenceDocument) -> list:
    """The CBOR array of a minimal presentation, to be spoiled item by item."""
    shown = present(licence, [])
    return cbor2.loads(zlib.decompress(base45.b45decode(encode_payload(shown)[4:])))


def test_full_licence_round_trips(licence):
    assert decode_payload(encode_payload(licence)) == licence


def test_presentation_round_trips(licence):
    shown = present(licence, ["businessScope"])
    assert decode_payload(encode_payload(shown)) == shown


def test_food_licence_round_trips():
    food = catalogue().get("food-business-licence")
    (doc,) = wrap_batch(food, [food_business_licence(3)], chain_id=7, registry=REGISTRY).documents
    assert decode_payload(encode_payload(doc)) == doc


def test_payload_is_deterministic_and_alphanumeric(licence):
    payload = encode_payload(present(licence, []))
    assert payload == encode_payload(present(licence, []))
    assert payload.startswith("EL1:")
    assert set(payload[4:]) <= set(BASE45)


def test_worked_example_pins_the_layout(licence):
    items = layout(licence)
    assert items[0] == 1
    assert items[1] == BUSINESS.code
    assert items[2] == 1337
    assert items[3] == bytes.fromhex(REGISTRY[2:])
    assert items[4] == licence.anchor.root
    assert items[5] == b"".join(licence.anchor.proof)
    assert items[6] == [
        licence.salt_of(n) for n in BUSINESS.field_names if n in BUSINESS.mandatory_disclosure
    ]
    assert items[7][0] == licence.fields["licenceNumber"]
    assert items[7][3] == licence.commitments["legalRepresentative"]


def spoil(licence: LicenceDocument, index: int, value: object) -> str:
    items = layout(licence)
    items[index] = value
    return pack(cbor2.dumps(items))


def base45_of_length_3k_plus_1(licence: LicenceDocument) -> str:
    body = encode_payload(licence)[4:]
    while len(body) % 3 != 1:
        body += "0"
    return "EL1:" + body


def mandatory_field_hidden(licence: LicenceDocument) -> str:
    items = layout(licence)
    items[6] = items[6][1:]
    items[7] = [b"\x00" * 16, *items[7][1:]]  # licenceNumber hidden, with its salt dropped
    return pack(cbor2.dumps(items))


def non_shortest_version(licence: LicenceDocument) -> str:
    cbor = cbor2.dumps(layout(licence))
    assert cbor[:2] == b"\x88\x01"
    return pack(b"\x88\x18\x01" + cbor[2:])  # 1 written as a one-byte-argument integer


def stored_block_with_padding(licence: LicenceDocument) -> str:
    cbor = cbor2.dumps(layout(licence))
    compress = zlib.compressobj(0)  # level 0: one stored block
    stream = bytearray(compress.compress(cbor) + compress.flush())
    stream[0:2] = b"\x78\xda"
    stream[2] |= 0b1000_0000  # a padding bit after the stored block's 3-bit header
    return "EL1:" + base45.b45encode(bytes(stream)).decode()


def padding_bit_set(licence: LicenceDocument) -> str:
    data = bytearray(base45.b45decode(encode_payload(present(licence, []))[4:]))
    last = len(data) - 5
    for bit in range(7, -1, -1):
        trial = bytearray(data)
        trial[last] ^= 1 << bit
        try:
            if zlib.decompress(bytes(trial)) == zlib.decompress(bytes(data)):
                return "EL1:" + base45.b45encode(bytes(trial)).decode()
        except zlib.error:
            continue
    pytest.skip("this payload's deflate stream ends on a byte boundary: no padding bits")


BAD_PAYLOADS = [
    ("wrong prefix", lambda d: "HC1:" + encode_payload(d)[4:], "prefix"),
    ("other payload version prefix", lambda d: "EL3:" + encode_payload(d)[4:], "prefix"),
    ("lowercase prefix", lambda d: "el1:" + encode_payload(d)[4:], "prefix"),
    ("oversized", lambda d: "EL1:" + "0" * (MAX_PAYLOAD_CHARS - 3), "too-long"),
    ("lowercase base45", lambda d: "EL1:" + encode_payload(d)[4:].lower(), "base45"),
    ("base45 of length 3k+1", base45_of_length_3k_plus_1, "base45"),
    ("base45 group over 65535", lambda d: "EL1:ZZZ" + encode_payload(d)[7:], "base45"),
    (
        "corrupt zlib",
        lambda d: "EL1:" + base45.b45encode(b"\x78\xda" + b"\xff" * 40).decode(),
        "zlib",
    ),
    (
        "other zlib header",
        lambda d: "EL1:" + base45.b45encode(zlib.compress(b"\x80", 6)).decode(),
        "zlib",
    ),
    (
        "cut-short zlib",
        # Cut the compressed bytes, not the text: a cut through Base45 groups may fail there.
        lambda d: "EL1:" + base45.b45encode(base45.b45decode(encode_payload(d)[4:])[:-20]).decode(),
        "zlib",
    ),
    (
        "bytes after zlib",
        lambda d: "EL1:" + base45.b45encode(zlib.compress(cbor2.dumps([1]), 9) + b"\0\0").decode(),
        "zlib",
    ),
    ("decompression bomb", lambda d: pack(b"\0" * (MAX_CBOR_BYTES + 1)), "too-large"),
    ("deflate padding bit set", padding_bit_set, "non-canonical"),
    ("stored block padding bit set", stored_block_with_padding, "non-canonical"),
    ("malformed cbor", lambda d: pack(b"\x9f\xff\xff"), "cbor"),
    ("invalid utf-8 in cbor text", lambda d: pack(b"\x61\xff"), "cbor"),
    ("bytes after the cbor item", lambda d: pack(cbor2.dumps(layout(d)) + b"\x00"), "cbor"),
    ("not an array", lambda d: pack(cbor2.dumps({"v": 1})), "layout"),
    ("unknown version", lambda d: spoil(d, 0, 9), "version"),
    ("version as text", lambda d: spoil(d, 0, "1"), "version"),
    ("array of seven", lambda d: pack(cbor2.dumps(layout(d)[:7])), "layout"),
    ("type code out of range", lambda d: spoil(d, 1, 65536), "type"),
    ("zero chain id", lambda d: spoil(d, 2, 0), "layout"),
    ("registry of 19 bytes", lambda d: spoil(d, 3, b"\x11" * 19), "layout"),
    ("root as hex text", lambda d: spoil(d, 4, "0x" + "ab" * 16), "layout"),
    ("proof of 33 bytes", lambda d: spoil(d, 5, b"\x00" * 33), "layout"),
    ("proof of 41 hashes", lambda d: spoil(d, 5, b"\x00" * 16 * 41), "layout"),
    ("one salt missing", lambda d: spoil(d, 6, layout(d)[6][:-1]), "layout"),
    ("secret with hidden fields", lambda d: spoil(d, 6, b"\x01" * 16), "layout"),
    ("fields of 10 items", lambda d: spoil(d, 7, layout(d)[7][:10]), "layout"),
    ("field as a number", lambda d: spoil(d, 7, [*layout(d)[7][:10], 5]), "layout"),
    ("mandatory field hidden", mandatory_field_hidden, "document"),
    ("non-shortest integer", non_shortest_version, "non-canonical"),
]


@pytest.mark.parametrize(
    ("make", "reason"),
    [pytest.param(make, reason, id=name) for name, make, reason in BAD_PAYLOADS],
)
def test_bad_payload_is_refused_naming_the_step(licence, make, reason):
    with pytest.raises(PayloadError) as caught:
        decode_payload(make(licence))
    assert caught.value.reason == reason


def test_payload_too_big_for_a_qr_code_is_refused_when_encoding(licence):
    huge = LicenceDocument(
        BUSINESS,
        {**licence.fields, "businessScope": "".join(chr(0x4E00 + i) for i in range(3000))},
        licence.anchor,
        secret=licence.secret,
    )
    with pytest.raises(PayloadError) as caught:
        encode_payload(huge)
    assert caught.value.reason == "too-long"


# --- properties -----------------------------------------------------------------------


@given(documents())
def test_any_licence_round_trips(document):
    assert decode_payload(encode_payload(document)) == document


def _issued_presentations() -> list[LicenceDocument]:
    rows = [business_licence(i) for i in range(9)]
    batch = wrap_batch(BUSINESS, rows, chain_id=1337, registry=REGISTRY)
    return [batch.documents[4], present(batch.documents[7], ["businessScope"])]


GENUINE = _issued_presentations()


@pytest.mark.parametrize("genuine", GENUINE, ids=["full", "presentation"])
@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_any_changed_character_never_decodes_to_a_licence_that_holds(genuine, data):
    payload = encode_payload(genuine)
    changed = data.draw(changed_payloads(payload))
    assume(changed != payload)
    try:
        decoded = decode_payload(changed)
    except PayloadError:
        return
    assert decoded != genuine
    moved = (decoded.anchor.chain_id, decoded.anchor.registry) != (
        genuine.anchor.chain_id,
        genuine.anchor.registry,
    )
    # A different chain or registry is NOT_ANCHORED at a verifier that trusts the
    # genuine one; anything else must break the hashes (TAMPERED).
    assert moved or decoded.computed_root() != decoded.anchor.root


@given(st.binary(max_size=300))
def test_base45_decoder_agrees_with_the_reference_package(data):
    text = base45.b45encode(data).decode()
    assert base45_decode(text) == data


@given(st.text(alphabet="0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:", max_size=30))
def test_base45_decoder_refuses_what_the_reference_package_refuses(text):
    try:
        expected = bytes(base45.b45decode(text))
    except ValueError:
        with pytest.raises(ValueError):
            base45_decode(text)
    else:
        assert base45_decode(text) == expected
