"""The shipped artifact matches what the pinned compiler makes of the current sources."""

from __future__ import annotations

import shutil

import pytest

from contracts import load_artifact
from contracts.build import NODE_MODULES, collect_sources, compile_registry

STALE = "artifact is stale: run scripts/compile_contracts"

pytestmark = pytest.mark.solc


@pytest.fixture(scope="module")
def fresh() -> dict:
    if not (NODE_MODULES / ".bin" / "solcjs").exists() and shutil.which("solc") is None:
        pytest.skip("no compiler: node_modules/.bin/solcjs missing (npm ci) and no native solc")
    return compile_registry()


def test_source_hashes_match_the_artifact(fresh: dict) -> None:
    shipped = load_artifact().source_hashes
    assert shipped == {u: s["sha256"] for u, s in fresh["sources"].items()}, STALE


def test_abi_matches_the_artifact(fresh: dict) -> None:
    assert list(load_artifact().abi) == fresh["abi"], STALE


def test_bytecode_matches_the_artifact(fresh: dict) -> None:
    artifact = load_artifact()
    assert artifact.bytecode == fresh["bytecode"], STALE
    assert artifact.deployed_bytecode == fresh["deployedBytecode"], STALE


def test_artifact_records_its_compiler_and_settings() -> None:
    artifact = load_artifact()
    assert artifact.compiler_version.startswith("0.8.28+")
    assert artifact.settings["optimizer"] == {"enabled": True, "runs": 200}
    assert artifact.settings["evmVersion"] == "cancun"
    assert set(artifact.source_hashes) == set(collect_sources())
