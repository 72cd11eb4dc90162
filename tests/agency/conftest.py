"""Fixtures of the agency tests: an agency home (keystore, config, records) on a registry.

`agency_home` is for in-process tests on the embedded chain of tests/conftest.py;
`node_agency` runs a real `elicence ledger serve` process and sets up a governor home
and an agency home on it, for tests that run the real `elicence` command.
"""

from __future__ import annotations

import csv
import os
import subprocess
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest
from eth_account.signers.local import LocalAccount

from issuer.agency import AgencyContext
from issuer.keystore import AGENCY_KEYSTORE, GOVERNOR_KEYSTORE, create, keystore_path
from issuer.records import Records
from ledger import Registry, connect
from ledger.config import HomeConfig
from tests.conftest import AGENCY_CODE, AGENCY_NAME, ELICENCE, NodeProcess, key_for, publish_types

PASSPHRASE = "correct horse battery staple"


@pytest.fixture
def agency(registry: Registry, agency_key: LocalAccount, tmp_path: Path) -> Iterator[AgencyContext]:
    """Agency 1 of the registry fixture at work, with fresh records."""
    with Records.of_home(tmp_path / "home") as records:
        yield AgencyContext(registry, agency_key, records)


def write_csv(path: Path, rows: Sequence[dict[str, str]], *, bom: bool = True) -> Path:
    """Rows as a CSV file with field names as headers (UTF-8 with a BOM, as Excel writes)."""
    names = list(dict.fromkeys(n for row in rows for n in row))
    with path.open("w", encoding="utf-8-sig" if bom else "utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=names)
        writer.writeheader()
        writer.writerows(rows)
    return path


@dataclass
class NodeAgency:
    """A node process, a registry on it, and an agency home whose key is authorised."""

    node: NodeProcess
    registry: Registry
    home: Path
    governor_home: Path
    key: LocalAccount

    def run(
        self, *args: str, fault: str | None = None, **env: str
    ) -> subprocess.CompletedProcess[str]:
        """Run `elicence ARGS --home <agency home>` as a real process."""
        return subprocess.run(
            [str(ELICENCE), *args],
            capture_output=True,
            text=True,
            env=self.env(fault, **env),
            check=False,
        )

    def env(self, fault: str | None = None, **extra: str) -> dict[str, str]:
        """The environment of a command run by this agency."""
        env = {
            **os.environ,
            "ELICENCE_HOME": str(self.home),
            "ELICENCE_PASSPHRASE": PASSPHRASE,
            "COLUMNS": "200",
            "NO_COLOR": "1",
            **extra,
        }
        env.pop("ELICENCE_FAULT", None)
        if fault is not None:
            env["ELICENCE_FAULT"] = fault
        return env


@pytest.fixture
def node_agency(node_process: NodeProcess, tmp_path: Path) -> NodeAgency:
    """Agency 1 (business and food licences) on a registry on a real node process."""
    chain = connect(node_process.url)  # the node tops up senders: no funding needed
    governor, agency = key_for("agency-governor"), key_for("agency-cli")
    registry = Registry.deploy(chain, governor)
    publish_types(registry, governor, [1])
    registry.register_agency(governor, AGENCY_CODE, AGENCY_NAME, agency.address, [1])
    config = HomeConfig(node_process.url, chain.chain_id, registry.address)
    homes = tmp_path / "agency-home", tmp_path / "governor-home"
    for home, key, name in (
        (homes[0], agency, AGENCY_KEYSTORE),
        (homes[1], governor, GOVERNOR_KEYSTORE),
    ):
        config.save(home)
        create(keystore_path(home, name), PASSPHRASE, key=key.key)
    return NodeAgency(node_process, registry, homes[0], homes[1], agency)
