"""Keystores: encrypted, private, never replaced, and a wrong passphrase is named."""

from __future__ import annotations

import stat

import pytest

from issuer.keystore import KeystoreExists, WrongPassphrase, address_of, create, load
from tests.conftest import key_for

PASSPHRASE = "correct horse battery staple"


def test_keystore_is_private_encrypted_and_opens_with_its_passphrase(tmp_path):
    key = key_for("keystore")
    path = tmp_path / "keys" / "agency.json"
    create(path, PASSPHRASE, key=key.key)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert key.key.hex()[2:] not in path.read_text() and key.key.hex() not in path.read_text()
    assert address_of(path) == key.address
    assert load(path, PASSPHRASE).address == key.address


def test_wrong_passphrase_is_named_as_such(tmp_path):
    path = tmp_path / "agency.json"
    create(path, PASSPHRASE)
    with pytest.raises(WrongPassphrase, match="passphrase"):
        load(path, "not the passphrase")


def test_existing_keystore_is_never_replaced(tmp_path):
    path = tmp_path / "agency.json"
    first = create(path, PASSPHRASE)
    with pytest.raises(KeystoreExists):
        create(path, PASSPHRASE)
    assert address_of(path) == first.address
