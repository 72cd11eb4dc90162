"""Where elicence keeps its state, and which chain and registry it talks to.

Everything lives in one home folder (`--home`, or ELICENCE_HOME, or ~/.elicence):

    config.json      chain URL, chain id and registry address (written by
                     `elicence registry deploy`, read by every later command);
                     its "node" member holds the embedded node's settings (NodeSettings),
                     its "issuing" member an agency's hash suite per licence type
                     (issuer.agency.issuing_suite)
    chain/           the embedded node's chain (elicence ledger serve), and the page
                     it publishes its head in for the verifier (ledger.head_page)
    keys/            encrypted keystores (agency and governor keys), mode 0600
    records.sqlite   the agency's records of what it issued
    index.sqlite     the verifier's index of registry events
    service/         the verifier service's API keys and audit log (its "database"
                     member in config.json moves them to PostgreSQL)

The chain URL, registry address and chain id can be overridden per command (`--chain`,
`--registry`, `--chain-id`) or by environment (ELICENCE_CHAIN, ELICENCE_REGISTRY,
ELICENCE_CHAIN_ID). The registry and chain id are the verifier's trust anchor: they come
from here, never from a document.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic.alias_generators import to_camel
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    InitSettingsSource,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from ledger.errors import LedgerError
from ledger.private import PRIVATE_FILE, private_folder

DEFAULT_CHAIN_URL = "http://127.0.0.1:8545"  # `elicence ledger serve`'s default
CONFIG_FILE = "config.json"
NODE_FOLDER = "chain"  # the embedded node's chain, under the home
# The chain URL's variable is ELICENCE_CHAIN (not ELICENCE_CHAIN_URL): pydantic-settings
# keys the field by this name in every source.
_CHAIN = "elicence_chain"


class ConfigError(LedgerError, ValueError):
    """The home folder's configuration is missing something a command needs, or is corrupt."""


def default_home() -> Path:
    """ELICENCE_HOME, or ~/.elicence."""
    return Path(os.environ.get("ELICENCE_HOME") or Path.home() / ".elicence")


class _ConfigFile(BaseModel):
    """HOME/config.json as written: camelCase, the node's settings under "node"."""

    model_config = ConfigDict(alias_generator=to_camel, validate_by_name=True, extra="ignore")

    chain_url: str = DEFAULT_CHAIN_URL
    chain_id: int | None = None
    registry: str | None = None
    node: Any = None

    @classmethod
    def read(cls, home: Path) -> _ConfigFile:
        """The file of `home`, or an empty one when there is none yet.

        Raises:
            ConfigError: the file is not JSON, or not an elicence configuration.
        """
        path = home / CONFIG_FILE
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return cls()
        try:
            return cls.model_validate_json(text)
        except ValidationError as exc:
            raise ConfigError(
                f"{path} is not a valid elicence configuration: {_problems(exc)}"
            ) from None


def _problems(exc: ValidationError, names: dict[str, str] | None = None) -> str:
    """A ValidationError in one line: each field (by the name a user sets) and what is wrong."""
    parts = []
    for error in exc.errors(include_url=False):
        where = ".".join(str(part) for part in error["loc"])
        where = (names or {}).get(where, where)
        reason = error.get("ctx", {}).get("error") if error["type"] == "value_error" else None
        parts.append(f"{where}: {reason or error['msg']}" if where else str(reason or error["msg"]))
    return "; ".join(parts)


class _SavedLayer(PydanticBaseSettingsSource):
    """The lowest layer of a HomeConfig: the saved configuration it resolves
    (`HomeConfig.read` passes the home's config.json, `resolve` its own values).

    The saved chain id describes the saved chain URL: it is left out when a higher layer
    chooses another URL, and then learned from that node.
    """

    def __init__(
        self, settings_cls: type[BaseSettings], *higher: PydanticBaseSettingsSource
    ) -> None:
        super().__init__(settings_cls)
        self.init = next(s for s in higher if isinstance(s, InitSettingsSource))
        self.higher = higher

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False  # __call__ gives the whole layer

    def __call__(self) -> dict[str, Any]:
        saved = self.init.init_kwargs.get("_saved")
        if not isinstance(saved, HomeConfig):
            return {}
        layer: dict[str, Any] = {_CHAIN: saved.chain_url, "registry": saved.registry}
        layers = (source() for source in self.higher)
        chosen = next((layer[_CHAIN] for layer in layers if layer.get(_CHAIN)), saved.chain_url)
        if chosen == saved.chain_url:
            layer["chain_id"] = saved.chain_id
        return {key: value for key, value in layer.items() if value is not None}


class HomeConfig(BaseSettings):
    """The chain and registry a home talks to: the trust anchor of its verifier.

    Read (`HomeConfig.read`) from, highest first: the values given (command-line flags),
    the environment (ELICENCE_CHAIN, ELICENCE_CHAIN_ID, ELICENCE_REGISTRY), the home's
    config.json, the defaults. Built directly, `HomeConfig(url, chain_id, registry)`
    fills what is not given from the environment and the defaults.
    """

    model_config = SettingsConfigDict(
        env_prefix="ELICENCE_",
        env_ignore_empty=True,
        extra="ignore",
        frozen=True,
        validate_by_name=True,
    )

    chain_url: str = Field(default=DEFAULT_CHAIN_URL, validation_alias=_CHAIN)
    chain_id: int | None = None
    registry: str | None = None

    def __init__(
        self,
        chain_url: str | None = None,
        chain_id: int | None = None,
        registry: str | None = None,
        *,
        _saved: HomeConfig | None = None,
    ) -> None:
        # An empty --chain or --registry is no choice (as an empty variable is none).
        given: dict[str, Any] = {
            name: value
            for name, value in (("chain_url", chain_url), ("registry", registry))
            if value
        }
        if chain_id is not None:
            given["chain_id"] = chain_id
        try:
            super().__init__(**given, _saved=_saved)
        except ValidationError as exc:
            # The chain id's message names its variable already.
            raise ConfigError(_problems(exc, {_CHAIN: "ELICENCE_CHAIN", "chain_id": ""})) from None

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (
            init_settings,
            env_settings,
            _SavedLayer(settings_cls, init_settings, env_settings),
        )

    @field_validator("chain_id", mode="before")
    @classmethod
    def _chain_id(cls, raw: object) -> object:
        if not isinstance(raw, str):
            return raw
        try:
            return int(raw, 0)  # ELICENCE_CHAIN_ID=0x7a69 as well as 31337
        except ValueError:
            raise ValueError(f"ELICENCE_CHAIN_ID={raw!r} is not a chain id (a number)") from None

    @classmethod
    def read(
        cls,
        home: Path,
        chain: str | None = None,
        registry: str | None = None,
        *,
        chain_id: int | None = None,
    ) -> HomeConfig:
        """The configuration of `home` with the flags given and the environment applied.

        Raises:
            ConfigError: config.json or a variable is not valid.
        """
        return cls.load(home).resolve(chain, registry, chain_id=chain_id)

    @classmethod
    def load(cls, home: Path) -> HomeConfig:
        """The saved configuration alone (no environment), or the defaults when there is
        none yet."""
        if home.is_dir():
            private_folder(home)  # a home an older version (or the user) left open
        saved = _ConfigFile.read(home)
        return cls.model_construct(
            chain_url=saved.chain_url, chain_id=saved.chain_id, registry=saved.registry
        )

    def resolve(
        self, chain: str | None = None, registry: str | None = None, *, chain_id: int | None = None
    ) -> HomeConfig:
        """This configuration under the flags given and the environment (see _SavedLayer
        for the chain id)."""
        return HomeConfig(chain, chain_id, registry, _saved=self)

    def save(self, home: Path) -> None:
        """Write the configuration atomically, keeping the node's settings."""
        private_folder(home)
        raw: dict[str, Any] = {
            "chainUrl": self.chain_url,
            "chainId": self.chain_id,
            "registry": self.registry,
        }
        node = _saved_node_section(home / CONFIG_FILE)
        if node is not None:  # the node's settings are the operator's: keep them
            raw["node"] = node
        # As is the verifier service's shared-state database (verifier.service.settings).
        database = _saved_node_section(home / CONFIG_FILE, "database")
        if database is not None:
            raw["database"] = database
        # And the agency's issuing defaults (issuer.agency.issuing_suite).
        issuing = _saved_node_section(home / CONFIG_FILE, "issuing")
        if issuing is not None:
            raw["issuing"] = issuing
        # And the cipher of new keystores (issuer.keystore.default_cipher).
        keys = _saved_node_section(home / CONFIG_FILE, "keys")
        if keys is not None:
            raw["keys"] = keys
        # And the governor's SM2 key a verifier pins (verifier.trust_snapshot).
        seal_key = _saved_node_section(home / CONFIG_FILE, "governorSealKey")
        if seal_key is not None:
            raw["governorSealKey"] = seal_key
        temp = home / f".{CONFIG_FILE}.tmp"
        temp.write_text(json.dumps(raw, indent=2) + "\n", encoding="utf-8")
        temp.chmod(PRIVATE_FILE)
        os.replace(temp, home / CONFIG_FILE)

    def require_registry(self) -> str:
        """The registry address; ConfigError saying how to get one when there is none."""
        if not self.registry:
            raise ConfigError(
                "no registry configured: run `elicence registry deploy`, or pass --registry "
                "(or set ELICENCE_REGISTRY)"
            )
        return self.registry


# The embedded node's limits; see NodeSettings and docs/deployment.md.
NODE_CALL_GAS = 5_000_000  # a sixth of the block gas limit; a registry deploy needs ~1.9M
NODE_CALL_SECONDS = 0.5
NODE_TX_GAS = 8_000_000
NODE_RATE = 300.0  # requests per second per client address
NODE_BURST = 600.0


class _NodeSection(PydanticBaseSettingsSource):
    """The "node" member of HOME/config.json (camelCase keys: "callGas", "txGas", ...)."""

    def __init__(self, settings_cls: type[BaseSettings], init: InitSettingsSource) -> None:
        super().__init__(settings_cls)
        self.init = init

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False  # __call__ gives the whole section

    def __call__(self) -> dict[str, Any]:
        home = self.init.init_kwargs.get("_home")
        if not isinstance(home, Path):
            return {}
        section = _saved_node_section(home / CONFIG_FILE)
        if section is None:
            return {}
        if not isinstance(section, dict):
            raise ConfigError(f'{home / CONFIG_FILE}: "node" must be an object')
        names = {to_camel(name): name for name in self.settings_cls.model_fields}
        return {names[key]: value for key, value in section.items() if key in names}


class _AllDeployers(PydanticBaseSettingsSource):
    """Deployers add up rather than override: those of the flags, of
    ELICENCE_NODE_DEPLOYERS (comma-separated), of config.json and the home's governor key."""

    def __init__(
        self, settings_cls: type[BaseSettings], *layers: PydanticBaseSettingsSource
    ) -> None:
        super().__init__(settings_cls)
        self.layers = layers

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False  # __call__ gives the union

    def __call__(self) -> dict[str, Any]:
        listed: list[object] = []
        for layer in self.layers:
            found = layer().get("deployers") or ()
            listed.extend(found.split(",") if isinstance(found, str) else found)
        init = self.layers[0]
        home = init.init_kwargs.get("_home") if isinstance(init, InitSettingsSource) else None
        governor = governor_of(home) if isinstance(home, Path) else None
        if governor is not None:
            listed.append(governor)
        return {"deployers": [a for a in listed if str(a).strip()]}


class NodeSettings(BaseSettings):
    """What the embedded node allows, and to whom.

    Without dev mode the node mines only transactions, funds only senders the operator
    or its registry vouches for (allowed deployers, the home's governor key, the
    registry's governors and agency signers) and lets only allowed deployers create
    contracts. Dev mode (`--dev`, ELICENCE_NODE_DEV=1 or `"node": {"dev": true}` in
    config.json) restores the conveniences: evm_mine, top-ups and deployment for anyone.
    The caps and the rate limit hold in both modes.

    Read (`NodeSettings.load`) from, highest first: flags, ELICENCE_NODE_<NAME>
    (ELICENCE_NODE_DEV, ELICENCE_NODE_RATE, ...), the "node" member of config.json
    (camelCase: "dev", "deployers", "callGas", "callSeconds", "txGas", "rate", "burst"),
    the defaults; deployers add up.
    """

    model_config = SettingsConfigDict(
        env_prefix="ELICENCE_NODE_", env_ignore_empty=True, extra="ignore", frozen=True
    )

    dev: bool = False
    deployers: Annotated[frozenset[str], NoDecode] = frozenset()
    call_gas: int = NODE_CALL_GAS
    call_seconds: float = NODE_CALL_SECONDS
    tx_gas: int = NODE_TX_GAS
    rate: float = NODE_RATE
    burst: float = NODE_BURST

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        assert isinstance(init_settings, InitSettingsSource)
        node_section = _NodeSection(settings_cls, init_settings)
        return (
            _AllDeployers(settings_cls, init_settings, env_settings, node_section),
            init_settings,
            env_settings,
            node_section,
        )

    @field_validator("deployers", mode="before")
    @classmethod
    def _addresses(cls, raw: object) -> frozenset[str]:
        listed = raw.split(",") if isinstance(raw, str) else raw
        if not isinstance(listed, Iterable):
            raise ValueError(f"{raw!r} is not a list of addresses")
        return frozenset(_address(a) for a in listed if str(a).strip())

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
        flags: dict[str, Any] = {
            "dev": dev,
            "deployers": deployers or None,
            "rate": rate,
            "burst": burst,
        }
        given: dict[str, Any] = {name: value for name, value in flags.items() if value is not None}
        try:
            return cls(**{**given, "_home": home})
        except ValidationError as exc:
            raise ConfigError(
                f'bad node setting (options, ELICENCE_NODE_*, or "node" in '
                f"{home / CONFIG_FILE}): {_problems(exc)}"
            ) from None


def _address(raw: object) -> str:
    text = str(raw).strip().lower()
    if len(text) != 42 or not text.startswith("0x") or not _is_hex(text[2:]):
        raise ValueError(f"{raw!r} is not an address (0x and 40 hex digits)")
    return text


def _is_hex(text: str) -> bool:
    try:
        int(text, 16)
    except ValueError:
        return False
    return True


def _saved_node_section(path: Path, member: str = "node") -> object:
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return raw.get(member) if isinstance(raw, dict) else None


def governor_of(home: Path) -> str | None:
    """The address of the home's governor key (HOME/keys/governor.json), if it has one:
    the node lets it deploy, even when the key was made after the node started."""
    address = _keystore_address(home / "keys" / "governor.json")
    return address.lower() if address is not None else None


def _keystore_address(path: Path) -> str | None:
    """The address a keystore file states in clear (a public fact about the key)."""
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    address = raw.get("address") if isinstance(raw, dict) else None
    return f"0x{address.removeprefix('0x')}" if isinstance(address, str) else None
