"""Where elicence keeps its state, and which chain and registry it talks to.

Everything lives in one home folder (`--home`, or ELICENCE_HOME, or ~/.elicence):

    config.json      chain URL, chain id and registry address (written by
                     `elicence registry deploy`, read by every later command);
                     its "node" member holds the embedded node's settings (NodeSettings)
    chain/           the embedded node's chain (elicence ledger serve)
    keys/            encrypted keystores (agency and governor keys), mode 0600
    records.sqlite   the agency's records of what it issued
    index.sqlite     the verifier's index of registry events
    service/         the verifier service's API keys and audit log

The chain URL, registry address and chain id can be overridden per command (`--chain`,
`--registry`, `--chain-id`) or by environment (ELICENCE_CHAIN, ELICENCE_REGISTRY,
ELICENCE_CHAIN_ID). The registry and chain id are the verifier's trust anchor: they come
from here, never from a document.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

from ledger.errors import LedgerError
from ledger.private import PRIVATE_FILE, private_folder

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
        if home.is_dir():
            private_folder(home)  # a home an older version (or the user) left open
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
        private_folder(home)
        data = asdict(self)
        raw = {
            "chainUrl": data["chain_url"],
            "chainId": data["chain_id"],
            "registry": data["registry"],
        }
        node = _saved_node_section(home / CONFIG_FILE)
        if node is not None:  # the node's settings are the operator's: keep them
            raw["node"] = node
        temp = home / f".{CONFIG_FILE}.tmp"
        temp.write_text(json.dumps(raw, indent=2) + "\n", encoding="utf-8")
        temp.chmod(PRIVATE_FILE)
        os.replace(temp, home / CONFIG_FILE)

    def resolve(
        self, chain: str | None = None, registry: str | None = None, *, chain_id: int | None = None
    ) -> HomeConfig:
        """This configuration with command-line or environment overrides applied.

        The saved chain id describes the saved chain URL: it is dropped when another URL
        is chosen (unless a chain id is given too), and then learned from that node.
        """
        url = chain or os.environ.get("ELICENCE_CHAIN") or self.chain_url
        if chain_id is None:
            chain_id = _chain_id_from_environment()
        if chain_id is None and url == self.chain_url:
            chain_id = self.chain_id
        return HomeConfig(
            chain_url=url,
            chain_id=chain_id,
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


def _chain_id_from_environment() -> int | None:
    raw = os.environ.get("ELICENCE_CHAIN_ID")
    if not raw:
        return None
    try:
        return int(raw, 0)
    except ValueError:
        raise ConfigError(f"ELICENCE_CHAIN_ID={raw!r} is not a chain id (a number)") from None


# The embedded node's limits; see NodeSettings and docs/deployment.md.
NODE_CALL_GAS = 5_000_000  # a sixth of the block gas limit; a registry deploy needs ~1.9M
NODE_CALL_SECONDS = 0.5
NODE_TX_GAS = 8_000_000
NODE_RATE = 300.0  # requests per second per client address
NODE_BURST = 600.0
_TRUE = frozenset({"1", "true", "yes", "on"})


@dataclass(frozen=True)
class NodeSettings:
    """What the embedded node allows, and to whom.

    Without dev mode the node mines only transactions, funds only senders the operator
    or its registry vouches for (allowed deployers, the home's governor key, the
    registry's governors and agency signers) and lets only allowed deployers create
    contracts. Dev mode (`--dev`, ELICENCE_NODE_DEV=1 or `"node": {"dev": true}` in
    config.json) restores the conveniences: evm_mine, top-ups and deployment for anyone.
    The caps and the rate limit hold in both modes.
    """

    dev: bool = False
    deployers: frozenset[str] = frozenset()
    call_gas: int = NODE_CALL_GAS
    call_seconds: float = NODE_CALL_SECONDS
    tx_gas: int = NODE_TX_GAS
    rate: float = NODE_RATE
    burst: float = NODE_BURST

    @classmethod
    def load(
        cls,
        home: Path,
        *,
        dev: bool | None = None,
        deployers: tuple[str, ...] = (),
        rate: float | None = None,
        burst: float | None = None,
    ) -> NodeSettings:
        """The settings of the node of `home`: flags, then environment, then config.json.

        Raises:
            ConfigError: a setting is not of the right kind.
        """
        saved = _saved_node_section(home / CONFIG_FILE) or {}
        if not isinstance(saved, dict):
            raise ConfigError(f'{home / CONFIG_FILE}: "node" must be an object')
        environment_dev = os.environ.get("ELICENCE_NODE_DEV")
        if dev is None and environment_dev:
            dev = environment_dev.strip().lower() in _TRUE
        listed = [
            *deployers,
            *(a for a in os.environ.get("ELICENCE_NODE_DEPLOYERS", "").split(",") if a.strip()),
            *saved.get("deployers", []),
        ]
        governor = _keystore_address(home / "keys" / "governor.json")
        if governor is not None:
            listed.append(governor)
        allowed = frozenset(_address(a) for a in listed)
        try:
            return cls(
                dev=bool(saved.get("dev", False)) if dev is None else dev,
                deployers=allowed,
                call_gas=int(saved.get("callGas", NODE_CALL_GAS)),
                call_seconds=float(saved.get("callSeconds", NODE_CALL_SECONDS)),
                tx_gas=int(saved.get("txGas", NODE_TX_GAS)),
                rate=float(saved.get("rate", NODE_RATE) if rate is None else rate),
                burst=float(saved.get("burst", NODE_BURST) if burst is None else burst),
            )
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"bad node setting in {home / CONFIG_FILE}: {exc}") from exc


def _address(raw: object) -> str:
    text = str(raw).strip().lower()
    if len(text) != 42 or not text.startswith("0x") or not _is_hex(text[2:]):
        raise ConfigError(f"{raw!r} is not an address (0x and 40 hex digits)")
    return text


def _is_hex(text: str) -> bool:
    try:
        int(text, 16)
    except ValueError:
        return False
    return True


def _saved_node_section(path: Path) -> object:
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return raw.get("node") if isinstance(raw, dict) else None


def _keystore_address(path: Path) -> str | None:
    """The address a keystore file states in clear (a public fact about the key)."""
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    address = raw.get("address") if isinstance(raw, dict) else None
    return f"0x{address.removeprefix('0x')}" if isinstance(address, str) else None
