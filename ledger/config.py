"""Where elicence keeps its state, and which chain and registry it talks to.

Everything lives in one home folder (`--home`, or ELICENCE_HOME, or ~/.elicence):

    config.json      chain URL, chain id and registry address (written by
                     `elicence registry deploy`, read by every later command)
    chain/           the embedded node's chain (elicence ledger serve)
    keys/            encrypted keystores (agency and governor keys), mode 0600
    records.sqlite   the agency's records of what it issued
    index.sqlite     the verifier's index of registry events
    service/         the verifier service's API keys and audit log

The chain URL and registry address can be overridden per command (`--chain`,
`--registry`) or by environment (ELICENCE_CHAIN, ELICENCE_REGISTRY).
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

from ledger.errors import LedgerError

DEFAULT_CHAIN_URL = "http://127.0.0.1:8545"  # `elicence ledger serve`'s default
CONFIG_FILE = "config.json"


class ConfigError(LedgerError, ValueError):
    """The home folder's configuration is missing something a command needs, or is corrupt."""


def default_home() -> Path:
    """ELICENCE_HOME, or ~/.elicence."""
    return Path(os.environ.get("ELICENCE_HOME") or Path.home() / ".elicence")


@dataclass(frozen=True)
class HomeConfig:
    """What a home folder remembers about its chain and registry."""

    chain_url: str = DEFAULT_CHAIN_URL
    chain_id: int | None = None
    registry: str | None = None

    @classmethod
    def load(cls, home: Path) -> HomeConfig:
        """The saved configuration, or the defaults when there is none yet."""
        path = home / CONFIG_FILE
        if not path.exists():
            return cls()
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
            return cls(
                chain_url=str(raw.get("chainUrl", DEFAULT_CHAIN_URL)),
                chain_id=raw.get("chainId"),
                registry=raw.get("registry"),
            )
        except (ValueError, AttributeError) as exc:
            raise ConfigError(f"{path} is not a valid elicence configuration: {exc}") from exc

    def save(self, home: Path) -> None:
        """Write the configuration atomically."""
        home.mkdir(parents=True, exist_ok=True)
        data = asdict(self)
        raw = {
            "chainUrl": data["chain_url"],
            "chainId": data["chain_id"],
            "registry": data["registry"],
        }
        temp = home / f".{CONFIG_FILE}.tmp"
        temp.write_text(json.dumps(raw, indent=2) + "\n", encoding="utf-8")
        os.replace(temp, home / CONFIG_FILE)

    def resolve(self, chain: str | None = None, registry: str | None = None) -> HomeConfig:
        """This configuration with command-line or environment overrides applied."""
        return HomeConfig(
            chain_url=chain or os.environ.get("ELICENCE_CHAIN") or self.chain_url,
            chain_id=self.chain_id,
            registry=registry or os.environ.get("ELICENCE_REGISTRY") or self.registry,
        )

    def require_registry(self) -> str:
        """The registry address; ConfigError saying how to get one when there is none."""
        if not self.registry:
            raise ConfigError(
                "no registry configured: run `elicence registry deploy`, or pass --registry "
                "(or set ELICENCE_REGISTRY)"
            )
        return self.registry
