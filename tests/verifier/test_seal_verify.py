"""The seal check: a sealed licence verifies VALID; a stripped, altered, foreign or
unexpected seal is TAMPERED; a compromised or malformed seal key is
ISSUER_NOT_AUTHORISED; a batch anchored before its agency had a seal key needs none;
each batch is judged by the key valid at its anchoring block. The same against the
chain (RegistrySource) and against the local index (RegistryIndex)."""

from __future__ import annotations

import dataclasses

import pytest

from ledger.index import RegistryIndex
from licence import seal
from licence.catalogue import catalogue
from licence.document import AnchorRef, LicenceDocument
from licence.payload import decode_payload, encode_payload
from licence.presentation import present
from tests.conftest import AGENCY_ID
from tests.samples import business_licence
from verifier import checks
from verifier.checks import verify
from verifier.errors import CouldNotCheck
from verifier.verdict import CheckName, Outcome, Status

BUSINESS = catalogue().get("business-licence")
SEAL = list(CheckName).index(CheckName.SEAL)


@pytest.fixture(params=["chain", "index"])
def source(request, world, tmp_path):
    if request.param == "chain":
        return world.source
    index = RegistryIndex(tmp_path / "index.sqlite", world.registry)

    class Synced:
        # The index as the service reads it: synced to the head before each question.
        def __getattr__(self, name):
            index.sync()
            return getattr(index, name)

    return Synced()


def register(world, private: bytes, *, after: int = 1) -> int:
    """Register `private`'s public key as agency 1's seal key from `after` blocks on."""
    start = world.chain.block_number() + after
    world.registry.register_seal_key(world.governor, AGENCY_ID, seal.public_key(private), start)
    return start


def issue_sealed(world, private: bytes | None, n: int = 2):
    """Anchor a batch sealed with `private` (None: unsealed); its documents."""
    rows = [business_licence(i + world.chain.block_number() * 10) for i in range(n)]
    registry_bytes = bytes.fromhex(world.registry.address[2:])

    def sealer(root: bytes) -> bytes:
        assert private is not None
        return seal.seal_root(private, world.chain.chain_id, registry_bytes, root)

    from issuer.batch import wrap_batch

    batch = wrap_batch(
        BUSINESS,
        rows,
        chain_id=world.chain.chain_id,
        registry=world.registry.address,
        sealer=sealer if private is not None else None,
    )
    sent = world.registry.anchor(world.agency, batch.root, BUSINESS.code, n)
    return batch.documents, sent.block_number


def with_seal(document: LicenceDocument, value: bytes | None) -> LicenceDocument:
    return dataclasses.replace(document, anchor=dataclasses.replace(document.anchor, seal=value))


def seal_check(verdict):
    check = verdict.checks[SEAL]
    assert check.name is CheckName.SEAL
    return check


def test_a_sealed_licence_is_valid_with_the_seal_check_passed(world, source):
    key = seal.new_private_key()
    register(world, key)
    documents, _ = issue_sealed(world, key)
    for document in (documents[0], present(documents[1], [])):
        verdict = verify(document, source)
        assert verdict.status is Status.VALID
        check = seal_check(verdict)
        assert check.outcome is Outcome.PASSED
        assert check.wording.code == "seal.ok"
        assert check.wording.params == {"keyNumber": 1}
    assert [c.name for c in verdict.checks] == list(CheckName)


def test_a_sealed_payload_verifies_valid(world, source):
    key = seal.new_private_key()
    register(world, key)
    documents, _ = issue_sealed(world, key)
    anchor = documents[0].anchor  # an EL2: payload is read with the verifier's deployment
    decoded = decode_payload(
        encode_payload(present(documents[0], [])),
        chain_id=anchor.chain_id,
        registry=anchor.registry,
    )
    assert verify(decoded, source).status is Status.VALID


def test_a_batch_anchored_before_the_agency_had_a_seal_key_needs_none(world, source):
    documents, _ = issue_sealed(world, None)
    register(world, seal.new_private_key())  # later batches are sealed; this one not
    verdict = verify(documents[0], source)
    assert verdict.status is Status.VALID
    assert seal_check(verdict).wording.code == "seal.not-required"


def test_a_stripped_seal_is_tampered_seal_missing(world, source):
    key = seal.new_private_key()
    register(world, key)
    documents, _ = issue_sealed(world, key)
    verdict = verify(with_seal(documents[0], None), source)
    assert verdict.status is Status.TAMPERED
    assert seal_check(verdict).outcome is Outcome.FAILED
    assert seal_check(verdict).wording.code == "seal.missing"


@pytest.mark.parametrize("byte", [0, 31, 32, 63])
def test_an_altered_seal_byte_is_tampered_seal_mismatch(world, source, byte):
    key = seal.new_private_key()
    register(world, key)
    documents, _ = issue_sealed(world, key)
    altered = bytearray(documents[0].anchor.seal)
    altered[byte] ^= 0x01
    verdict = verify(with_seal(documents[0], bytes(altered)), source)
    assert verdict.status is Status.TAMPERED
    assert seal_check(verdict).wording.code == "seal.mismatch"


def test_a_seal_out_of_range_is_tampered_not_an_error(world, source):
    key = seal.new_private_key()
    register(world, key)
    documents, _ = issue_sealed(world, key)
    for value in (bytes(64), b"\xff" * 64):
        verdict = verify(with_seal(documents[0], value), source)
        assert (verdict.status, seal_check(verdict).wording.code) == (
            Status.TAMPERED,
            "seal.mismatch",
        )


def test_a_seal_by_another_key_is_tampered_seal_mismatch(world, source):
    key, forger = seal.new_private_key(), seal.new_private_key()
    register(world, key)
    documents, _ = issue_sealed(world, forger)
    verdict = verify(documents[0], source)
    assert verdict.status is Status.TAMPERED
    assert seal_check(verdict).wording.code == "seal.mismatch"


def test_a_seal_of_another_registry_is_tampered_seal_mismatch(world, source):
    key = seal.new_private_key()
    register(world, key)
    documents, _ = issue_sealed(world, key)
    root = documents[0].anchor.root
    other = seal.seal_root(key, world.chain.chain_id, b"\x11" * 20, root)
    verdict = verify(with_seal(documents[0], other), source)
    assert seal_check(verdict).wording.code == "seal.mismatch"


def test_a_seal_where_the_agency_had_no_seal_key_is_tampered_seal_unexpected(world, source):
    documents, _ = issue_sealed(world, seal.new_private_key())
    verdict = verify(documents[0], source)
    assert verdict.status is Status.TAMPERED
    assert seal_check(verdict).wording.code == "seal.unexpected"


def test_a_compromised_seal_key_is_issuer_not_authorised(world, source):
    key = seal.new_private_key()
    register(world, key)
    before, _ = issue_sealed(world, key)
    since = world.chain.block_number() + 1
    after, anchored = issue_sealed(world, key)
    assert anchored == since
    world.registry.mark_seal_key_compromised(world.governor, AGENCY_ID, 1, since)
    verdict = verify(after[0], source)
    assert verdict.status is Status.ISSUER_NOT_AUTHORISED
    check = seal_check(verdict)
    assert (check.wording.code, check.wording.params) == ("seal.key-compromised", {"block": since})
    # Batches sealed before the compromise keep their seals.
    assert verify(before[0], source).status is Status.VALID


def test_a_malformed_registered_seal_key_is_issuer_not_authorised(world, source):
    start = world.chain.block_number() + 1
    off_curve = b"\x01" * 64
    world.registry.register_seal_key(world.governor, AGENCY_ID, off_curve, start)
    documents, _ = issue_sealed(world, seal.new_private_key())
    verdict = verify(documents[0], source)
    assert verdict.status is Status.ISSUER_NOT_AUTHORISED
    assert seal_check(verdict).wording.code == "seal.key-malformed"


def test_batches_before_and_after_a_rotation_each_verify_under_their_own_key(world, source):
    old, new = seal.new_private_key(), seal.new_private_key()
    register(world, old)
    first, _ = issue_sealed(world, old)
    switch = register(world, new, after=3)
    while world.chain.block_number() + 1 < switch:
        issue_sealed(world, old)
    second, anchored = issue_sealed(world, new)
    assert anchored == switch
    for documents, number in ((first, 1), (second, 2)):
        verdict = verify(documents[0], source)
        assert verdict.status is Status.VALID
        assert seal_check(verdict).wording.params == {"keyNumber": number}
    # Each batch refuses the other key's seal.
    swapped = with_seal(
        first[0],
        seal.seal_root(
            new,
            world.chain.chain_id,
            bytes.fromhex(world.registry.address[2:]),
            first[0].anchor.root,
        ),
    )
    assert seal_check(verify(swapped, source)).wording.code == "seal.mismatch"


def test_the_seal_is_skipped_when_the_root_is_not_anchored(world, source):
    key = seal.new_private_key()
    register(world, key)
    documents, _ = issue_sealed(world, key)
    other_root = AnchorRef(
        documents[0].anchor.chain_id,
        documents[0].anchor.registry,
        b"\x42" * 16,
        documents[0].anchor.proof,
        documents[0].anchor.seal,
    )
    verdict = verify(dataclasses.replace(documents[0], anchor=other_root), source)
    assert seal_check(verdict).outcome is Outcome.SKIPPED


def test_a_batchs_seal_is_verified_once_for_all_its_licences(world, monkeypatch):
    key = seal.new_private_key()
    register(world, key)
    documents, _ = issue_sealed(world, key, n=4)
    calls = []
    real = seal.check_seal
    monkeypatch.setattr(seal, "check_seal", lambda *a: calls.append(a) or real(*a))
    checks._seal_verifies.cache_clear()
    assert {verify(d, world.source).status for d in documents} == {Status.VALID}
    assert len(calls) == 1


def test_without_sm2_in_openssl_there_is_no_verdict_never_tampered(world, monkeypatch):
    key = seal.new_private_key()
    register(world, key)
    documents, _ = issue_sealed(world, key)

    def unavailable(*args):
        raise seal.SealUnavailable("this libcrypto lacks SM2")

    monkeypatch.setattr(seal, "check_public_key", unavailable)
    monkeypatch.setattr(seal, "check_seal", unavailable)
    checks._seal_verifies.cache_clear()
    checks._is_seal_key.cache_clear()
    with pytest.raises(CouldNotCheck, match="seal"):
        verify(documents[0], world.source)
