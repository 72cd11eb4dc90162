"""The agency seal: an SM2 signature (GB/T 32918.2-2016) over an anchored batch root.

With || concatenation, a batch is sealed by signing

    message = ASCII "elicence/1 seal" || chainId (8 bytes, big-endian)
              || registry (20 bytes) || root (16 bytes)                  (59 bytes)

with the agency's SM2 key, the hash SM3 (GB/T 32905-2016) and the default
distinguishing identifier ASCII "1234567812345678" (GB/T 35276-2017 section 10), so the
signed digest is e = SM3(Z_A || message). The chain id and registry bind a seal to one
registry, so a seal cannot be replayed from a test chain; the root covers every licence
of the batch. A seal is r || s, each a 32-byte big-endian integer in [1, n-1] (64
bytes, not DER: every QR code carries it). A public key is X || Y, the two 32-byte
coordinates of the uncompressed point without its 0x04 prefix (64 bytes); a private
key is the 32-byte scalar d, 1 <= d <= n-2.

The arithmetic is OpenSSL 3's (libcrypto's EVP SM2 through ctypes): no maintained
Python package signs with SM2 safely (docs/format.md, "Agency seal"), and libcrypto is
already what hashlib's SM3 uses. Nonces come from OpenSSL's DRBG.

SealError (LicenceFormatError)
├── SealUnavailable                 this installation's OpenSSL cannot do SM2
├── MalformedSeal  (also ValueError)    not 64 bytes, or r or s out of range
├── MalformedSealKey (also ValueError)  not a key on the SM2 curve
└── SealMismatch   (also ValueError)    a well-formed seal that does not verify
"""

from __future__ import annotations

import ctypes
import ctypes.util
import secrets
from functools import lru_cache

from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from licence.errors import LicenceFormatError

SEAL_BYTES = 64
PUBLIC_KEY_BYTES = 64
PRIVATE_KEY_BYTES = 32
DEFAULT_ID = b"1234567812345678"
SEAL_TAG = b"elicence/1 seal"

# The order n of the SM2 recommended curve (GB/T 32918.5-2017).
CURVE_ORDER = 0xFFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFF7203DF6B21C6052B53BBF40939D54123

# DER prefixes that name the curve (OID 1.2.156.10197.1.301, sm2p256v1): an RFC 5915
# private key without its optional public key (OpenSSL derives it), and an RFC 5480
# SubjectPublicKeyInfo of id-ecPublicKey on that curve with an uncompressed point.
_SM2_OID = bytes.fromhex("06082a811ccf5501822d")
_PRIVATE_PREFIX = bytes.fromhex("3031020101") + b"\x04\x20"
_PRIVATE_SUFFIX = b"\xa0\x0a" + _SM2_OID
_PUBLIC_PREFIX = bytes.fromhex("3059301306072a8648ce3d0201") + _SM2_OID + bytes.fromhex("03420004")


class SealError(LicenceFormatError):
    """A seal cannot be made or checked."""


class SealUnavailable(SealError):
    """This installation's OpenSSL (libcrypto 3) has no SM2: seals can be neither made
    nor checked, which verifiers report as such, never as a wrong seal."""


class MalformedSeal(SealError, ValueError):
    """A seal is not 64 bytes r || s with r and s in [1, n-1]."""


class MalformedSealKey(SealError, ValueError):
    """A key is not an SM2 key: wrong length, a scalar out of range, a point off the curve."""


class SealMismatch(SealError, ValueError):
    """A well-formed seal that the key does not verify for this message."""


def seal_message(chain_id: int, registry: bytes, root: bytes) -> bytes:
    """The 59 bytes an agency seals for the batch `root` anchored in `registry`."""
    if not 0 < chain_id < 2**64:
        raise SealError(f"chain id {chain_id} is not in 1..2^64-1")
    if len(registry) != 20 or len(root) != 16:
        raise SealError("a seal covers a 20-byte registry address and a 16-byte root")
    return SEAL_TAG + chain_id.to_bytes(8, "big") + registry + root


def new_private_key() -> bytes:
    """A fresh SM2 private key (32 bytes), uniform in [1, n-2] as GB/T 32918.1 asks."""
    return (secrets.randbelow(CURVE_ORDER - 2) + 1).to_bytes(PRIVATE_KEY_BYTES, "big")


def public_key(private_key: bytes) -> bytes:
    """The 64-byte public key X || Y of a private key."""
    lib = _lib()
    pkey = _load_private(lib, private_key)
    try:
        out = ctypes.c_char_p(None)
        size = lib.i2d_PUBKEY(pkey, ctypes.byref(out))
        if size <= 0:
            raise SealError(f"OpenSSL did not encode the public key: {_drain(lib)}")
        der = ctypes.string_at(out, size)
        lib.CRYPTO_free(out, None, 0)
    finally:
        lib.EVP_PKEY_free(pkey)
    if not der.startswith(_PUBLIC_PREFIX) or len(der) != len(_PUBLIC_PREFIX) + PUBLIC_KEY_BYTES:
        raise SealError("OpenSSL encoded the public key unexpectedly")
    return der[len(_PUBLIC_PREFIX) :]


def check_public_key(public: bytes) -> None:
    """Return if `public` is a 64-byte point on the SM2 curve, else raise MalformedSealKey."""
    lib = _lib()
    lib.EVP_PKEY_free(_load_public(lib, public))


def sign(private_key: bytes, message: bytes) -> bytes:
    """The 64-byte SM2 signature r || s of `message` (SM3, the default identifier)."""
    lib = _lib()
    pkey = _load_private(lib, private_key)
    try:
        der = _digest_op(lib, pkey, message, None)
    finally:
        lib.EVP_PKEY_free(pkey)
    return _raw(der)


def verify(public: bytes, message: bytes, seal: bytes) -> None:
    """Return if `seal` is `public`'s SM2 signature of `message`, else raise a SealError."""
    der = _der(seal)
    lib = _lib()
    pkey = _load_public(lib, public)
    try:
        _digest_op(lib, pkey, message, der)
    finally:
        lib.EVP_PKEY_free(pkey)


def seal_root(private_key: bytes, chain_id: int, registry: bytes, root: bytes) -> bytes:
    """The seal of batch `root` anchored in `registry` on chain `chain_id`."""
    return sign(private_key, seal_message(chain_id, registry, root))


def check_seal(public: bytes, chain_id: int, registry: bytes, root: bytes, seal: bytes) -> None:
    """Return if `seal` is `public`'s seal of `root`, else raise a SealError."""
    verify(public, seal_message(chain_id, registry, root), seal)


def _raw(der: bytes) -> bytes:
    # OpenSSL writes SEQUENCE { INTEGER r, INTEGER s }, each minimal two's complement.
    from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

    r, s = decode_dss_signature(der)
    return r.to_bytes(32, "big") + s.to_bytes(32, "big")


def _der(seal: bytes) -> bytes:
    if len(seal) != SEAL_BYTES:
        raise MalformedSeal(f"a seal has {SEAL_BYTES} bytes, not {len(seal)}")
    r = int.from_bytes(seal[:32], "big")
    s = int.from_bytes(seal[32:], "big")
    if not (0 < r < CURVE_ORDER and 0 < s < CURVE_ORDER):
        raise MalformedSeal("r and s of a seal lie in [1, n-1]")
    return encode_dss_signature(r, s)


def _load_private(lib: ctypes.CDLL, private_key: bytes) -> int:
    if len(private_key) != PRIVATE_KEY_BYTES:
        raise MalformedSealKey(f"an SM2 private key has {PRIVATE_KEY_BYTES} bytes")
    if not 0 < int.from_bytes(private_key, "big") < CURVE_ORDER - 1:
        raise MalformedSealKey("an SM2 private key lies in [1, n-2]")
    der = _PRIVATE_PREFIX + private_key + _PRIVATE_SUFFIX
    return _decode(lib, lib.d2i_AutoPrivateKey, der, "private key")


def _load_public(lib: ctypes.CDLL, public: bytes) -> int:
    if len(public) != PUBLIC_KEY_BYTES:
        raise MalformedSealKey(f"an SM2 public key has {PUBLIC_KEY_BYTES} bytes, not {len(public)}")
    return _decode(lib, lib.d2i_PUBKEY, _PUBLIC_PREFIX + public, "public key")


def _decode(lib: ctypes.CDLL, decoder: ctypes._NamedFuncPointer, der: bytes, what: str) -> int:
    buffer = ctypes.create_string_buffer(der, len(der))
    cursor = ctypes.c_char_p(ctypes.addressof(buffer))
    pkey = decoder(None, ctypes.byref(cursor), len(der))
    if not pkey:
        # OpenSSL checks the point is on the curve (and not infinity) when decoding.
        raise MalformedSealKey(f"not an SM2 {what}: {_drain(lib)}")
    if lib.EVP_PKEY_is_a(pkey, b"SM2") != 1:
        lib.EVP_PKEY_free(pkey)
        raise MalformedSealKey(f"not an SM2 {what}")
    return int(pkey)


def _digest_op(lib: ctypes.CDLL, pkey: int, message: bytes, signature: bytes | None) -> bytes:
    """Sign `message` (signature None; returns DER) or verify `signature` (returns b"")."""
    mctx = lib.EVP_MD_CTX_new()
    pctx = lib.EVP_PKEY_CTX_new(pkey, None)
    try:
        if not mctx or not pctx:
            raise SealError(f"OpenSSL could not allocate: {_drain(lib)}")
        if lib.EVP_PKEY_CTX_set1_id(pctx, DEFAULT_ID, len(DEFAULT_ID)) <= 0:
            raise SealError(f"OpenSSL refused the identifier: {_drain(lib)}")
        # The message context uses the key context (and its identifier) without owning
        # it: EVP_MD_CTX_set_pkey_ctx sets EVP_MD_CTX_FLAG_KEEP_PKEY_CTX.
        lib.EVP_MD_CTX_set_pkey_ctx(mctx, pctx)
        if signature is None:
            if lib.EVP_DigestSignInit(mctx, None, lib.EVP_sm3(), None, pkey) != 1:
                raise SealError(f"OpenSSL cannot sign with SM2: {_drain(lib)}")
            size = ctypes.c_size_t(80)
            out = ctypes.create_string_buffer(80)
            if lib.EVP_DigestSign(mctx, out, ctypes.byref(size), message, len(message)) != 1:
                raise SealError(f"OpenSSL did not sign: {_drain(lib)}")
            return out.raw[: size.value]
        if lib.EVP_DigestVerifyInit(mctx, None, lib.EVP_sm3(), None, pkey) != 1:
            raise SealError(f"OpenSSL cannot verify SM2: {_drain(lib)}")
        result = lib.EVP_DigestVerify(mctx, signature, len(signature), message, len(message))
        _drain(lib)
        if result != 1:
            raise SealMismatch("the seal does not verify with this key")
        return b""
    finally:
        if mctx:
            lib.EVP_MD_CTX_free(mctx)
        if pctx:
            lib.EVP_PKEY_CTX_free(pctx)


def _drain(lib: ctypes.CDLL) -> str:
    """The oldest queued OpenSSL error, clearing the thread's queue."""
    code = lib.ERR_get_error()
    text = ctypes.create_string_buffer(256)
    if code:
        lib.ERR_error_string_n(code, text, len(text))
    lib.ERR_clear_error()
    return text.value.decode("ascii", "replace") or "no detail"


@lru_cache(maxsize=1)
def _lib() -> ctypes.CDLL:
    name = ctypes.util.find_library("crypto")
    try:
        lib = ctypes.CDLL(name or "libcrypto.so.3")
        version = lib.OpenSSL_version_num
    except (OSError, AttributeError) as exc:
        raise SealUnavailable(f"no OpenSSL 3 libcrypto for SM2 seals: {exc}") from None
    version.restype = ctypes.c_ulong
    if version() < 0x30000000:
        raise SealUnavailable("SM2 seals need OpenSSL 3 (libcrypto.so.3)")
    p, i, sz, cp = ctypes.c_void_p, ctypes.c_int, ctypes.c_size_t, ctypes.c_char_p
    signatures: dict[str, tuple[object, list[object]]] = {
        "d2i_AutoPrivateKey": (p, [p, ctypes.POINTER(cp), ctypes.c_long]),
        "d2i_PUBKEY": (p, [p, ctypes.POINTER(cp), ctypes.c_long]),
        "i2d_PUBKEY": (i, [p, ctypes.POINTER(cp)]),
        "CRYPTO_free": (None, [p, cp, i]),
        "EVP_PKEY_is_a": (i, [p, cp]),
        "EVP_PKEY_free": (None, [p]),
        "EVP_MD_CTX_new": (p, []),
        "EVP_MD_CTX_free": (None, [p]),
        "EVP_PKEY_CTX_new": (p, [p, p]),
        "EVP_PKEY_CTX_free": (None, [p]),
        "EVP_PKEY_CTX_set1_id": (i, [p, cp, i]),
        "EVP_MD_CTX_set_pkey_ctx": (None, [p, p]),
        "EVP_sm3": (p, []),
        "EVP_DigestSignInit": (i, [p, p, p, p, p]),
        "EVP_DigestSign": (i, [p, cp, ctypes.POINTER(sz), cp, sz]),
        "EVP_DigestVerifyInit": (i, [p, p, p, p, p]),
        "EVP_DigestVerify": (i, [p, cp, sz, cp, sz]),
        "ERR_get_error": (ctypes.c_ulong, []),
        "ERR_error_string_n": (None, [ctypes.c_ulong, cp, sz]),
        "ERR_clear_error": (None, []),
    }
    try:
        for symbol, (restype, argtypes) in signatures.items():
            function = getattr(lib, symbol)
            function.restype = restype
            function.argtypes = argtypes
    except AttributeError as exc:
        raise SealUnavailable(f"this libcrypto lacks {exc}") from None
    if not lib.EVP_sm3():
        raise SealUnavailable("this OpenSSL has no SM3")
    return lib
