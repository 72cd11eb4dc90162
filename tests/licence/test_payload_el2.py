"""The EL2: payload: read with the verifier's own chain and registry, it names the type
version it was issued under, and refuses every way of being spoiled, naming the step.
(EL1:, which readers keep reading, is tests/licence/test_payload.py.)"""

from __future__ import annotations

import dataclasses
import hashlib
import zlib
from pathlib import Path

import base45
import cbor2
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from issuer.batch import wrap_batch
from licence import document as document_module
from licence import payload as payload_module
from licence.catalogue import Catalogue, catalogue
from licence.document import LicenceDocument, parse_document
from licence.errors import DocumentError, PayloadError, UnknownTypeVersion
from licence.payload import (
    DICTIONARY,
    MAX_CBOR_BYTES,
    decode_payload,
    encode_payload,
)
from licence.presentation import present
from tests.licence.payload_strategies import BASE45, changed_payloads, documents
from tests.samples import business_licence, food_business_licence

REGISTRY = "0x5FbDB2315678afecb367f032d93F642f64180aa3"
OTHER_REGISTRY = "0x" + "12" * 20
CHAIN_ID = 1337
BUSINESS = catalogue().get("business-licence")
SEAL = bytes(range(64))
ROOT = Path(__file__).resolve().parents[2]


def read(text: str, chain_id: int = CHAIN_ID, registry: str = REGISTRY) -> LicenceDocument:
    return decode_payload(text, chain_id=chain_id, registry=registry)


@pytest.fixture(scope="module")
def licence() -> LicenceDocument:
    rows = [business_licence(i) for i in range(5)]
    return wrap_batch(BUSINESS, rows, chain_id=CHAIN_ID, registry=REGISTRY).documents[2]


@pytest.fixture(scope="module")
def sealed() -> LicenceDocument:
    rows = [business_licence(i) for i in range(5)]
    return wrap_batch(
        BUSINESS, rows, chain_id=CHAIN_ID, registry=REGISTRY, sealer=lambda root: SEAL
    ).documents[3]


def deflate(cbor: bytes, zdict: bytes | None = DICTIONARY, level: int = 9) -> bytes:
    compressor = (
        zlib.compressobj(level, zlib.DEFLATED, -15, zdict=zdict)
        if zdict is not None
        else zlib.compressobj(level, zlib.DEFLATED, -15)
    )
    return compressor.compress(cbor) + compressor.flush()


def inflate(text: str) -> bytes:
    return zlib.decompressobj(-15, zdict=DICTIONARY).decompress(base45.b45decode(text[4:]))


def pack(cbor: bytes, zdict: bytes | None = DICTIONARY) -> str:
    return "EL2:" + base45.b45encode(deflate(cbor, zdict)).decode()


def layout(document: LicenceDocument) -> list:
    """The CBOR array of a minimal presentation, to be spoiled item by item."""
    return cbor2.loads(inflate(encode_payload(present(document, []))))


def spoil(document: LicenceDocument, index: int, value: object) -> str:
    items = layout(document)
    items[index] = value
    return pack(cbor2.dumps(items))


# --- what an EL2: payload is ------------------------------------------------------------


def test_a_full_licence_and_a_presentation_round_trip(licence):
    for document in (licence, present(licence, ["businessScope"]), present(licence, [])):
        payload = encode_payload(document)
        assert payload.startswith("EL2:") and set(payload[4:]) <= set(BASE45)
        assert read(payload) == document
        assert payload == encode_payload(document)  # the same text every time


def test_a_sealed_licence_and_its_presentation_keep_the_seal(sealed):
    for document in (sealed, present(sealed, [])):
        again = read(encode_payload(document))
        assert again == document and again.anchor.seal == SEAL


def test_a_food_licence_without_an_optional_field_round_trips():
    food = catalogue().get("food-business-licence")
    rows = [food_business_licence(3)]
    (doc,) = wrap_batch(food, rows, chain_id=7, registry=REGISTRY).documents
    assert read(encode_payload(doc), chain_id=7) == doc


def test_the_layout_names_the_type_version_and_carries_no_root_chain_or_registry(sealed):
    shown = present(sealed, [])
    items = cbor2.loads(inflate(encode_payload(shown)))
    names = BUSINESS.field_names
    assert items[0] == 1  # sha256-128
    assert items[1] == BUSINESS.code
    assert items[2] == BUSINESS.version == 1
    assert items[3] == b"".join(sealed.anchor.proof)
    # One byte string: the disclosed fields' salts, concatenated in catalogue order.
    assert items[4] == b"".join(
        sealed.salt_of(n) for n in names if n in BUSINESS.mandatory_disclosure
    )
    assert items[5][0] == sealed.fields["licenceNumber"]
    assert items[5][3] == sealed.commitments["legalRepresentative"]
    assert items[6] == SEAL and len(items) == 7
    raw = cbor2.dumps(items)
    assert sealed.anchor.root not in raw and bytes.fromhex(REGISTRY[2:]) not in raw
    full = cbor2.loads(inflate(encode_payload(sealed)))
    assert full[4] == sealed.secret and len(full) == 7


def test_the_reader_takes_the_root_from_the_leaf_and_the_proof(licence):
    shown = read(encode_payload(present(licence, [])))
    assert shown.anchor.root == licence.anchor.root == shown.computed_root()


def test_the_dictionary_is_the_normative_file_and_docs_name_its_hash():
    assert (ROOT / "licence" / "payload_dictionary.txt").read_bytes() == DICTIONARY
    DICTIONARY.decode("utf-8")  # UTF-8 text
    digest = hashlib.sha256(DICTIONARY).hexdigest()
    assert digest in (ROOT / "docs" / "format.md").read_text(encoding="utf-8")


def test_the_dictionary_makes_payloads_shorter(licence):
    shown = present(licence, [])
    cbor = cbor2.dumps(layout(licence), canonical=True)
    assert len(encode_payload(shown)) < len(pack(cbor, zdict=None))


# --- the verifier's own deployment ------------------------------------------------------


@pytest.mark.parametrize(
    ("chain_id", "registry"), [(None, None), (CHAIN_ID, None), (None, REGISTRY)]
)
def test_an_el2_payload_is_not_read_without_the_verifiers_chain_and_registry(
    licence, chain_id, registry
):
    with pytest.raises(PayloadError) as caught:
        decode_payload(encode_payload(licence), chain_id=chain_id, registry=registry)
    assert caught.value.reason == "deployment"


@pytest.mark.parametrize(
    ("chain_id", "registry"), [(0, REGISTRY), (2**64, REGISTRY), (CHAIN_ID, "0x1234")]
)
def test_a_malformed_deployment_is_refused(licence, chain_id, registry):
    with pytest.raises(PayloadError) as caught:
        decode_payload(encode_payload(licence), chain_id=chain_id, registry=registry)
    assert caught.value.reason == "deployment"


def test_read_with_another_deployment_it_names_that_one_and_the_same_root(licence):
    # What makes it NOT_ANCHORED there: the verifier asks its own registry for this
    # root, which was anchored elsewhere (tests/integration/test_every_type.py checks
    # the verdict on a chain).
    elsewhere = read(encode_payload(licence), chain_id=5, registry=OTHER_REGISTRY)
    assert (elsewhere.anchor.chain_id, elsewhere.anchor.registry.lower()) == (5, OTHER_REGISTRY)
    assert elsewhere.anchor.root == licence.anchor.root
    assert elsewhere != licence


def test_el1_payloads_ignore_the_deployment_given(licence):
    el1 = encode_payload(licence, layout=1)
    assert el1.startswith("EL1:")
    assert read(el1, chain_id=5, registry=OTHER_REGISTRY) == licence == decode_payload(el1)


# --- type versions ----------------------------------------------------------------------


def with_version_2(monkeypatch) -> None:
    """A catalogue that also holds a version 2 of the business licence."""
    second = dataclasses.replace(BUSINESS, version=2, definition=b"version 2")
    both = Catalogue([*catalogue(), second])
    monkeypatch.setattr(payload_module, "catalogue", lambda: both)
    monkeypatch.setattr(document_module, "catalogue", lambda: both)


def test_a_licence_of_version_2_names_it_in_document_and_payload(licence, monkeypatch):
    with_version_2(monkeypatch)
    second = payload_module.catalogue().get("business-licence", 2)
    document = dataclasses.replace(licence, licence_type=second)
    assert document.to_json()["typeVersion"] == 2
    assert list(document.to_json())[:4] == ["format", "hashSuite", "type", "typeVersion"]
    assert parse_document(document.to_json()).licence_type.version == 2
    again = read(encode_payload(document))
    assert again.licence_type is second and again == document
    with pytest.raises(PayloadError) as caught:  # EL1: has no place for a version
        encode_payload(document, layout=1)
    assert caught.value.reason == "unencodable"


def test_a_payload_of_a_version_the_catalogue_lacks_is_unknown_type_version(licence):
    with pytest.raises(UnknownTypeVersion) as caught:
        read(spoil(licence, 2, 2))
    assert (caught.value.type_ref, caught.value.version) == (BUSINESS.code, 2)
    assert isinstance(caught.value, DocumentError) and caught.value.path == "type"


def test_a_payload_of_a_type_code_the_catalogue_lacks_is_unknown_type_version(licence):
    with pytest.raises(UnknownTypeVersion) as caught:
        read(spoil(licence, 1, 4000))
    assert (caught.value.type_ref, caught.value.version) == (4000, 1)


@pytest.mark.parametrize("version", [0, 65536, 2**64 - 1, "1", None, -1])
def test_a_payload_naming_a_type_version_out_of_range_is_refused(licence, version):
    with pytest.raises(PayloadError) as caught:
        read(spoil(licence, 2, version))
    assert caught.value.reason == "type-version"


def test_a_document_of_a_version_the_catalogue_lacks_is_unknown_type_version(licence):
    raw = {**licence.to_json(), "typeVersion": 3}
    with pytest.raises(UnknownTypeVersion) as caught:
        parse_document(raw)
    assert (caught.value.type_ref, caught.value.version) == ("business-licence", 3)


@pytest.mark.parametrize("version", [0, 65536, True, "1", 1.0, None])
def test_a_document_naming_a_malformed_type_version_is_refused(licence, version):
    with pytest.raises(DocumentError) as caught:
        parse_document({**licence.to_json(), "typeVersion": version})
    assert caught.value.path == "typeVersion"
    assert not isinstance(caught.value, UnknownTypeVersion)


def test_a_document_without_type_version_is_version_1(licence):
    raw = licence.to_json()
    del raw["typeVersion"]
    assert parse_document(raw) == licence and parse_document(raw).licence_type.version == 1


# --- refusals ---------------------------------------------------------------------------


def non_shortest_integer(document: LicenceDocument) -> str:
    cbor = cbor2.dumps(layout(document))
    assert cbor[:2] == b"\x86\x01"
    return pack(b"\x86\x18\x01" + cbor[2:])  # 1 written with a one-byte argument


def stored_block_with_padding(document: LicenceDocument) -> str:
    stream = bytearray(deflate(cbor2.dumps(layout(document)), level=0))
    assert stream[0] & 0b111 == 0b001  # final, stored
    stream[0] |= 0b1000_0000  # a padding bit after the stored block's 3-bit header
    return "EL2:" + base45.b45encode(bytes(stream)).decode()


def padding_bit_set(document: LicenceDocument) -> str:
    # Some presentation of the licence ends its stream inside a byte (7 in 8 do): a
    # padding bit after the last block is set there.
    for disclose in ([], ["businessScope"], ["registeredAddress"], ["registeredCapital"]):
        data = base45.b45decode(encode_payload(present(document, disclose))[4:])
        genuine = zlib.decompressobj(-15, zdict=DICTIONARY).decompress(data)
        for bit in range(7, -1, -1):
            trial = bytearray(data)
            trial[-1] ^= 1 << bit
            inflater = zlib.decompressobj(-15, zdict=DICTIONARY)
            try:
                same = inflater.decompress(bytes(trial)) == genuine
            except zlib.error:
                continue
            # The whole stream, ending where it did: a flip in the end-of-block code can
            # give the same output so far from a stream then cut short.
            if same and inflater.eof and not inflater.unused_data:
                return "EL2:" + base45.b45encode(bytes(trial)).decode()
    raise AssertionError("no presentation of this licence has padding bits")


def cut_short(document: LicenceDocument) -> str:
    data = base45.b45decode(encode_payload(document)[4:])
    return "EL2:" + base45.b45encode(data[:-20]).decode()


def with_zlib_header(document: LicenceDocument) -> str:
    return "EL2:" + base45.b45encode(zlib.compress(cbor2.dumps(layout(document)), 9)).decode()


BAD_PAYLOADS = [
    ("lowercase prefix", lambda d: "el2:" + encode_payload(d)[4:], "prefix"),
    ("unknown prefix", lambda d: "EL3:" + encode_payload(d)[4:], "prefix"),
    ("lowercase base45", lambda d: "EL2:" + encode_payload(d)[4:].lower(), "base45"),
    ("corrupt deflate", lambda d: "EL2:" + base45.b45encode(b"\xff" * 40).decode(), "deflate"),
    ("zlib header and adler-32", with_zlib_header, "deflate"),
    ("cut short", cut_short, "deflate"),
    (
        "bytes after the deflate stream",
        lambda d: "EL2:" + base45.b45encode(deflate(cbor2.dumps(layout(d))) + b"\0").decode(),
        "deflate",
    ),
    ("decompression bomb", lambda d: pack(b"\0" * (MAX_CBOR_BYTES + 1)), "too-large"),
    ("deflate padding bit set", padding_bit_set, "non-canonical"),
    ("stored block padding bit set", stored_block_with_padding, "non-canonical"),
    ("non-shortest integer", non_shortest_integer, "non-canonical"),
    ("malformed cbor", lambda d: pack(b"\x9f\xff\xff"), "cbor"),
    ("bytes after the cbor item", lambda d: pack(cbor2.dumps(layout(d)) + b"\x00"), "cbor"),
    ("not an array", lambda d: pack(cbor2.dumps({"v": 1})), "layout"),
    ("unknown suite", lambda d: spoil(d, 0, 9), "version"),
    ("array of five", lambda d: pack(cbor2.dumps(layout(d)[:5])), "layout"),
    ("array of eight (EL1's)", lambda d: pack(cbor2.dumps([*layout(d), b"", b""])), "layout"),
    ("type code out of range", lambda d: spoil(d, 1, 0), "type"),
    ("proof of 33 bytes", lambda d: spoil(d, 3, b"\x00" * 33), "layout"),
    ("proof of 41 hashes", lambda d: spoil(d, 3, b"\x00" * 16 * 41), "layout"),
    ("one salt missing", lambda d: spoil(d, 4, layout(d)[4][:-16]), "layout"),
    ("salts as an array (EL1's)", lambda d: spoil(d, 4, [layout(d)[4][:16]]), "layout"),
    ("secret with hidden fields", lambda d: spoil(d, 4, b"\x01" * 16), "layout"),
    ("fields of 10 items", lambda d: spoil(d, 5, layout(d)[5][:10]), "layout"),
    ("field as a number", lambda d: spoil(d, 5, [*layout(d)[5][:10], 5]), "layout"),
    ("seal of 63 bytes", lambda d: pack(cbor2.dumps([*layout(d), b"\x01" * 63])), "layout"),
]


@pytest.mark.parametrize(
    ("make", "reason"),
    [pytest.param(make, reason, id=name) for name, make, reason in BAD_PAYLOADS],
)
def test_a_spoiled_payload_is_refused_naming_the_step(licence, make, reason):
    with pytest.raises(PayloadError) as caught:
        read(make(licence))
    assert caught.value.reason == reason


def test_a_hidden_mandatory_field_is_refused_by_the_documents_rules(licence):
    items = layout(licence)
    items[4] = items[4][16:]
    items[5] = [b"\x00" * 16, *items[5][1:]]  # licenceNumber hidden, its salt dropped
    with pytest.raises(PayloadError) as caught:
        read(pack(cbor2.dumps(items)))
    assert caught.value.reason == "document"


def test_any_raw_deflate_with_the_dictionary_is_read_even_one_not_using_it(licence):
    # Readers accept every valid stream (another deflater's, say the web page's pako);
    # one made without the dictionary is such a stream. The CBOR must still be canonical.
    shown = present(licence, [])
    cbor = cbor2.dumps(layout(licence), canonical=True)
    for text in (
        pack(cbor, zdict=None),
        "EL2:" + base45.b45encode(deflate(cbor, level=1)).decode(),
    ):
        assert text != encode_payload(shown)
        assert read(text) == shown


def test_a_presentation_of_one_field_hiding_none_is_not_written(licence):
    one = LicenceDocument(
        BUSINESS,
        {"licenceNumber": licence.fields["licenceNumber"]},
        licence.anchor,
        salts={"licenceNumber": licence.salt_of("licenceNumber")},
    )
    with pytest.raises(PayloadError) as caught:
        encode_payload(one)
    assert caught.value.reason == "unencodable"


# --- properties -------------------------------------------------------------------------


@given(documents(chain_id=CHAIN_ID, rooted=True))
def test_any_licence_round_trips(document):
    assert read(encode_payload(document)) == document


def _issued() -> list[LicenceDocument]:
    rows = [business_licence(i) for i in range(9)]
    batch = wrap_batch(BUSINESS, rows, chain_id=CHAIN_ID, registry=REGISTRY)
    return [batch.documents[4], present(batch.documents[7], ["businessScope"])]


GENUINE = _issued()


@pytest.mark.parametrize("genuine", GENUINE, ids=["full", "presentation"])
@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_any_changed_character_never_decodes_to_a_licence_under_the_same_root(genuine, data):
    payload = encode_payload(genuine)
    changed = data.draw(changed_payloads(payload))
    assume(changed != payload)
    try:
        decoded = read(changed)
    except (PayloadError, UnknownTypeVersion):
        return
    # The root is the one the decoded fields and proof fold to: unless it is the genuine
    # licence, it is not the anchored root (NOT_ANCHORED), barring a hash collision.
    assert decoded == genuine or decoded.anchor.root != genuine.anchor.root
