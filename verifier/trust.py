"""Verifying against the registry the verifier trusts, never the one a document names.

The trusted registry and chain id come from the caller (options, environment, the home's
config.json); a document's own anchor proves only that someone anchored it there, which
anyone can do.
"""

from __future__ import annotations

from pathlib import Path

from ledger.config import CONFIG_FILE, HomeConfig
from licence.document import LicenceDocument
from verifier.errors import UntrustedRegistry
from verifier.verdict import Verdict


def trusted_registry(address: str | None, home: Path) -> str:
    """The configured registry, checksummed.

    Raises:
        UntrustedRegistry: there is none, or it is not an address.
    """
    from web3 import Web3

    if not address:
        raise UntrustedRegistry(
            "no trusted registry configured, and the registry a document names is never "
            "trusted: pass --registry ADDRESS (and --chain-id), or set ELICENCE_REGISTRY "
            f"(and ELICENCE_CHAIN_ID), or name them in {home / CONFIG_FILE} "
            "(`elicence registry deploy` and `elicence agency new --registry` write it)"
        )
    if not Web3.is_address(address):
        raise UntrustedRegistry(f"the trusted registry {address!r} is not an address")
    return str(Web3.to_checksum_address(address))


def refuse_foreign(document: LicenceDocument, registry: str, chain_id: int) -> None:
    """Raises UntrustedRegistry when the document names another registry or chain."""
    named = document.anchor
    if named.chain_id == chain_id and named.registry.lower() == registry.lower():
        return
    raise UntrustedRegistry(
        f"this licence names registry {named.registry} on chain {named.chain_id}, but the "
        f"trusted registry is {registry} on chain {chain_id}; it was not issued under the "
        "registry you trust"
    )


def verify_trusted(document: LicenceDocument, config: HomeConfig, home: Path) -> Verdict:
    """The verdict on `document` from the registry `config` trusts, read from its chain.

    Raises:
        UntrustedRegistry: no trusted registry, a node on another chain, or a document
            naming another registry or chain.
        CouldNotCheck, LedgerError: the chain could not be read.
    """
    from ledger.chain import connect
    from ledger.registry import Registry
    from verifier.chain_source import RegistrySource
    from verifier.checks import verify

    trusted = trusted_registry(config.registry, home)
    if config.chain_id is not None:
        refuse_foreign(document, trusted, config.chain_id)
    ledger = connect(config.chain_url)
    if config.chain_id is not None and ledger.chain_id != config.chain_id:
        raise UntrustedRegistry(
            f"{config.chain_url} serves chain {ledger.chain_id}, but the trusted registry "
            f"{trusted} is on chain {config.chain_id}: check --chain and --chain-id"
        )
    refuse_foreign(document, trusted, ledger.chain_id)
    return verify(document, RegistrySource(Registry.at(ledger, trusted)))
