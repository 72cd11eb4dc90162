"""Salts, field commitments and licence ids: the exact bytes that are hashed.

With H the document's hash suite, `secret` the licence's 16-byte secret, JCS the
canonical JSON of RFC 8785, and || concatenation:

    salt(name)             = HMAC-H*(key = secret, message = UTF-8(name))[0:16]
    commitment(name, val)  = H(0x02 || salt(name) || JCS([name, val]))
    licence id (leaf)      = H(0x00 || JCS({"commitments": {name: "0x" + hex(commitment)},
                                            "format": "elicence/1",
                                            "hashSuite": suite,
                                            "type": licence type id}))

Two suites, each a 256-bit hash H* truncated to its first 16 bytes (128 bits), as NIST
SP 800-107 permits: "sha256-128" (H* = SHA-256, the default) and "sm3-128" (H* = SM3,
GB/T 32905-2016, for systems assessed against GB/T 39786-2021, which asks for the
national hash; hashlib's OpenSSL SM3). Both have 64-byte blocks, so HMAC-H* is RFC 2104
with the same pads. 128 bits keep every attack a holder or verifier could mount (finding
a second value for a commitment, a second path to an anchored root, guessing a hidden
field) at 2^128 work, and halve what a QR code must carry. Collisions cost 2^64, but only
the issuing agency chooses the hashed inputs (it draws the random salts), and an agency
needs no collision to issue what it wants.

Salts are derived from one secret so a full document stays small, and with HMAC a
disclosed salt says nothing about the others. A salt is 16 unpredictable bytes, so a
hidden field cannot be guessed by hashing candidate values (a holder's name, a date).
The one-byte prefixes keep a commitment, a leaf and an inner Merkle node (0x01) from
ever being taken for one another.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from functools import lru_cache, partial
from typing import TYPE_CHECKING

from licence.canonical import canonical_json
from licence.errors import UnsupportedHashSuite

if TYPE_CHECKING:
    from hashlib import _Hash

FORMAT = "elicence/1"
DIGEST_BYTES = 16
SECRET_BYTES = 16
DEFAULT_SUITE = "sha256-128"
SM3_SUITE = "sm3-128"


def _sm3_prime() -> _Hash | None:
    # OpenSSL 3 has SM3 in its default provider; a build without it (some FIPS-only
    # distributions) just lacks the suite, which verifiers then report as unsupported.
    try:
        return hashlib.new("sm3")
    except ValueError:
        return None


def _truncated_sm3(prime: _Hash) -> Callable[[bytes], bytes]:
    def sm3_128(data: bytes) -> bytes:
        # Copying a primed object skips hashlib.new's lookup by name: 2.9 against 4.8 us.
        h = prime.copy()
        h.update(data)
        return h.digest()[:DIGEST_BYTES]

    return sm3_128


_SM3 = _sm3_prime()
# The suites this installation can compute, by the name documents give in `hashSuite`.
SUITES: dict[str, Callable[[bytes], bytes]] = {
    DEFAULT_SUITE: lambda data: hashlib.sha256(data).digest()[:DIGEST_BYTES],
}
_NEW_HASH: dict[str, Callable[[], _Hash]] = {DEFAULT_SUITE: hashlib.sha256}
if _SM3 is not None:
    SUITES[SM3_SUITE] = _truncated_sm3(_SM3)
    _NEW_HASH[SM3_SUITE] = _SM3.copy

_COMMITMENT_TAG = b"\x02"
_LEAF_TAG = b"\x00"


def hash_function(suite: str) -> Callable[[bytes], bytes]:
    """The hash of a named suite; UnsupportedHashSuite (a DocumentError) for a suite this
    installation cannot compute."""
    try:
        return SUITES[suite]
    except KeyError:
        raise UnsupportedHashSuite(suite, tuple(SUITES)) from None


# The short names an agency may use for a suite (`elicence issue --suite sm3`, its
# configuration), besides the suites' own names.
_SHORT_NAMES = {"sha256": DEFAULT_SUITE, "sm3": SM3_SUITE}


def suite_named(name: str) -> str:
    """The suite a short ("sm3") or full ("sm3-128") name stands for; UnsupportedHashSuite
    for a suite this installation cannot compute."""
    suite = _SHORT_NAMES.get(name, name)
    hash_function(suite)
    return suite


def salt(secret: bytes, name: str, suite: str = DEFAULT_SUITE) -> bytes:
    """The salt of field `name` derived from the licence secret."""
    return derive_salts(secret, [name], suite)[0]


def derive_salts(secret: bytes, names: Sequence[str], suite: str = DEFAULT_SUITE) -> list[bytes]:
    """The salts of several fields of one licence (HMAC keyed once, then reused)."""
    return salt_function(suite)(secret, [name.encode("utf-8") for name in names])


def salt_function(suite: str) -> Callable[[bytes, Sequence[bytes]], list[bytes]]:
    """The suite's salt derivation: (secret, UTF-8 field names) to one salt per name;
    UnsupportedHashSuite for a suite this installation cannot compute."""
    hash_function(suite)
    return partial(_hmac_salts, _NEW_HASH[suite])


def _hmac_salts(new: Callable[[], _Hash], secret: bytes, names: Sequence[bytes]) -> list[bytes]:
    # HMAC by its definition (RFC 2104; SHA-256 and SM3 both have 64-byte blocks), so the
    # key schedule is paid once per licence instead of once per field: the hot path of
    # issuing and verifying (2.7x faster than hmac.digest per field).
    if len(secret) > _BLOCK:
        long_key = new()
        long_key.update(secret)
        secret = long_key.digest()
    key = secret.ljust(_BLOCK, b"\0")
    inner = new()
    inner.update(key.translate(_IPAD))
    outer = new()
    outer.update(key.translate(_OPAD))
    salts = []
    for name in names:
        step = inner.copy()
        step.update(name)
        final = outer.copy()
        final.update(step.digest())
        salts.append(final.digest()[:DIGEST_BYTES])
    return salts


def commitment(name: str, value: str, field_salt: bytes, suite: str = DEFAULT_SUITE) -> bytes:
    """The salted commitment to one field's value."""
    hasher = hash_function(suite)
    # JCS([name, value]) written out: both are strings (see licence.canonical).
    return hasher(_COMMITMENT_TAG + field_salt + _pair_prefix(name) + _jcs_text(value) + b"]")


def leaf_hash(
    licence_type: str, commitments: Mapping[str, bytes], suite: str = DEFAULT_SUITE
) -> bytes:
    """The licence id: the Merkle leaf over the type and every field's commitment."""
    hasher = hash_function(suite)
    members = b",".join(
        _member_prefix(name) + commitments[name].hex().encode() + b'"'
        for name in _member_order(tuple(commitments))
    )
    body = (
        b'{"commitments":{'
        + members
        + b'},"format":'
        + _jcs_text(FORMAT)
        + b',"hashSuite":'
        + _jcs_text(suite)
        + b',"type":'
        + _jcs_text(licence_type)
        + b"}"
    )
    return hasher(_LEAF_TAG + body)


EncoderPlan = tuple[tuple[tuple[str, bytes, bytes, bytes, bytes], ...], tuple[int, ...], bytes]


def encoder_plan(
    licence_type: str, names: Sequence[str], suite: str = DEFAULT_SUITE
) -> EncoderPlan:
    """The byte pieces of `commitment` and `leaf_hash` that depend only on the type.

    For an encoder that hashes many licences of one type (issuer's, in C): each field's
    name, its UTF-8, its commitment prefix `[name,`, its leaf member prefix `"name":"0x`
    and its document member prefix `"name":`; the fields' leaf (UTF-16) order as
    indexes into `names`; and the leaf body's tail after the commitments object.
    UnsupportedHashSuite for a suite this installation cannot compute.
    """
    hash_function(suite)
    leaf_order = _member_order(tuple(names))
    fields = tuple(
        (
            name,
            name.encode("utf-8"),
            _pair_prefix(name),
            _member_prefix(name),
            _jcs_text(name) + b":",
        )
        for name in names
    )
    tail = b'},"format":%b,"hashSuite":%b,"type":%b}' % (
        _jcs_text(FORMAT),
        _jcs_text(suite),
        _jcs_text(licence_type),
    )
    return fields, tuple(names.index(name) for name in leaf_order), tail


def leaf_body_reference(
    licence_type: str, commitments: Mapping[str, bytes], suite: str = DEFAULT_SUITE
) -> bytes:
    """The leaf's JSON body built with the general canonical_json (tests compare the two)."""
    return canonical_json(
        {
            "commitments": {name: "0x" + c.hex() for name, c in commitments.items()},
            "format": FORMAT,
            "hashSuite": suite,
            "type": licence_type,
        }
    )


_BLOCK = 64
_IPAD = bytes(b ^ 0x36 for b in range(256))
_OPAD = bytes(b ^ 0x5C for b in range(256))
# What json.dumps(ensure_ascii=False) writes for a string, without its dispatch on type.
_string_encoder = json.encoder.encode_basestring


def _jcs_text(text: str) -> bytes:
    # Strings only, so JSON's string form is JCS's (licence.canonical explains why).
    return _string_encoder(text).encode("utf-8")


@lru_cache(maxsize=256)
def _pair_prefix(name: str) -> bytes:
    return b"[" + _jcs_text(name) + b","


@lru_cache(maxsize=256)
def _member_order(names: tuple[str, ...]) -> tuple[str, ...]:
    # One licence type has one field order, so the sort is done once per type.
    return tuple(sorted(names, key=_utf16_order))


@lru_cache(maxsize=256)
def _member_prefix(name: str) -> bytes:
    return _jcs_text(name) + b':"0x'


def _utf16_order(key: str) -> bytes:
    return key.encode("utf-16-be", "surrogatepass")
