"""The home's configuration: flags over ELICENCE_ variables over config.json over defaults."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ledger.config import ConfigError, HomeConfig, NodeSettings

SAVED = HomeConfig("http://127.0.0.1:9001", 31337, "0x" + "1" * 40)


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in ("ELICENCE_CHAIN", "ELICENCE_CHAIN_ID", "ELICENCE_REGISTRY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("ELICENCE_NODE_DEV", raising=False)
    monkeypatch.delenv("ELICENCE_NODE_DEPLOYERS", raising=False)
    SAVED.save(tmp_path)
    return tmp_path


def test_flags_beat_the_environment_which_beats_config_json(home, monkeypatch):
    monkeypatch.setenv("ELICENCE_REGISTRY", "0x" + "2" * 40)
    assert HomeConfig.read(home).registry == "0x" + "2" * 40
    assert HomeConfig.read(home, registry="0x" + "3" * 40).registry == "0x" + "3" * 40


def test_the_saved_chain_id_is_dropped_when_another_chain_is_chosen(home, monkeypatch):
    assert HomeConfig.read(home).chain_id == 31337
    assert HomeConfig.read(home, "http://127.0.0.1:9002").chain_id is None
    monkeypatch.setenv("ELICENCE_CHAIN", "http://127.0.0.1:9002")
    assert HomeConfig.read(home).chain_id is None
    monkeypatch.setenv("ELICENCE_CHAIN_ID", "0x7a6a")
    assert HomeConfig.read(home).chain_id == 31338


def test_a_chain_id_that_is_not_a_number_is_named_in_the_error(home, monkeypatch):
    monkeypatch.setenv("ELICENCE_CHAIN_ID", "mainnet")
    with pytest.raises(ConfigError, match="ELICENCE_CHAIN_ID='mainnet' is not a chain id"):
        HomeConfig.read(home)


def test_saving_keeps_the_node_settings_and_the_camel_case_format(home):
    path = home / "config.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), "node": {"dev": True}}))
    HomeConfig("http://127.0.0.1:9003", 5, None).save(home)
    assert json.loads(path.read_text()) == {
        "chainUrl": "http://127.0.0.1:9003",
        "chainId": 5,
        "registry": None,
        "node": {"dev": True},
    }
    assert path.stat().st_mode & 0o777 == 0o600


def test_node_deployers_add_up_and_dev_follows_flag_then_environment_then_file(home, monkeypatch):
    path = home / "config.json"
    saved = {"dev": True, "deployers": ["0x" + "a" * 40], "callGas": 7}
    path.write_text(json.dumps({**json.loads(path.read_text()), "node": saved}))
    monkeypatch.setenv("ELICENCE_NODE_DEPLOYERS", "0x" + "B" * 40)
    settings = NodeSettings.load(home, deployers=("0x" + "c" * 40,))
    assert settings.deployers == {"0x" + c * 40 for c in "abc"}
    assert settings.dev and settings.call_gas == 7
    monkeypatch.setenv("ELICENCE_NODE_DEV", "0")
    assert not NodeSettings.load(home).dev
    assert NodeSettings.load(home, dev=True).dev


def test_a_bad_node_setting_is_a_config_error(home, monkeypatch):
    monkeypatch.setenv("ELICENCE_NODE_DEPLOYERS", "nobody")
    with pytest.raises(ConfigError, match="'nobody' is not an address"):
        NodeSettings.load(home)
    (home / "config.json").write_text('{"node": 3}')
    monkeypatch.delenv("ELICENCE_NODE_DEPLOYERS")
    with pytest.raises(ConfigError, match='"node" must be an object'):
        NodeSettings.load(home)
