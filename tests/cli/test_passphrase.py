"""The keystore passphrase in scripts: a variable, a file, a file descriptor, or a clear
refusal. Real `elicence` processes with no terminal at all (a new session, standard
input from /dev/null), as cron or a CI job runs them."""

from __future__ import annotations

import os
import subprocess

import pytest

from issuer.keystore import AGENCY_KEYSTORE, keystore_path
from issuer.keystore import load as load_keystore
from tests.conftest import AGENCY_CODE, ELICENCE, free_port

pytestmark = pytest.mark.slow  # real processes, scrypt keystores

SECRET = "correct horse battery staple"


def run_detached(home, *args, pass_fds=(), **env):
    """`elicence ARGS` with no controlling terminal and nothing on standard input."""
    environment = {**os.environ, "ELICENCE_HOME": str(home), "COLUMNS": "200", "NO_COLOR": "1"}
    environment.pop("ELICENCE_PASSPHRASE", None)
    environment.update(env)
    return subprocess.run(
        [str(ELICENCE), *args],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        env=environment,
        start_new_session=True,  # no controlling terminal: getpass cannot ask
        pass_fds=pass_fds,
        check=False,
    )


def new_agency(home, *options, **kwargs):
    return run_detached(
        home, "agency", "new", "--name", "广州市市场监督管理局", "--code", AGENCY_CODE,
        *options, **kwargs,
    )  # fmt: skip


def secret_file(path, text=SECRET + "\n", mode=0o600):
    path.write_text(text, encoding="utf-8")
    path.chmod(mode)
    return path


def test_without_passphrase_or_terminal_the_command_says_how_to_give_one_and_exits_2(tmp_path):
    home = tmp_path / "home"
    result = new_agency(home)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "no terminal" in lines[0]
    for way in ("ELICENCE_PASSPHRASE", "--passphrase-file", "--passphrase-fd"):
        assert way in lines[0]
    assert "GetPassWarning" not in result.stderr and "Aborted" not in result.stderr
    assert not keystore_path(home, AGENCY_KEYSTORE).exists()


def test_a_private_passphrase_file_creates_a_key_that_opens_with_that_passphrase(tmp_path):
    home = tmp_path / "home"
    file = secret_file(tmp_path / "passphrase.txt")
    result = new_agency(home, "--passphrase-file", str(file))
    assert result.returncode == 0, result.stderr
    account = load_keystore(keystore_path(home, AGENCY_KEYSTORE), SECRET)
    assert account.address in result.stdout


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o620])
def test_a_passphrase_file_others_may_read_or_change_is_refused(tmp_path, mode):
    home = tmp_path / "home"
    file = secret_file(tmp_path / "passphrase.txt", mode=mode)
    result = new_agency(home, "--passphrase-file", str(file))
    assert result.returncode == 2
    assert f"mode {mode:04o}" in result.stderr and "chmod 600" in result.stderr
    assert not keystore_path(home, AGENCY_KEYSTORE).exists()


def test_a_missing_passphrase_file_exits_2_naming_it(tmp_path):
    missing = tmp_path / "nowhere.txt"
    result = new_agency(tmp_path / "home", "--passphrase-file", str(missing))
    assert result.returncode == 2
    assert str(missing) in result.stderr


def test_the_passphrase_from_a_file_descriptor_creates_and_opens_the_key(tmp_path):
    home = tmp_path / "home"
    read, write = os.pipe()
    os.write(write, (SECRET + "\n").encode())
    os.close(write)
    try:
        result = new_agency(home, "--passphrase-fd", str(read), pass_fds=(read,))
    finally:
        os.close(read)
    assert result.returncode == 0, result.stderr
    assert load_keystore(keystore_path(home, AGENCY_KEYSTORE), SECRET)


def test_an_empty_file_descriptor_is_refused_as_empty(tmp_path):
    read, write = os.pipe()
    os.close(write)
    try:
        result = new_agency(tmp_path / "home", "--passphrase-fd", str(read), pass_fds=(read,))
    finally:
        os.close(read)
    assert result.returncode == 2
    assert "empty" in result.stderr


def test_a_file_descriptor_that_is_not_open_exits_2(tmp_path):
    result = new_agency(tmp_path / "home", "--passphrase-fd", "57")
    assert result.returncode == 2
    assert "--passphrase-fd 57" in result.stderr


@pytest.mark.parametrize("source", ["variable", "file", "fd"])
def test_each_way_opens_an_existing_key_and_a_wrong_passphrase_is_named(tmp_path, source):
    home = tmp_path / "home"
    assert new_agency(home, ELICENCE_PASSPHRASE=SECRET).returncode == 0
    # Rotating opens the key first and reaches for the chain only then: with nothing
    # listening there, an opened key ends in "cannot reach the chain" (exit 3).
    nowhere = f"http://127.0.0.1:{free_port()}"
    rotate = ("agency", "rotate", "--new-key", "--chain", nowhere, "--registry", "0x" + "11" * 20)

    def attempt(passphrase):
        if source == "variable":
            return run_detached(home, *rotate, ELICENCE_PASSPHRASE=passphrase)
        if source == "file":
            file = secret_file(tmp_path / "p.txt", passphrase + "\n")
            return run_detached(home, *rotate, "--passphrase-file", str(file))
        read, write = os.pipe()
        os.write(write, passphrase.encode())
        os.close(write)
        try:
            return run_detached(home, *rotate, "--passphrase-fd", str(read), pass_fds=(read,))
        finally:
            os.close(read)

    wrong = attempt("not the passphrase")
    assert wrong.returncode == 2 and "wrong passphrase" in wrong.stderr
    right = attempt(SECRET)
    assert right.returncode == 3, right.stderr
    assert "cannot reach the chain" in right.stderr
