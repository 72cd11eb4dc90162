"""Agency and governor keys at rest: encrypted JSON keystores, in one of two ciphers.

- "aes" (the default): eth-account's Web3 Secret Storage v3 (scrypt n=2^18 r=8 p=1,
  AES-128-CTR, a Keccak MAC), which geth, MetaMask and web3 tools read too.
- "sm4": the same JSON shape with national cryptography (GB/T 39786-2021): Argon2id
  (RFC 9106; 256 MiB, 3 passes, 4 lanes) derives 32 bytes from the passphrase; the
  first 16 are the SM4 key, the SM3 hash of the last 16 is stored as "check" so a wrong
  passphrase is told apart from an altered file; the 32-byte private key is encrypted
  with SM4-GCM (12-byte random nonce), and the authenticated data binds the address,
  the KDF and its parameters, so no clear field can be changed unnoticed:

      {"version": 3, "address": "<40 hex>", "id": "<uuid>",
       "crypto": {"cipher": "sm4-gcm", "cipherparams": {"iv": "<24 hex>"},
                  "ciphertext": "<64 hex>", "tag": "<32 hex>",
                  "kdf": "argon2id", "kdfparams": {"dklen": 32, "memory": 262144,
                  "iterations": 3, "lanes": 4, "salt": "<32 hex>"},
                  "check": "<64 hex>"}}

  The authenticated data is b"elicence-keystore/sm4-gcm" followed by the canonical JSON
  (sorted keys, no spaces) of {"address", "kdf", "kdfparams"}.

Which cipher a new keystore gets: the caller's choice, else the home's config.json
(`"keys": {"cipher": "sm4"}`), else "aes". Opening reads whichever the file names.

A keystore is written atomically, readable by its owner only (mode 0600), and never
replaced by another key: losing a signing key that the registry knows would leave an
agency unable to revoke what it issued. `rekey` re-encrypts the same key in place (new
passphrase, or the other cipher) and is crash-safe: the old file stays whole until the
new one, complete and proven to open, takes its name. The key itself never leaves this
module except as the LocalAccount that signs; it is never printed or logged.

KeystoreError (IssuerError)
├── KeystoreMissing  (also FileNotFoundError)  no keystore at the path
├── KeystoreExists   (also FileExistsError)    refusing to replace a key
├── KeystoreCorrupt  (also ValueError)         not an encrypted keystore, or altered
└── WrongPassphrase  (also ValueError)         the passphrase does not open it
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
import uuid
from pathlib import Path
from typing import Any, Final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.kdf.argon2 import Argon2id
from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_utils.address import to_checksum_address

from issuer.errors import IssuerError
from issuer.faults import fault_point
from issuer.files import PRIVATE, write_atomically
from ledger.private import private_folder

KEYS_DIR = "keys"
AGENCY_KEYSTORE = "agency.json"
GOVERNOR_KEYSTORE = "governor.json"
MIN_PASSPHRASE = 8
CONFIG_FILE = "config.json"  # the home's (ledger.config), read here for "keys"

AES, SM4 = "aes", "sm4"
CIPHERS: Final = (AES, SM4)
# Each cipher's name in the file ("crypto.cipher").
_FILE_CIPHER: Final = {AES: "aes-128-ctr", SM4: "sm4-gcm"}
# RFC 9106's Argon2id with as much memory as the "aes" keystores' scrypt (128 * r * n
# bytes = 256 MiB), so an SM4 keystore costs a guesser no less: ~0.45 s to open here.
ARGON2_MEMORY_KIB = 256 * 1024
ARGON2_ITERATIONS = 3
ARGON2_LANES = 4
_AAD_PREFIX = b"elicence-keystore/sm4-gcm"


class KeystoreError(IssuerError):
    """A keystore cannot be created or opened."""


class KeystoreMissing(KeystoreError, FileNotFoundError):
    """There is no keystore at the path."""

    def __str__(self) -> str:  # OSError would render (errno, strerror)
        return str(self.args[0])


class KeystoreExists(KeystoreError, FileExistsError):
    """A keystore already exists at the path; keys are never replaced silently."""

    def __str__(self) -> str:
        return str(self.args[0])


class KeystoreCorrupt(KeystoreError, ValueError):
    """The file is not an encrypted keystore."""


class WrongPassphrase(KeystoreError, ValueError):
    """The passphrase does not decrypt the keystore."""


def keystore_path(home: Path, name: str) -> Path:
    """HOME/keys/NAME."""
    return home / KEYS_DIR / name


def create(
    path: Path, passphrase: str, *, key: bytes | None = None, cipher: str | None = None
) -> LocalAccount:
    """Create a new key (or encrypt `key`) into a keystore at `path`; refuses to overwrite.

    `cipher` is "aes" or "sm4"; None takes the default of the home `path` lies in
    (HOME/keys/NAME: `default_cipher(HOME)`).
    """
    if path.exists():
        raise KeystoreExists(f"{path} already exists; a key is never replaced")
    _check_passphrase(passphrase)
    chosen = cipher_named(cipher) if cipher is not None else default_cipher(path.parent.parent)
    account: LocalAccount = Account.from_key(key) if key is not None else Account.create()
    private_folder(path.parent)
    write_atomically(path, _encrypt(account, passphrase, chosen), mode=PRIVATE)
    return account


def cipher_named(name: str) -> str:
    """The cipher `name` means, "aes" or "sm4" (also for "aes-128-ctr" or "sm4-gcm")."""
    lowered = name.strip().lower()
    for short, long in _FILE_CIPHER.items():
        if lowered in (short, long):
            return short
    raise KeystoreError(f"{name!r} is not a keystore cipher: choose {' or '.join(CIPHERS)}")


def default_cipher(home: Path) -> str:
    """The cipher for new keystores of `home`: config.json's `"keys": {"cipher": ...}`,
    else "aes"."""
    path = home / CONFIG_FILE
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return AES
    except (OSError, ValueError) as exc:
        raise KeystoreError(f"{path} cannot be read: {exc}") from None
    keys = raw.get("keys") if isinstance(raw, dict) else None
    if keys is None:
        return AES
    configured = keys.get("cipher") if isinstance(keys, dict) else None
    if not isinstance(configured, str):
        raise KeystoreError(f'{path}: "keys" must be {{"cipher": "aes" or "sm4"}}')
    return cipher_named(configured)


def cipher_of(path: Path) -> str:
    """The cipher the keystore at `path` is encrypted with, read without the passphrase."""
    named = _read(path)["crypto"].get("cipher")
    try:
        return cipher_named(str(named))
    except KeystoreError:
        raise KeystoreCorrupt(f"{path} names an unknown cipher {named!r}") from None


def rekey(path: Path, old: str, new: str, *, cipher: str | None = None) -> LocalAccount:
    """Re-encrypt the keystore at `path` with passphrase `new` and `cipher` (None keeps
    its cipher), in place and crash-safe.

    The new file is written beside the old one, flushed, opened again with `new` (it
    must hold the same key) and only then renamed over it; the folder is flushed after.
    A crash at any moment leaves either the old keystore or the new one, whole.

    Raises:
        WrongPassphrase: `old` does not open the keystore.
        KeystoreCorrupt, KeystoreMissing: as `load`.
        KeystoreError: `new` is too short, or `cipher` is unknown.
    """
    _check_passphrase(new)
    account = load(path, old)
    chosen = cipher_named(cipher) if cipher is not None else cipher_of(path)
    data = _encrypt(account, new, chosen)
    if _decrypt(json.loads(data), new, path).address != account.address:
        raise KeystoreError(f"re-encrypting {path} did not give back its key")  # never expected
    _replace(path, data)
    return account


def _check_passphrase(passphrase: str) -> None:
    if len(passphrase) < MIN_PASSPHRASE:
        raise KeystoreError(f"the passphrase must have at least {MIN_PASSPHRASE} characters")


def _replace(path: Path, data: bytes) -> None:
    """write_atomically, with the folder flushed too (a rename is durable only then) and a
    fault point half-way through the new file, where a crash would hurt most."""
    for stale in path.parent.glob(f".{path.name}.*.tmp"):  # left by a killed rekey
        stale.unlink(missing_ok=True)
    fd, temp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data[: len(data) // 2])
            handle.flush()
            fault_point("mid-rekey")
            handle.write(data[len(data) // 2 :])
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temp_name, PRIVATE)
        os.replace(temp_name, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp_name)
        raise
    folder = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(folder)
    finally:
        os.close(folder)


def _encrypt(account: LocalAccount, passphrase: str, cipher: str) -> bytes:
    if cipher == AES:
        return json.dumps(Account.encrypt(account.key, passphrase, kdf="scrypt")).encode("ascii")
    salt, iv = os.urandom(16), os.urandom(12)
    params = {
        "dklen": 32,
        "memory": ARGON2_MEMORY_KIB,
        "iterations": ARGON2_ITERATIONS,
        "lanes": ARGON2_LANES,
        "salt": salt.hex(),
    }
    address = account.address.removeprefix("0x").lower()
    derived = _argon2id(passphrase, params)
    encryptor = Cipher(algorithms.SM4(derived[:16]), modes.GCM(iv)).encryptor()
    encryptor.authenticate_additional_data(_sm4_aad(address, "argon2id", params))
    ciphertext = encryptor.update(bytes(account.key)) + encryptor.finalize()
    document = {
        "version": 3,
        "address": address,
        "id": str(uuid.uuid4()),
        "crypto": {
            "cipher": _FILE_CIPHER[SM4],
            "cipherparams": {"iv": iv.hex()},
            "ciphertext": ciphertext.hex(),
            "tag": encryptor.tag.hex(),
            "kdf": "argon2id",
            "kdfparams": params,
            "check": hashlib.new("sm3", derived[16:]).hexdigest(),
        },
    }
    return json.dumps(document).encode("ascii")


def _argon2id(passphrase: str, params: dict[str, Any]) -> bytes:
    return Argon2id(
        salt=bytes.fromhex(params["salt"]),
        length=params["dklen"],
        iterations=params["iterations"],
        lanes=params["lanes"],
        memory_cost=params["memory"],
    ).derive(passphrase.encode("utf-8"))


def _sm4_aad(address: str, kdf: object, params: object) -> bytes:
    canonical = json.dumps(
        {"address": address, "kdf": kdf, "kdfparams": params},
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    )
    return _AAD_PREFIX + canonical.encode("utf-8")


def _decrypt(raw: dict[str, Any], passphrase: str, path: Path) -> LocalAccount:
    """The account in a parsed keystore of either cipher."""
    crypto = raw["crypto"]
    if crypto.get("cipher") != _FILE_CIPHER[SM4]:
        try:
            key = Account.decrypt(raw, passphrase)
        except ValueError as exc:
            if "MAC mismatch" in str(exc):
                raise WrongPassphrase(f"the passphrase does not open {path}") from None
            raise KeystoreCorrupt(f"{path} is not a usable keystore: {exc}") from None
        aes_account: LocalAccount = Account.from_key(key)
        return aes_account
    try:
        params = crypto["kdfparams"]
        if crypto.get("kdf") != "argon2id" or params.get("dklen") != 32:
            raise ValueError(f"unknown key derivation {crypto.get('kdf')!r}")
        derived = _argon2id(passphrase, params)
        check = bytes.fromhex(crypto["check"])
        iv, tag = bytes.fromhex(crypto["cipherparams"]["iv"]), bytes.fromhex(crypto["tag"])
        ciphertext = bytes.fromhex(crypto["ciphertext"])
        address = str(raw["address"]).removeprefix("0x").lower()
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise KeystoreCorrupt(f"{path} is not a usable SM4 keystore: {exc}") from None
    if hashlib.new("sm3", derived[16:]).digest() != check:
        raise WrongPassphrase(f"the passphrase does not open {path}")
    decryptor = Cipher(algorithms.SM4(derived[:16]), modes.GCM(iv, tag)).decryptor()
    decryptor.authenticate_additional_data(_sm4_aad(address, crypto["kdf"], params))
    try:
        plain = decryptor.update(ciphertext) + decryptor.finalize()
    except InvalidTag:
        raise KeystoreCorrupt(
            f"{path} has been altered: its SM4-GCM tag does not match (the passphrase is right)"
        ) from None
    account: LocalAccount = Account.from_key(plain)
    if account.address.removeprefix("0x").lower() != address:  # the tag covers it: belt
        raise KeystoreCorrupt(f"{path} holds a key of another address than it names")
    return account


def address_of(path: Path) -> str:
    """The checksummed address a keystore holds, read without the passphrase."""
    address = _read(path).get("address")
    if not isinstance(address, str):
        raise KeystoreCorrupt(f"{path} names no address")
    return to_checksum_address("0x" + address.removeprefix("0x"))


def load(path: Path, passphrase: str) -> LocalAccount:
    """The account in the keystore at `path`."""
    return _decrypt(_read(path), passphrase, path)


def _read(path: Path) -> dict[str, Any]:
    try:
        raw = json.loads(path.read_bytes())
    except FileNotFoundError:
        raise KeystoreMissing(f"no keystore at {path}") from None
    except (OSError, ValueError) as exc:
        raise KeystoreCorrupt(f"{path} is not a keystore: {exc}") from None
    if not isinstance(raw, dict) or not isinstance(raw.get("crypto"), dict):
        raise KeystoreCorrupt(f"{path} is not an encrypted keystore")
    return raw


# The agency's SM2 seal key (licence.seal) is kept exactly as its chain key: a keystore
# of the same format and cipher holding the 32-byte SM2 scalar (every SM2 scalar is below
# secp256k1's order, so the file format takes it unchanged; its "address" means nothing).
SEAL_KEYSTORE = "seal.json"


def create_seal_key(path: Path, passphrase: str, *, cipher: str | None = None) -> bytes:
    """Create a new SM2 seal key in a keystore at `path` (refusing to overwrite one) and
    return its 64-byte public key X || Y."""
    from licence import seal

    private = seal.new_private_key()
    create(path, passphrase, key=private, cipher=cipher)
    return seal.public_key(private)


def load_seal_key(path: Path, passphrase: str) -> bytes:
    """The 32-byte SM2 private key in the seal keystore at `path`."""
    from licence import seal

    private = bytes(load(path, passphrase).key)
    try:
        seal.public_key(private)
    except seal.MalformedSealKey:
        raise KeystoreCorrupt(f"{path} does not hold an SM2 seal key") from None
    return private
