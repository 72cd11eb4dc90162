"""The Python LeafStatus is the registry contract's enum: same members, same order."""

from __future__ import annotations

import re
from pathlib import Path

from licence.statuses import FINAL, LeafStatus

INTERFACE = Path(__file__).parents[2] / "contracts" / "ILicenceRegistry.sol"


def solidity_enum(source: str, name: str) -> list[str]:
    found = re.search(rf"\benum\s+{name}\s*\{{([^}}]*)\}}", source)
    assert found, f"no enum {name} in the interface"
    body = re.sub(r"//[^\n]*|/\*.*?\*/", "", found.group(1), flags=re.S)
    return [member.strip() for member in body.split(",") if member.strip()]


def test_python_statuses_are_the_contracts_members_in_its_order():
    members = solidity_enum(INTERFACE.read_text(encoding="utf-8"), "LeafStatus")
    # Solidity numbers an enum's members from 0 in the order they are written.
    assert [(m.upper(), i) for i, m in enumerate(members)] == [
        (s.name, s.value) for s in LeafStatus
    ]


def test_revoked_superseded_and_cancelled_are_final():
    assert {LeafStatus.REVOKED, LeafStatus.SUPERSEDED, LeafStatus.CANCELLED} == FINAL
