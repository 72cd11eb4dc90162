"""`registry deploy` keeps a home's registry unless told to replace it, and a home's
config.json names the chain id of its chain. Real processes on a real node."""

from __future__ import annotations

import json
import os
import subprocess

import pytest

from ledger.chain import connect
from ledger.config import HomeConfig
from tests.conftest import AGENCY_CODE, AGENCY_NAME, ELICENCE, free_port

pytestmark = pytest.mark.slow  # real processes, scrypt keystores

SECRET = "correct horse battery staple"


def run(home, *args):
    env = {
        **os.environ,
        "ELICENCE_HOME": str(home),
        "ELICENCE_PASSPHRASE": SECRET,
        "COLUMNS": "200",
        "NO_COLOR": "1",
    }
    return subprocess.run(
        [str(ELICENCE), *args], capture_output=True, text=True, env=env, check=False
    )


def saved(home):
    return json.loads((home / "config.json").read_text(encoding="utf-8"))


def test_deploying_again_is_refused_naming_the_registry_and_changes_nothing(node_process, tmp_path):
    home = tmp_path / "governor"
    first = run(home, "registry", "deploy", "--chain", node_process.url)
    assert first.returncode == 0, first.stderr
    before = saved(home)

    again = run(home, "registry", "deploy", "--chain", node_process.url)
    assert again.returncode == 2
    assert len(again.stderr.strip().splitlines()) == 1
    assert before["registry"] in again.stderr and "--replace" in again.stderr
    assert saved(home) == before


def test_replace_deploys_a_new_registry_and_makes_it_the_homes(node_process, tmp_path):
    home = tmp_path / "governor"
    assert run(home, "registry", "deploy", "--chain", node_process.url).returncode == 0
    old = saved(home)["registry"]
    replaced = run(home, "registry", "deploy", "--chain", node_process.url, "--replace")
    assert replaced.returncode == 0, replaced.stderr
    new = saved(home)["registry"]
    assert new != old and new in replaced.stdout
    chain = connect(node_process.url)
    assert chain.w3.eth.get_code(old) and chain.w3.eth.get_code(new)  # the old one stays


def test_deploy_saves_the_chain_id(node_process, tmp_path):
    home = tmp_path / "governor"
    assert run(home, "registry", "deploy", "--chain", node_process.url).returncode == 0
    assert saved(home)["chainId"] == connect(node_process.url).chain_id


def test_a_new_agency_saves_the_chain_id_of_the_chain_it_names(node_process, tmp_path):
    governor, agency = tmp_path / "governor", tmp_path / "agency"
    assert run(governor, "registry", "deploy", "--chain", node_process.url).returncode == 0
    registry = saved(governor)["registry"]
    made = run(
        agency, "agency", "new", "--name", AGENCY_NAME, "--code", AGENCY_CODE,
        "--chain", node_process.url, "--registry", registry,
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    assert saved(agency) == {
        "chainUrl": node_process.url,
        "chainId": connect(node_process.url).chain_id,
        "registry": registry,
    }


def test_a_chain_id_unknown_when_saved_is_saved_by_the_first_command_that_reaches_the_chain(
    node_process, tmp_path
):
    governor, agency = tmp_path / "governor", tmp_path / "agency"
    assert run(governor, "registry", "deploy", "--chain", node_process.url).returncode == 0
    registry = saved(governor)["registry"]
    # A key made while the chain was out of reach, then a config naming the chain.
    offline = run(
        agency, "agency", "new", "--name", AGENCY_NAME, "--code", AGENCY_CODE,
        "--chain", f"http://127.0.0.1:{free_port()}", "--registry", registry,
    )  # fmt: skip
    assert offline.returncode == 0, offline.stderr
    assert saved(agency)["chainId"] is None
    HomeConfig.model_construct(chain_url=node_process.url, registry=registry).save(agency)

    # Any command that opens the registry; this one then finds no such licence.
    result = run(agency, "revoke", "110108000000000001", "--reason", "FRAUD")
    assert result.returncode == 2 and "no licence" in result.stderr
    assert saved(agency)["chainId"] == connect(node_process.url).chain_id
