"""The governor's and the agency's governance operations on a home folder: deploying a
registry, remembering the chain and registry, rotating the agency's own key; and an
agency at work (`AgencyContext`), as issuing and status changes take it.

The commands in cli/agency.py call these; they ask for passphrases and print, these do
the work and raise typed errors.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from eth_account.signers.local import LocalAccount

from issuer.errors import IssuerError
from issuer.keystore import AGENCY_KEYSTORE, address_of, create, keystore_path
from issuer.keystore import load as load_keystore
from issuer.records import Records
from ledger.config import HomeConfig
from ledger.registry import Registry

NEXT_KEYSTORE = "agency-next.json"  # a rotation in progress (see rotate_own_key)


class NotAnAgency(IssuerError):
    """The agency key of this home signs for no agency in the registry."""


@dataclass(frozen=True)
class AgencyContext:
    """An agency at work: the registry, its signing key and its records."""

    registry: Registry
    key: LocalAccount
    records: Records


def registry_of_home(home: Path, chain: str | None, registry: str | None) -> Registry:
    """The registry the home's config (or the overrides) name, on its chain.

    Raises:
        ConfigError: no registry is configured.
        ChainUnreachable: nothing answers at the chain URL.
    """
    from ledger.chain import connect

    config = HomeConfig.load(home).resolve(chain, registry)
    address = config.require_registry()
    connected = connect(config.chain_url)
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
    """Save the chain and registry named (by options or environment) in the home."""
    config = HomeConfig.load(home).resolve(chain, registry)
    HomeConfig(config.chain_url, config.chain_id, config.registry).save(home)


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
