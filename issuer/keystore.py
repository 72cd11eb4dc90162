"""Agency and governor keys at rest: eth-account's encrypted JSON keystores (scrypt).

A keystore is written once, atomically, readable by its owner only (mode 0600), and
never overwritten: losing a signing key that the registry knows would leave an agency
unable to revoke what it issued. The key itself never leaves this module except as the
LocalAccount that signs; it is never printed or logged.

KeystoreError (IssuerError)
├── KeystoreMissing  (also FileNotFoundError)  no keystore at the path
├── KeystoreExists   (also FileExistsError)    refusing to replace a key
├── KeystoreCorrupt  (also ValueError)         not an encrypted keystore
└── WrongPassphrase  (also ValueError)         the passphrase does not open it
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_utils.address import to_checksum_address

from issuer.errors import IssuerError
from issuer.files import PRIVATE, write_atomically
from ledger.private import private_folder

KEYS_DIR = "keys"
AGENCY_KEYSTORE = "agency.json"
GOVERNOR_KEYSTORE = "governor.json"
MIN_PASSPHRASE = 8


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


def create(path: Path, passphrase: str, *, key: bytes | None = None) -> LocalAccount:
    """Create a new key (or encrypt `key`) into a keystore at `path`; refuses to overwrite."""
    if path.exists():
        raise KeystoreExists(f"{path} already exists; a key is never replaced")
    if len(passphrase) < MIN_PASSPHRASE:
        raise KeystoreError(f"the passphrase must have at least {MIN_PASSPHRASE} characters")
    account: LocalAccount = Account.from_key(key) if key is not None else Account.create()
    encrypted = Account.encrypt(account.key, passphrase, kdf="scrypt")
    private_folder(path.parent)
    write_atomically(path, json.dumps(encrypted).encode("ascii"), mode=PRIVATE)
    return account


def address_of(path: Path) -> str:
    """The checksummed address a keystore holds, read without the passphrase."""
    address = _read(path).get("address")
    if not isinstance(address, str):
        raise KeystoreCorrupt(f"{path} names no address")
    return to_checksum_address("0x" + address.removeprefix("0x"))


def load(path: Path, passphrase: str) -> LocalAccount:
    """The account in the keystore at `path`."""
    raw = _read(path)
    try:
        key = Account.decrypt(raw, passphrase)
    except ValueError as exc:
        if "MAC mismatch" in str(exc):
            raise WrongPassphrase(f"the passphrase does not open {path}") from None
        raise KeystoreCorrupt(f"{path} is not a usable keystore: {exc}") from None
    account: LocalAccount = Account.from_key(key)
    return account


def _read(path: Path) -> dict[str, Any]:
    try:
        raw = json.loads(path.read_bytes())
    except FileNotFoundError:
        raise KeystoreMissing(f"no keystore at {path}") from None
    except (OSError, ValueError) as exc:
        raise KeystoreCorrupt(f"{path} is not a keystore: {exc}") from None
    if not isinstance(raw, dict) or "crypto" not in raw:
        raise KeystoreCorrupt(f"{path} is not an encrypted keystore")
    return raw
