"""`elicence doctor` on real homes: a healthy one over a running node, one whose agency
keystore is readable by everyone, and one whose chain is down. Each problem is named with
its fix, and the exit code is the worst result (0 OK, 1 WARN, 2 FAIL)."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from ledger.config import HomeConfig
from ledger.index import RegistryIndex
from tests.conftest import free_port, run_elicence
from tests.service.conftest import issued_on_node
from verifier.service.apikeys import ApiKeyStore


@pytest.fixture
def private_umask() -> Iterator[None]:
    # As every elicence process runs (ledger.private.restrict_umask): the homes made
    # here in the test process must be what elicence itself would have written.
    previous = os.umask(0o077)
    try:
        yield
    finally:
        os.umask(previous)


@pytest.fixture
def healthy_home(node_process, tmp_path, private_umask) -> Path:
    """A registry on a running node, the home's config naming both, a synced index, one
    approval system's key and an agency keystore."""
    registry, _, _ = issued_on_node(node_process.url, tmp_path / "licences", "doctor", 2)
    home = tmp_path / "home-ok"
    HomeConfig.model_construct(
        chain_url=node_process.url, chain_id=registry.chain.chain_id, registry=registry.address
    ).save(home)
    index = RegistryIndex(home / "index.sqlite", registry)
    index.sync()
    index.close()
    store = ApiKeyStore(home / "service" / "apikeys.sqlite")
    store.create("county-approvals")
    store.create("ops", operator=True)
    store.close()
    (home / "keys").mkdir()
    (home / "keys" / "agency.json").write_text("{}")
    return home


def lines_of(output: str) -> dict[str, str]:
    """check name -> its level, from the report."""
    found = {}
    for line in output.splitlines():
        match = re.match(r"(OK|WARN|FAIL)\s+([a-z ]+):", line)
        if match:
            found[match.group(2)] = match.group(1)
    return found


def test_healthy_home_is_all_ok_and_exits_0(healthy_home):
    done = run_elicence("doctor", "--home", str(healthy_home))
    levels = lines_of(done.stdout)
    assert levels == {
        "file permissions": "OK",
        "chain": "OK",
        "registry": "OK",
        "index": "OK",
        "keys": "OK",
        "disk": levels["disk"],  # the machine's, not the home's
    }
    assert done.returncode == (0 if levels["disk"] == "OK" else 1), done.stdout
    assert "1 API key(s) active, 1 operator key(s)" in done.stdout


def test_world_readable_keystore_fails_and_says_how_to_fix(healthy_home):
    keystore = healthy_home / "keys" / "agency.json"
    keystore.chmod(0o644)
    done = run_elicence("doctor", "--home", str(healthy_home))
    assert done.returncode == 2
    assert lines_of(done.stdout)["file permissions"] == "FAIL"
    assert str(keystore) in done.stdout
    assert f"chmod -R go-rwx {healthy_home}" in done.stdout
    assert oct(keystore.stat().st_mode & 0o777) == "0o644"  # reported, not changed


def test_home_whose_chain_is_down_fails_with_the_command_to_start_it(tmp_path, private_umask):
    home = tmp_path / "home-down"
    HomeConfig.model_construct(
        chain_url=f"http://127.0.0.1:{free_port()}",
        chain_id=1337,
        registry="0x" + "11" * 20,
    ).save(home)
    done = run_elicence("doctor", "--home", str(home))
    levels = lines_of(done.stdout)
    assert done.returncode == 2
    assert levels["chain"] == "FAIL"
    assert levels["registry"] == "FAIL"  # cannot be looked for without the chain
    assert f"elicence ledger serve --home {home}" in done.stdout


def test_stale_index_and_no_keys_warn_and_exit_1(node_process, tmp_path, private_umask):
    registry, _, _ = issued_on_node(node_process.url, tmp_path / "licences", "stale", 1)
    home = tmp_path / "home-new"
    HomeConfig.model_construct(
        chain_url=node_process.url, chain_id=registry.chain.chain_id, registry=registry.address
    ).save(home)
    done = run_elicence("doctor", "--home", str(home))
    levels = lines_of(done.stdout)
    assert levels["index"] == "WARN" and levels["keys"] == "WARN"
    assert "FAIL" not in levels.values()
    assert done.returncode == 1
    assert "elicence apikey create" in done.stdout


def test_keys_are_counted_in_the_shared_postgresql_store(tmp_path, postgres_url, private_umask):
    # A replica's home naming a PostgreSQL database: its SQLite key file does not exist,
    # and the keys every replica shares are the ones counted.
    from verifier.service.settings import Settings
    from verifier.service.stores import open_key_store

    home = tmp_path / "home-pg"
    HomeConfig.model_construct(chain_url=f"http://127.0.0.1:{free_port()}").save(home)
    config = home / "config.json"
    config.write_text(json.dumps({**json.loads(config.read_text()), "database": postgres_url}))
    store = open_key_store(Settings(home=home, database=postgres_url))
    store.create("shenzhen-approvals")
    store.create("guangzhou-approvals")
    store.revoke("guangzhou-approvals")
    store.close()
    done = run_elicence("doctor", "--home", str(home))
    assert "1 API key(s) active, 0 operator key(s), 1 revoked" in done.stdout, done.stdout
    assert not (home / "service" / "apikeys.sqlite").exists()
