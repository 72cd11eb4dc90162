"""`elicence verify` on an EL2: payload, which names no chain or registry: it is read with
the trusted registry and its chain's id, so a forgery anchored on a stranger's registry
is not anchored at the trusted one."""

from __future__ import annotations

from pathlib import Path

from ledger.config import HomeConfig
from licence.document import loads_document
from licence.payload import encode_payload
from licence.presentation import present
from tests.cli.test_trust_anchor import Scene, run_verify, scene, trusting_home

__all__ = ["scene"]  # the fixture, shared with the trust-anchor tests


def payload_file(document: Path, folder: Path, layout: int = 2) -> Path:
    """The minimal presentation of `document` as an .el1 file (what a QR code holds)."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "licence.el1"
    shown = present(loads_document(document.read_bytes()), [])
    path.write_text(encode_payload(shown, layout=layout) + "\n", encoding="ascii")
    assert path.read_text().startswith("EL2:" if layout == 2 else "EL1:")
    return path


def test_an_el2_payload_verifies_valid_with_the_configured_registry(scene: Scene, tmp_path):
    source = payload_file(scene.genuine, tmp_path / "in")
    result = run_verify(trusting_home(scene, tmp_path / "home"), str(source))
    assert result.returncode == 0, result.stderr
    assert "VALID" in result.stdout


def test_without_a_configured_chain_id_the_chain_s_own_is_used(scene: Scene, tmp_path):
    home = tmp_path / "home"
    HomeConfig(scene.url, None, scene.genuine_registry).save(home)
    result = run_verify(home, str(payload_file(scene.genuine, tmp_path / "in")))
    assert result.returncode == 0, result.stderr


def test_a_forgery_s_el2_payload_is_not_anchored_at_the_trusted_registry(scene: Scene, tmp_path):
    # The EL2: payload cannot name the stranger's registry: read with the trusted one, its
    # root is simply not anchored there.
    source = payload_file(scene.forged, tmp_path / "in")
    result = run_verify(trusting_home(scene, tmp_path / "home"), str(source))
    assert result.returncode == 1, result.stderr
    assert "NOT_ANCHORED" in result.stdout


def test_an_el1_payload_printed_before_el2_still_verifies(scene: Scene, tmp_path):
    source = payload_file(scene.genuine, tmp_path / "in", layout=1)
    result = run_verify(trusting_home(scene, tmp_path / "home"), str(source))
    assert result.returncode == 0, result.stderr


def test_without_a_trusted_registry_an_el2_payload_is_refused_saying_how(scene: Scene, tmp_path):
    source = payload_file(scene.genuine, tmp_path / "in")
    result = run_verify(tmp_path / "empty-home", str(source), "--chain", scene.url)
    assert result.returncode == 2, result.stdout
    assert "no trusted registry" in " ".join(result.stderr.split())
