"""The governor's withdrawal commands as run for real: `elicence registry revoke-batch` and
`elicence agency compromised` (issue 15.4)."""

from __future__ import annotations

import pytest

from licence.statuses import LeafStatus

pytestmark = pytest.mark.slow

ROOT = bytes(range(16))
OTHER_ROOT = bytes(range(1, 17))


def test_governor_revokes_a_batch_and_reports_a_key_compromised(node_agency):
    registry, governor_home = node_agency.registry, str(node_agency.governor_home)
    registry.anchor(node_agency.key, ROOT, 1, 3)
    revoked = node_agency.run(
        "registry",
        "revoke-batch",
        "0x" + ROOT.hex(),
        "--reason",
        "ISSUED_IN_ERROR",
        ELICENCE_HOME=governor_home,
    )
    assert revoked.returncode == 0, revoked.stderr
    assert "batch 0x" + ROOT.hex() in revoked.stdout
    state = registry.status_of(ROOT, bytes(16))
    assert (state.status, state.reason, state.batch_revoked) == (LeafStatus.REVOKED, 7, True)

    sent = registry.anchor(node_agency.key, OTHER_ROOT, 1, 3)
    reported = node_agency.run(
        "agency",
        "compromised",
        "--id",
        "1",
        "--from-block",
        str(sent.block_number),
        ELICENCE_HOME=governor_home,
    )
    assert reported.returncode == 0, reported.stderr
    assert f"from block {sent.block_number}" in reported.stdout
    assert registry.anchor_compromised_from(OTHER_ROOT) == sent.block_number
    # A second report may only move the block earlier: said in words, not as an error name.
    again = node_agency.run(
        "agency",
        "compromised",
        "--id",
        "1",
        "--from-block",
        str(sent.block_number),
        ELICENCE_HOME=governor_home,
    )
    assert again.returncode != 0
    assert "already reported compromised" in again.stderr
    assert "LicenceRegistry" not in again.stderr
    # The agency's own key may do neither.
    refused = node_agency.run("registry", "revoke-batch", "0x" + ROOT.hex(), "--reason", "1")
    assert refused.returncode != 0
    assert "Traceback" not in refused.stderr


def test_revoke_batch_refuses_a_root_that_is_not_16_bytes(node_agency):
    result = node_agency.run(
        "registry",
        "revoke-batch",
        "0x1234",
        "--reason",
        "1",
        ELICENCE_HOME=str(node_agency.governor_home),
    )
    assert result.returncode == 2
    assert "16-byte" in result.stderr
