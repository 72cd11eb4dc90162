"""The service's settings: environment variables prefixed ELICENCE_, or arguments.

Built by `get_settings()` at start-up (cached), never at import, so tests and the
`elicence serve` command pass their own.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from ledger.config import CONFIG_FILE, ConfigError, HomeConfig, default_home

# Request body limits (documented in docs/api.md and in the OpenAPI text).
MAX_JSON_BYTES = 128 * 1024  # a 64 KiB document plus its envelope
MAX_BATCH_BYTES = 8 * 1024 * 1024  # 100 items of up to 64 KiB and their envelopes
MAX_IMAGE_BYTES = 10 * 1000 * 1000 + 64 * 1024  # verifier.images' cap plus the form's parts
MAX_BATCH_ITEMS = 100


class Settings(BaseSettings):
    """What the operator sets (ELICENCE_<NAME> in the environment)."""

    model_config = SettingsConfigDict(env_prefix="ELICENCE_", extra="ignore")

    home: Path = Field(default_factory=default_home, description="Home folder.")
    chain: str | None = Field(default=None, description="Chain URL (default: the home's config).")
    registry: str | None = Field(
        default=None, description="Trusted registry (default: the home's)."
    )
    confirmations: int = Field(default=0, ge=0, description="Blocks to wait before indexing.")
    anonymous_rate: float = Field(
        default=2.0,
        ge=0,
        description="Anonymous requests per second per address (0: none allowed).",
    )
    anonymous_burst: int = Field(
        default=20, ge=1, description="Anonymous requests allowed at once."
    )
    key_rate: float = Field(
        default=2000.0, gt=0, description="Requests per second per API key unless the key says."
    )
    key_burst: int = Field(default=4000, ge=1, description="Requests allowed at once per API key.")
    anonymous_sees_personal: bool = Field(
        default=False,
        description="Whether anonymous callers see disclosed personal fields (the holder "
        "chose to disclose them); by default they are withheld, like from a key without "
        "those fields (least privilege: anyone can call anonymously).",
    )
    database: str | None = Field(
        default=None,
        description="PostgreSQL URL (postgresql://...) of the state every replica shares: "
        'API keys, rate limits, the audit log (default: the home\'s config.json "database", '
        "else SQLite files in HOME/service).",
    )
    web_root: Path | None = Field(
        default=None,
        description="Static web page folder (default: verifier/web/static when present).",
    )
    trust_snapshot: Path | None = Field(
        default=None,
        description="Trust snapshot file served at GET /v1/trust-snapshot (`elicence "
        "snapshot export`; none: 404).",
    )
    governor: str | None = Field(
        default=None,
        description="Governor address GET /v1/trust-anchor names (the first, if a list; "
        "default: the home's governor key).",
    )
    governor_seal_key: str | None = Field(
        default=None,
        description="Governor's SM2 public key (128 hex) GET /v1/trust-anchor names "
        '(default: the home\'s config.json "governorSealKey").',
    )

    catalogue: Path | None = Field(
        default=None,
        description="Folder of licence type definitions a version the service lacks is "
        "read from (checked against the registry's hash; none: the registry's event, "
        "from the index).",
    )
    catalogue_url: str | None = Field(
        default=None,
        description="URL template ({code}, {version}, {id}; https, or http://127.0.0.1) a "
        "version the service lacks is read from instead (checked against the registry's "
        "hash).",
    )

    @field_validator("catalogue_url")
    @classmethod
    def _catalogue_url(cls, value: str | None) -> str | None:
        # Refused at start-up, not when the first licence of a new version comes.
        from verifier.type_loading import check_url

        return None if not value else check_url(value)

    @field_validator("governor_seal_key")
    @classmethod
    def _seal_key(cls, value: str | None) -> str | None:
        # Refused at start-up, not at the first GET /v1/trust-anchor.
        text = (value or "").strip().lower().removeprefix("0x")
        if text and (len(text) != 128 or text.strip("0123456789abcdef")):
            raise ValueError("the governor's SM2 public key is 128 hex digits (X || Y)")
        return text or None

    @property
    def service_dir(self) -> Path:
        """HOME/service: API keys and the audit log."""
        return self.home / "service"

    def database_url(self) -> str | None:
        """The shared-state database: `database` given here (flag or ELICENCE_DATABASE),
        else the "database" member of the home's config.json; None: SQLite in the home.

        Raises:
            ConfigError: config.json is not JSON, or its "database" is not text.
        """
        if self.database:
            return self.database
        path = self.home / CONFIG_FILE
        try:
            saved = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except ValueError as exc:
            raise ConfigError(f"{path} is not JSON: {exc}") from None
        database = saved.get("database") if isinstance(saved, dict) else None
        if database is not None and not isinstance(database, str):
            raise ConfigError(f'{path}: "database" must be a postgresql:// URL')
        return database or None

    def trust_anchor(self) -> HomeConfig:
        """The chain URL, chain id and registry the service trusts: `chain` and `registry`
        given here, else the home's configuration (HomeConfig.read, as every command).

        Raises:
            ConfigError: the home's config.json or ELICENCE_CHAIN_ID is not valid.
        """
        return HomeConfig.read(self.home, self.chain, self.registry)


@lru_cache
def get_settings() -> Settings:
    """The settings from the environment, read once."""
    return Settings()
