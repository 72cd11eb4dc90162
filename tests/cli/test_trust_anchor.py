"""`elicence verify` trusts the registry and chain of its configuration, never the document's.

The attack (issue 15.3): on an open chain a stranger deploys a registry of its own,
registers an agency under a real agency's name and code, and anchors a forged licence
there. The forgery is internally perfect; only the registry it names gives it away.
"""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from ledger.chain import connect
from ledger.config import HomeConfig
from ledger.registry import Registry
from licence.catalogue import catalogue
from tests.conftest import (
    AGENCY_CODE,
    AGENCY_NAME,
    ANVIL_FAUCET_KEY,
    ELICENCE,
    key_for,
    publish_types,
)
from tests.samples import business_licence
from verifier.chain_source import RegistrySource
from verifier.checks import verify
from verifier.demo import issue_demo
from verifier.verdict import CheckName, Status


@dataclass(frozen=True)
class Scene:
    """A genuine registry with a genuine licence, and a stranger's registry with a forgery."""

    url: str
    chain_id: int
    genuine_registry: str
    stranger_registry: str
    genuine: Path
    forged: Path


@pytest.fixture(scope="module")
def scene(anvil_url: str, tmp_path_factory: pytest.TempPathFactory) -> Scene:
    chain = connect(anvil_url, faucet_key=ANVIL_FAUCET_KEY)
    governor, agency, stranger = (key_for(f"trust-{who}") for who in ("gov", "agency", "thief"))
    for account in (governor, agency, stranger):
        chain.fund(account.address, 10**20)
    business = catalogue().get("business-licence")
    genuine = Registry.deploy(chain, governor)
    publish_types(genuine, governor, [1])
    genuine.register_agency(governor, AGENCY_CODE, AGENCY_NAME, agency.address, [1])
    issued = issue_demo(
        genuine, agency, business, [business_licence(1)], tmp_path_factory.mktemp("genuine")
    )
    # The stranger is its own governor: same agency name and code, its own key.
    fake = Registry.deploy(chain, stranger)
    publish_types(fake, stranger, [1])
    fake.register_agency(stranger, AGENCY_CODE, AGENCY_NAME, stranger.address, [1])
    forged = issue_demo(
        fake,
        stranger,
        business,
        [business_licence(2, holderName="冒名顶替科技有限公司")],
        tmp_path_factory.mktemp("forged"),
    )
    return Scene(
        anvil_url,
        chain.chain_id,
        genuine.address,
        fake.address,
        issued.paths[0],
        forged.paths[0],
    )


def run_verify(home: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """`elicence verify ARGS` with HOME as the home, as a user runs it."""
    full_env = {**os.environ, "ELICENCE_HOME": str(home), "COLUMNS": "200", "NO_COLOR": "1"}
    for name in ("ELICENCE_CHAIN", "ELICENCE_REGISTRY", "ELICENCE_CHAIN_ID"):
        full_env.pop(name, None)
    return subprocess.run(
        [str(ELICENCE), "verify", *args],
        capture_output=True,
        text=True,
        env={**full_env, **env},
        check=False,
    )


def trusting_home(scene: Scene, folder: Path) -> Path:
    """A home whose configuration trusts the genuine registry."""
    HomeConfig(scene.url, scene.chain_id, scene.genuine_registry).save(folder)
    return folder


def test_forgery_on_a_stranger_s_registry_is_refused_naming_both_registries(scene, tmp_path):
    result = run_verify(trusting_home(scene, tmp_path / "home"), str(scene.forged))
    assert result.returncode == 2, result.stdout
    assert "VALID" not in result.stdout
    assert (
        f"this licence names registry {scene.stranger_registry} on chain {scene.chain_id}, "
        f"but the trusted registry is {scene.genuine_registry} on chain {scene.chain_id}"
    ) in " ".join(result.stderr.split())


def test_forgery_is_refused_even_as_json(scene, tmp_path):
    result = run_verify(trusting_home(scene, tmp_path / "home"), str(scene.forged), "--json")
    assert result.returncode == 2
    assert result.stdout.strip() == ""  # no verdict at all, let alone a VALID one


def test_without_a_trust_anchor_verify_refuses_and_says_how_to_configure_one(scene, tmp_path):
    result = run_verify(tmp_path / "empty-home", str(scene.forged), "--chain", scene.url)
    assert result.returncode == 2, result.stdout
    assert "VALID" not in result.stdout
    message = " ".join(result.stderr.split())
    assert "no trusted registry" in message
    for way in ("--registry", "ELICENCE_REGISTRY", "config.json"):
        assert way in message


def test_genuine_licence_is_valid_against_the_configured_registry(scene, tmp_path):
    result = run_verify(trusting_home(scene, tmp_path / "home"), str(scene.genuine))
    assert result.returncode == 0, result.stderr
    assert "VALID" in result.stdout


def test_registry_and_chain_id_from_the_environment_are_the_trust_anchor(scene, tmp_path):
    env = {
        "ELICENCE_CHAIN": scene.url,
        "ELICENCE_REGISTRY": scene.genuine_registry,
        "ELICENCE_CHAIN_ID": str(scene.chain_id),
    }
    home = tmp_path / "empty-home"
    assert run_verify(home, str(scene.genuine), **env).returncode == 0
    forged = run_verify(home, str(scene.forged), **env)
    assert forged.returncode == 2 and scene.genuine_registry in forged.stderr


def test_the_registry_option_overrides_the_home_s_registry(scene, tmp_path):
    # Trusting the stranger's registry is a choice the user makes, never the document.
    home = trusting_home(scene, tmp_path / "home")
    chosen = ("--registry", scene.stranger_registry)
    assert run_verify(home, str(scene.forged), *chosen).returncode == 0
    assert run_verify(home, str(scene.genuine), *chosen).returncode == 2


def test_a_configured_chain_id_the_node_does_not_serve_is_refused(scene, tmp_path):
    raw = json.loads(scene.genuine.read_text(encoding="utf-8"))
    raw["anchor"]["chainId"] = 7  # agrees with the configuration, not with the node
    claimed = tmp_path / "claimed.json"
    claimed.write_text(json.dumps(raw, ensure_ascii=False), encoding="utf-8")
    result = run_verify(trusting_home(scene, tmp_path / "home"), str(claimed), "--chain-id", "7")
    assert result.returncode == 2
    message = " ".join(result.stderr.split())
    assert f"serves chain {scene.chain_id}" in message and "chain 7" in message


def test_document_naming_another_chain_is_refused_naming_both_chains(scene, tmp_path):
    raw = json.loads(scene.genuine.read_text(encoding="utf-8"))
    raw["anchor"]["chainId"] = 1
    moved = tmp_path / "moved.json"
    moved.write_text(json.dumps(raw, ensure_ascii=False), encoding="utf-8")
    result = run_verify(trusting_home(scene, tmp_path / "home"), str(moved))
    assert result.returncode == 2
    assert (
        f"on chain 1, but the trusted registry is {scene.genuine_registry} "
        f"on chain {scene.chain_id}"
    ) in " ".join(result.stderr.split())


def test_library_verdict_on_a_foreign_registry_s_licence_is_not_anchored_naming_both(
    chain, registry, outsider, tmp_path
):
    # verify() and the API give a verdict rather than refusing: NOT_ANCHORED, with both
    # registries in the anchor check's reason.
    fake = Registry.deploy(chain, outsider)
    publish_types(fake, outsider, [1])
    fake.register_agency(outsider, AGENCY_CODE, AGENCY_NAME, outsider.address, [1])
    business = catalogue().get("business-licence")
    forged = issue_demo(fake, outsider, business, [business_licence(3)], tmp_path)
    verdict = verify(forged.documents[0], RegistrySource(registry))
    assert verdict.status is Status.NOT_ANCHORED
    anchor = next(c for c in verdict.checks if c.name is CheckName.ANCHOR)
    assert f"names registry {fake.address}" in anchor.reason
    assert f"trusts registry {registry.address}" in anchor.reason
