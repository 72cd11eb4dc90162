"""SM4 at rest: keystores encrypted with SM4-GCM (Argon2id), beside the AES ones, and
`elicence agency rekey`, which converts one in place without ever losing the key."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
from pathlib import Path

import pytest

from issuer.keystore import (
    AES,
    SM4,
    KeystoreCorrupt,
    KeystoreError,
    WrongPassphrase,
    address_of,
    cipher_of,
    create,
    default_cipher,
    load,
    rekey,
)
from tests.conftest import ELICENCE, key_for

PASSPHRASE = "correct horse battery staple"
NEW_PASSPHRASE = "a new passphrase for the agency"


@pytest.mark.parametrize("cipher", [AES, SM4])
def test_keystore_round_trips_in_either_cipher(tmp_path, cipher):
    key = key_for(f"keystore-{cipher}")
    path = tmp_path / "keys" / "agency.json"
    create(path, PASSPHRASE, key=key.key, cipher=cipher)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert key.key.hex().removeprefix("0x") not in path.read_text()
    assert cipher_of(path) == cipher
    assert address_of(path) == key.address
    assert load(path, PASSPHRASE).key == key.key


def test_sm4_keystore_names_its_algorithms(tmp_path):
    path = tmp_path / "agency.json"
    create(path, PASSPHRASE, cipher=SM4)
    crypto = json.loads(path.read_text())["crypto"]
    assert crypto["cipher"] == "sm4-gcm" and crypto["kdf"] == "argon2id"
    assert crypto["kdfparams"]["memory"] == 256 * 1024


def test_wrong_passphrase_on_sm4_keystore_is_named_as_such(tmp_path):
    path = tmp_path / "agency.json"
    create(path, PASSPHRASE, cipher=SM4)
    with pytest.raises(WrongPassphrase, match="passphrase does not open"):
        load(path, "not the passphrase")


@pytest.mark.parametrize("field", ["ciphertext", "tag", "address"])
def test_altered_sm4_keystore_is_refused_by_its_gcm_tag(tmp_path, field):
    path = tmp_path / "agency.json"
    create(path, PASSPHRASE, cipher=SM4)
    raw = json.loads(path.read_text())
    where = raw if field == "address" else raw["crypto"]
    value = where[field]
    where[field] = value[:-1] + ("0" if value[-1] != "0" else "1")
    path.write_text(json.dumps(raw))
    with pytest.raises(KeystoreCorrupt, match="altered"):
        load(path, PASSPHRASE)


def test_home_config_chooses_the_cipher_of_new_keystores(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    assert default_cipher(home) == AES
    (home / "config.json").write_text(json.dumps({"keys": {"cipher": "sm4"}}))
    path = home / "keys" / "agency.json"
    create(path, PASSPHRASE)
    assert cipher_of(path) == SM4


def test_unknown_cipher_is_refused(tmp_path):
    with pytest.raises(KeystoreError, match="not a keystore cipher"):
        create(tmp_path / "agency.json", PASSPHRASE, cipher="des")


def test_rekey_converts_aes_to_sm4_and_back_keeping_the_key(tmp_path):
    key = key_for("rekey")
    path = tmp_path / "agency.json"
    create(path, PASSPHRASE, key=key.key, cipher=AES)
    rekey(path, PASSPHRASE, NEW_PASSPHRASE, cipher=SM4)
    assert cipher_of(path) == SM4
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load(path, NEW_PASSPHRASE).key == key.key
    with pytest.raises(WrongPassphrase):
        load(path, PASSPHRASE)
    rekey(path, NEW_PASSPHRASE, PASSPHRASE, cipher=AES)
    assert cipher_of(path) == AES
    assert load(path, PASSPHRASE).key == key.key
    assert [p.name for p in tmp_path.iterdir()] == ["agency.json"]


def test_rekey_with_wrong_old_passphrase_changes_nothing(tmp_path):
    path = tmp_path / "agency.json"
    create(path, PASSPHRASE, cipher=AES)
    before = path.read_bytes()
    with pytest.raises(WrongPassphrase):
        rekey(path, "not the passphrase", NEW_PASSPHRASE, cipher=SM4)
    assert path.read_bytes() == before


def _elicence(home: Path, *args: str, fault: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "ELICENCE_HOME": str(home),
        "ELICENCE_PASSPHRASE": PASSPHRASE,
        "ELICENCE_NEW_PASSPHRASE": NEW_PASSPHRASE,
        "COLUMNS": "200",
        "NO_COLOR": "1",
    }
    env.pop("ELICENCE_FAULT", None)
    if fault is not None:
        env["ELICENCE_FAULT"] = fault
    return subprocess.run(
        [str(ELICENCE), *args], capture_output=True, text=True, env=env, check=False
    )


def test_agency_new_with_sm4_then_rekey_to_aes_from_the_command_line(tmp_path):
    home = tmp_path / "home"
    made = _elicence(
        home, "agency", "new", "--name", "测试局", "--code", "91110108551385082Q", "--cipher", "sm4"
    )
    assert made.returncode == 0, made.stderr
    path = home / "keys" / "agency.json"
    assert cipher_of(path) == SM4
    done = _elicence(home, "agency", "rekey", "--cipher", "aes")
    assert done.returncode == 0, done.stderr
    assert "re-encrypted (aes)" in done.stdout
    assert cipher_of(path) == AES
    assert load(path, NEW_PASSPHRASE).address == address_of(path)


def test_rekey_with_wrong_passphrase_says_so_on_one_line(tmp_path):
    home = tmp_path / "home"
    key = key_for("rekey-cli")
    create(home / "keys" / "agency.json", "another passphrase", key=key.key, cipher=SM4)
    done = _elicence(home, "agency", "rekey", "--cipher", "aes")
    assert done.returncode == 2
    assert "wrong passphrase" in done.stderr


def test_killed_rekey_leaves_the_old_keystore_usable_and_a_rerun_completes(tmp_path):
    home = tmp_path / "home"
    key = key_for("rekey-crash")
    path = home / "keys" / "agency.json"
    create(path, PASSPHRASE, key=key.key, cipher=AES)
    killed = _elicence(home, "agency", "rekey", "--cipher", "sm4", fault="mid-rekey")
    assert killed.returncode == -signal.SIGKILL
    assert cipher_of(path) == AES
    assert load(path, PASSPHRASE).key == key.key
    done = _elicence(home, "agency", "rekey", "--cipher", "sm4")
    assert done.returncode == 0, done.stderr
    assert load(path, NEW_PASSPHRASE).key == key.key
    assert sorted(p.name for p in path.parent.iterdir()) == ["agency.json"]
