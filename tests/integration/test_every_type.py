"""Every shipped licence type, end to end on an embedded chain: issued through the path
`elicence issue` takes (by an agency authorised for every type), presented with the
least a holder may disclose, carried as a QR payload, and verified VALID from the index.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import secrets
from dataclasses import dataclass

import pytest

from issuer.qr import qr_version
from ledger import Registry, connect
from ledger.index import RegistryIndex
from licence.catalogue import LicenceType, catalogue
from licence.document import AnchorRef, LicenceDocument
from licence.payload import decode_payload, encode_payload
from licence.presentation import present
from tests.conftest import AGENCY_CODE, AGENCY_NAME, key_for, publish_types
from verifier.checks import verify
from verifier.demo import issue_demo
from verifier.verdict import Status

TYPES = list(catalogue())
# Inside every example licence's validity window (their dates are fixed).
TODAY = dt.date(2025, 6, 1)
# The issue's QR targets at error correction M, for a licence in a batch of 10,000.
FULL_TARGET, MINIMAL_TARGET = 25, 21
PROOF_OF_10_000 = 14  # hashes from a leaf to the root of 10,000 leaves


@dataclass
class Issued:
    index: RegistryIndex
    documents: dict[str, LicenceDocument]
    registry: Registry


def _fields(licence_type: LicenceType) -> dict[str, str]:
    # The definition's example licence, issued in the name of the test's agency (the
    # issuer check compares the two).
    return {**licence_type.example_fields(), "issuingAuthority": AGENCY_NAME}


@pytest.fixture(scope="module")
def issued(tmp_path_factory) -> Issued:
    folder = tmp_path_factory.mktemp("every-type")
    chain = connect("embedded")
    governor, agency = key_for("every-type-governor"), key_for("every-type-agency")
    for account in (governor, agency):
        chain.fund(account.address, 10**20)
    registry = Registry.deploy(chain, governor)
    publish_types(registry, governor)  # an agency is authorised only for published types
    agency_id, _ = registry.register_agency(
        governor, AGENCY_CODE, AGENCY_NAME, agency.address, [TYPES[0].code]
    )
    # Authorised for every type of the catalogue, as a governor would after publishing.
    registry.set_agency_types(governor, agency_id, [t.code for t in TYPES])
    documents = {}
    for licence_type in TYPES:
        batch = issue_demo(
            registry, agency, licence_type, [_fields(licence_type)], folder / licence_type.id
        )
        (documents[licence_type.id],) = batch.documents
    index = RegistryIndex(folder / "index.sqlite", registry)
    index.catch_up()
    return Issued(index, documents, registry)


@pytest.mark.parametrize("licence_type", TYPES, ids=lambda t: t.id)
def test_a_licence_of_every_type_is_issued_and_verifies_valid(issued, licence_type):
    document = issued.documents[licence_type.id]
    assert document.licence_type is licence_type
    assert document.fields == _fields(licence_type)
    verdict = verify(document, issued.index, today=TODAY)
    assert verdict.status is Status.VALID, verdict


@pytest.mark.parametrize("licence_type", TYPES, ids=lambda t: t.id)
def test_a_minimal_presentation_of_every_type_verifies_valid_from_its_qr_payload(
    issued, licence_type
):
    document = issued.documents[licence_type.id]
    presentation = present(document, [])
    # Only what every presentation must show (of what the licence has); personal data
    # only where the type says so.
    assert set(presentation.fields) == licence_type.mandatory_disclosure & set(document.fields)
    personal = {f.name for f in licence_type.fields if f.personal}
    assert set(presentation.fields) & personal <= licence_type.mandatory_personal
    # EL2: names no chain or registry: the verifier reads it with its own.
    deployment = {"chain_id": issued.index.chain_id, "registry": issued.index.registry_address}
    read = decode_payload(encode_payload(presentation), **deployment)
    assert read.licence_id == document.licence_id
    assert read.licence_type.version == licence_type.version
    verdict = verify(read, issued.index, today=TODAY)
    assert verdict.status is Status.VALID, verdict
    # QR codes printed before EL2: keep verifying.
    old = decode_payload(encode_payload(presentation, layout=1))
    assert verify(old, issued.index, today=TODAY).status is Status.VALID


def test_an_el2_payload_read_with_another_deployment_is_not_anchored_there(issued, tmp_path):
    # A second registry on the same chain: a verifier trusting it reads the payload with
    # its own address, and finds the licence's root not anchored there.
    document = issued.documents[TYPES[0].id]
    chain = issued.registry.chain
    governor = key_for("every-type-other-governor")
    chain.fund(governor.address, 10**20)
    other = Registry.deploy(chain, governor)
    index = RegistryIndex(tmp_path / "other.sqlite", other)
    index.catch_up()
    read = decode_payload(
        encode_payload(present(document, [])), chain_id=index.chain_id, registry=other.address
    )
    verdict = verify(read, index, today=TODAY)
    assert verdict.status is Status.NOT_ANCHORED, verdict


@pytest.mark.parametrize("licence_type", TYPES, ids=lambda t: t.id)
@pytest.mark.parametrize("sealed", [False, True], ids=["unsealed", "sealed"])
def test_every_types_qr_codes_fit_the_targets_in_a_batch_of_10000(issued, licence_type, sealed):
    document = issued.documents[licence_type.id]
    # Only the proof's length matters for the size (and the seal's, 64 bytes that do not
    # compress: random ones here, as an SM2 seal's are).
    anchor = AnchorRef(
        document.anchor.chain_id,
        document.anchor.registry,
        document.anchor.root,
        tuple(secrets.token_bytes(16) for _ in range(PROOF_OF_10_000)),
        secrets.token_bytes(64) if sealed else None,
    )
    full = dataclasses.replace(document, anchor=anchor)
    assert qr_version(encode_payload(full)) <= FULL_TARGET
    assert qr_version(encode_payload(present(full, []))) <= MINIMAL_TARGET
