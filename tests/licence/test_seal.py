"""The SM2 agency seal against the standard's example and two independent implementations:
OpenSSL's command line (`openssl pkeyutl`) and sm-crypto (JavaScript, under Node)."""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)

from licence import seal
from licence.errors import LicenceFormatError

ROOT = Path(__file__).resolve().parents[2]

# GB/T 32918.5-2017 (GM/T 0003.5-2012) Annex A: a signature on the recommended curve
# with ID "1234567812345678"; the same numbers are in OpenSSL's test/sm2_internal_test.c.
# A test fixture: the standard's published example key pair, no agency's real key.
VECTOR_PRIVATE = bytes.fromhex("3945208F7B2144B13F36E38AC6D39F95889393692860B51A42FB81EF4DF7C5B8")
VECTOR_PUBLIC = bytes.fromhex(
    "09F9DF311E5421A150DD7D161E4BC5C672179FAD1833FC076BB08FF356F35020"
    "CCEA490CE26775A52DC6EA718CC1AA600AED05FBF35E084A6632F6072DA9AD13"
)
VECTOR_MESSAGE = b"message digest"
VECTOR_SIGNATURE = bytes.fromhex(
    "F5A03B0648D2C4630EEAC513E1BB81A15944DA3827D5B74143AC7EACEEE720B3"
    "B1B6AA29DF212FD8763182BC0D421CA1BB9038FD1F7F42D4840B69C485BBC1AA"
)

CHAIN_ID = 1337
REGISTRY = bytes.fromhex("5fbdb2315678afecb367f032d93f642f64180aa3")
ROOT_HASH = bytes.fromhex("00112233445566778899aabbccddeeff")

openssl = pytest.mark.skipif(shutil.which("openssl") is None, reason="no openssl command")


def test_the_standard_example_key_pair_and_signature_come_out_right() -> None:
    assert seal.public_key(VECTOR_PRIVATE) == VECTOR_PUBLIC
    seal.verify(VECTOR_PUBLIC, VECTOR_MESSAGE, VECTOR_SIGNATURE)


def test_the_standard_example_fails_for_another_message() -> None:
    with pytest.raises(seal.SealMismatch):
        seal.verify(VECTOR_PUBLIC, b"message digesT", VECTOR_SIGNATURE)


def test_a_seal_is_64_bytes_and_verifies_for_its_root_only() -> None:
    private = seal.new_private_key()
    public = seal.public_key(private)
    made = seal.seal_root(private, CHAIN_ID, REGISTRY, ROOT_HASH)
    assert len(made) == seal.SEAL_BYTES
    seal.check_seal(public, CHAIN_ID, REGISTRY, ROOT_HASH, made)
    other_root = bytes(16)
    with pytest.raises(seal.SealMismatch):
        seal.check_seal(public, CHAIN_ID, REGISTRY, other_root, made)
    with pytest.raises(seal.SealMismatch):
        seal.check_seal(public, CHAIN_ID + 1, REGISTRY, ROOT_HASH, made)
    with pytest.raises(seal.SealMismatch):
        seal.check_seal(public, CHAIN_ID, bytes(20), ROOT_HASH, made)


def test_the_sealed_message_is_tag_chain_registry_root() -> None:
    message = seal.seal_message(CHAIN_ID, REGISTRY, ROOT_HASH)
    assert message == b"elicence/1 seal" + (1337).to_bytes(8, "big") + REGISTRY + ROOT_HASH
    assert len(message) == 59


def test_a_seal_by_another_key_is_a_mismatch() -> None:
    made = seal.seal_root(seal.new_private_key(), CHAIN_ID, REGISTRY, ROOT_HASH)
    other = seal.public_key(seal.new_private_key())
    with pytest.raises(seal.SealMismatch) as caught:
        seal.check_seal(other, CHAIN_ID, REGISTRY, ROOT_HASH, made)
    assert isinstance(caught.value, LicenceFormatError)


@pytest.mark.parametrize("position", [0, 31, 32, 63])
def test_one_flipped_bit_anywhere_in_a_seal_is_refused(position: int) -> None:
    private = seal.new_private_key()
    made = bytearray(seal.seal_root(private, CHAIN_ID, REGISTRY, ROOT_HASH))
    made[position] ^= 0x01
    with pytest.raises((seal.SealMismatch, seal.MalformedSeal)):
        seal.check_seal(seal.public_key(private), CHAIN_ID, REGISTRY, ROOT_HASH, bytes(made))


@pytest.mark.parametrize(
    "bad",
    [
        b"",
        bytes(63),
        bytes(65),
        bytes(64),  # r = s = 0
        seal.CURVE_ORDER.to_bytes(32, "big") + (1).to_bytes(32, "big"),  # r = n
        (1).to_bytes(32, "big") + (seal.CURVE_ORDER + 1).to_bytes(32, "big")[-32:],
    ],
)
def test_malformed_seals_are_named_malformed(bad: bytes) -> None:
    public = seal.public_key(seal.new_private_key())
    with pytest.raises(seal.MalformedSeal):
        seal.check_seal(public, CHAIN_ID, REGISTRY, ROOT_HASH, bad)


@pytest.mark.parametrize(
    "bad_key",
    [bytes(64), bytes(63), b"\x01" * 64, VECTOR_PUBLIC[:32] + bytes(32)],
)
def test_a_public_key_off_the_curve_is_refused(bad_key: bytes) -> None:
    with pytest.raises(seal.MalformedSealKey):
        seal.verify(bad_key, VECTOR_MESSAGE, VECTOR_SIGNATURE)


@pytest.mark.parametrize(
    "bad_private",
    [bytes(32), (seal.CURVE_ORDER - 1).to_bytes(32, "big"), b"\xff" * 32, bytes(31)],
)
def test_a_private_key_out_of_range_is_refused(bad_private: bytes) -> None:
    with pytest.raises(seal.MalformedSealKey):
        seal.sign(bad_private, VECTOR_MESSAGE)


def _pem(label: str, der: bytes) -> str:
    return f"-----BEGIN {label}-----\n{base64.encodebytes(der).decode()}-----END {label}-----\n"


def _openssl(*args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(["openssl", *args], capture_output=True, check=False)


@openssl
def test_seals_made_by_elicence_verify_with_openssl(tmp_path: Path) -> None:
    private = seal.new_private_key()
    (tmp_path / "public.pem").write_text(
        _pem("PUBLIC KEY", seal._PUBLIC_PREFIX + seal.public_key(private))
    )
    message = seal.seal_message(CHAIN_ID, REGISTRY, ROOT_HASH)
    (tmp_path / "message").write_bytes(message)
    made = seal.sign(private, message)
    r, s = int.from_bytes(made[:32], "big"), int.from_bytes(made[32:], "big")
    (tmp_path / "seal.der").write_bytes(encode_dss_signature(r, s))
    verify = [
        "pkeyutl", "-verify", "-pubin", "-inkey", str(tmp_path / "public.pem"),
        "-rawin", "-digest", "sm3", "-pkeyopt", "distid:1234567812345678",
        "-in", str(tmp_path / "message"), "-sigfile", str(tmp_path / "seal.der"),
    ]  # fmt: skip
    done = _openssl(*verify)
    assert done.returncode == 0, done.stderr
    assert b"Verified Successfully" in done.stdout
    # and OpenSSL refuses it for another root
    (tmp_path / "message").write_bytes(seal.seal_message(CHAIN_ID, REGISTRY, bytes(16)))
    assert _openssl(*verify).returncode != 0


@openssl
def test_seals_made_by_openssl_verify_in_elicence(tmp_path: Path) -> None:
    key = tmp_path / "sm2.pem"
    made_key = _openssl("genpkey", "-algorithm", "SM2", "-out", str(key))
    assert made_key.returncode == 0, made_key.stderr
    public_der = _openssl("pkey", "-in", str(key), "-pubout", "-outform", "DER").stdout
    assert public_der.startswith(seal._PUBLIC_PREFIX)
    public = public_der[len(seal._PUBLIC_PREFIX) :]
    message = seal.seal_message(CHAIN_ID, REGISTRY, ROOT_HASH)
    (tmp_path / "message").write_bytes(message)
    for _ in range(5):  # different nonces, and DER integers of 32 and 33 bytes
        signed = _openssl(
            "pkeyutl", "-sign", "-inkey", str(key), "-rawin", "-digest", "sm3",
            "-pkeyopt", "distid:1234567812345678", "-in", str(tmp_path / "message"),
        )  # fmt: skip
        assert signed.returncode == 0, signed.stderr
        r, s = decode_dss_signature(signed.stdout)
        compact = r.to_bytes(32, "big") + s.to_bytes(32, "big")
        seal.check_seal(public, CHAIN_ID, REGISTRY, ROOT_HASH, compact)
        with pytest.raises(seal.SealMismatch):
            seal.check_seal(public, CHAIN_ID, REGISTRY, bytes(16), compact)


def _node_sm_crypto() -> Path | None:
    if shutil.which("node") is None or not (ROOT / "node_modules" / "sm-crypto").is_dir():
        return None
    return ROOT / "node_modules"


@pytest.mark.skipif(_node_sm_crypto() is None, reason="no node or no sm-crypto in node_modules")
def test_seals_agree_with_sm_crypto_both_ways() -> None:
    """sm-crypto shares no code with OpenSSL: the two implementations agree both ways."""
    private = seal.new_private_key()
    public = seal.public_key(private)
    message = seal.seal_message(CHAIN_ID, REGISTRY, ROOT_HASH)
    made = seal.sign(private, message)
    script = """
const sm2 = require('sm-crypto').sm2;
const [priv, pub, msg, sig] = process.argv.slice(1);
const m = Array.from(Buffer.from(msg, 'hex'));
const opts = {hash: true, der: false, userId: '1234567812345678', publicKey: '04' + pub};
console.log(JSON.stringify({
  verified: sm2.doVerifySignature(m, sig, '04' + pub, opts),
  made: sm2.doSignature(m, priv, opts),
}));
"""
    done = subprocess.run(
        ["node", "-e", script, private.hex(), public.hex(), message.hex(), made.hex()],
        capture_output=True,
        check=True,
        cwd=ROOT,
    )
    answer = json.loads(done.stdout)
    assert answer["verified"] is True
    seal.check_seal(public, CHAIN_ID, REGISTRY, ROOT_HASH, bytes.fromhex(answer["made"]))


def test_a_public_key_is_checked_on_its_own() -> None:
    seal.check_public_key(VECTOR_PUBLIC)
    with pytest.raises(seal.MalformedSealKey):
        seal.check_public_key(VECTOR_PUBLIC[:32] + bytes(32))
