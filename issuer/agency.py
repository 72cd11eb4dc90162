"""The governor's and the agency's governance operations on a home folder: deploying a
registry, remembering the chain and registry, rotating the agency's own key; and an
agency at work (`AgencyContext`), as issuing and status changes take it.

The commands in cli/agency.py call these; they ask for passphrases and print, these do
the work and raise typed errors.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path

from eth_account.signers.local import LocalAccount

from issuer.errors import IssuerError
from issuer.keystore import AGENCY_KEYSTORE, address_of, create, keystore_path
from issuer.keystore import load as load_keystore
from issuer.records import Records
from ledger.config import CONFIG_FILE, ConfigError, HomeConfig
from ledger.registry import Registry
from licence.digest import DEFAULT_SUITE, suite_named

NEXT_KEYSTORE = "agency-next.json"  # a rotation in progress (see rotate_own_key)
CHAIN_ID_TIMEOUT_S = 3.0  # asking a chain its id while saving where it is


class NotAnAgency(IssuerError):
    """The agency key of this home signs for no agency in the registry."""


@dataclass(frozen=True)
class AgencyContext:
    """An agency at work: the registry, its signing key, its records and its SM2 seal key
    (the 32-byte private key of keys/seal.json; None when the home has none)."""

    registry: Registry
    key: LocalAccount
    records: Records
    seal_key: bytes | None = field(default=None, repr=False)


def issuing_suite(home: Path, licence_type: str, chosen: str | None = None) -> str:
    """The hash suite to issue `licence_type` with: `chosen` (`issue --suite`), else the
    home's default for that type, else sha256-128. The default is config.json's

        "issuing": {"hashSuites": {"<licence type id>": "sm3-128", ...}}

    (a short name, "sm3" or "sha256", does as well).

    Raises:
        ConfigError: the "issuing" member is not of that shape.
        UnsupportedHashSuite: the suite chosen or configured is not one this installation
            can compute.
    """
    if chosen is not None:
        return suite_named(chosen)
    path = home / CONFIG_FILE
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return DEFAULT_SUITE
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{path} cannot be read: {exc}") from None
    issuing = raw.get("issuing", {}) if isinstance(raw, dict) else {}
    suites = issuing.get("hashSuites", {}) if isinstance(issuing, dict) else None
    if not isinstance(suites, dict) or not all(isinstance(v, str) for v in suites.values()):
        raise ConfigError(
            f'{path}: "issuing" must be {{"hashSuites": {{licence type id: suite name}}}}'
        )
    configured = suites.get(licence_type)
    return DEFAULT_SUITE if configured is None else suite_named(configured)


def registry_of_home(home: Path, chain: str | None, registry: str | None) -> Registry:
    """The registry the home's config (or the overrides) name, on its chain.

    Raises:
        ConfigError: no registry is configured.
        ChainUnreachable: nothing answers at the chain URL.
    """
    from ledger.chain import connect

    saved = HomeConfig.load(home)
    config = saved.resolve(chain, registry)
    address = config.require_registry()
    connected = connect(config.chain_url)
    if saved.chain_id is None and (saved.chain_url, saved.registry) == (config.chain_url, address):
        # Saved before the chain could be asked (`agency new` offline): learned now.
        saved.model_copy(update={"chain_id": connected.chain_id}).save(home)
    return Registry.at(connected, address)


@dataclass(frozen=True)
class Deployed:
    """A registry deployed for a home, and where."""

    registry: Registry
    chain_id: int
    chain_url: str


def deploy_registry(home: Path, governor: LocalAccount, chain: str | None) -> Deployed:
    """Deploy a new registry with `governor` and save its address and chain in the home."""
    from ledger.chain import connect

    config = HomeConfig.load(home).resolve(chain)
    connected = connect(config.chain_url)
    registry = Registry.deploy(connected, governor)
    HomeConfig(config.chain_url, connected.chain_id, registry.address).save(home)
    return Deployed(registry, connected.chain_id, config.chain_url)


def remember_chain(home: Path, chain: str | None, registry: str | None) -> None:
    """Save the chain and registry named (by options or environment) in the home, with the
    chain's id when the chain answers (else the first command that reaches it saves it)."""
    from ledger.chain import connect
    from ledger.errors import ChainUnreachable

    config = HomeConfig.load(home).resolve(chain, registry)
    chain_id = config.chain_id
    with suppress(ChainUnreachable):  # a key may be made offline
        chain_id = chain_id or connect(config.chain_url, timeout=CHAIN_ID_TIMEOUT_S).chain_id
    config.model_copy(update={"chain_id": chain_id}).save(home)


@dataclass(frozen=True)
class Rotation:
    """An agency's switch to a new key of its own."""

    agency_id: int
    new_address: str
    retired: Path  # where the old keystore is kept
    tx_hash: str | None  # None when the chain had the new key already (a re-run)


def rotate_own_key(
    home: Path, registry: Registry, old: LocalAccount, passphrase: Callable[[], str]
) -> Rotation:
    """Make a new agency key in `home`, sign the rotation to it with `old`, switch to it.

    `passphrase` is asked only once the registry knows `old` as an agency's key.

    Raises:
        NotAnAgency: `old` signs for no agency in `registry`.
    """
    current_path = keystore_path(home, AGENCY_KEYSTORE)
    next_path = keystore_path(home, NEXT_KEYSTORE)
    agency_id = registry.agency_id_of(old.address)
    if agency_id is None:
        raise NotAnAgency(f"the key {old.address} signs for no agency in this registry")
    # The new key is on disk before the transaction names it, so a crash can never
    # leave the agency with a signer nobody holds; a re-run reuses it.
    if next_path.exists():
        new = load_keystore(next_path, passphrase())
    else:
        new = create(next_path, passphrase())
    tx_hash = None
    if registry.agency(agency_id).signer != new.address:
        tx_hash = registry.rotate_signer(old, agency_id, new.address).tx_hash
    retired = keystore_path(home, f"agency-retired-{address_of(current_path)}.json")
    current_path.replace(retired)
    next_path.replace(current_path)
    return Rotation(agency_id, new.address, retired, tx_hash)
