"""First-start demo for `elicence serve --demo`: a registry, a demo agency and licences.

Runs once per home: when the home's config already names a registry, nothing is done.
The governor and agency keys are made for the demo and kept nowhere (nothing reads them
afterwards, and a key at rest must be encrypted). The licences are written to
HOME/demo/: full documents, minimal presentations as EL1: text and as QR images, one of
them revoked.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from eth_account import Account

from issuer.files import write_atomically
from issuer.qr import qr_png
from issuer.status import revoke
from ledger.chain import Chain
from ledger.config import HomeConfig
from ledger.registry import Registry
from licence.catalogue import catalogue
from licence.payload import encode_payload
from licence.presentation import present
from licence.reasons import Reason
from verifier.demo import DEMO_AGENCY_CODE, DEMO_AGENCY_NAME, demo_rows, issue_demo

DEMO_COUNT = 5
REVOKED_INDEX = 2


@dataclass(frozen=True)
class ServiceDemo:
    """What the demo set up."""

    registry: str
    folder: Path
    payloads: tuple[Path, ...]  # minimal presentations, EL1: text, one per licence
    revoked: Path


def food_rows(business: list[dict[str, str]]) -> list[dict[str, str]]:
    """Food business licences for the same enterprises (a matter may need both)."""
    return [
        {
            "licenceNumber": f"JY14401060{i + 1:06d}",
            "holderName": row["holderName"],
            "unifiedSocialCreditCode": row["unifiedSocialCreditCode"],
            "legalRepresentative": row["legalRepresentative"],
            "residence": row["registeredAddress"],
            "businessPremises": row["registeredAddress"] + "一层",
            "mainBusinessFormat": "餐饮服务经营者（小型餐馆）",
            "businessItems": "热食类食品制售",
            "validFrom": "2024-01-01",
            "validUntil": "2029-12-31",
            "issuingAuthority": DEMO_AGENCY_NAME,
        }
        for i, row in enumerate(business)
    ]


def set_up_demo(home: Path, chain: Chain) -> ServiceDemo:
    """Deploy, authorise, issue and revoke on `chain`; save the home's config."""
    folder = home / "demo"
    governor, agency = Account.create(), Account.create()
    folder.mkdir(parents=True, exist_ok=True)
    if chain.faucet is not None:  # the embedded node tops senders up by itself
        for account in (governor, agency):
            chain.fund(account.address, 10**21)
    registry = Registry.deploy(chain, governor)
    business, food = catalogue().get("business-licence"), catalogue().get("food-business-licence")
    # Agencies can only be authorised for published types: the shipped catalogue.
    registry.publish_licence_types(governor, catalogue())
    registry.register_agency(
        governor, DEMO_AGENCY_CODE, DEMO_AGENCY_NAME, agency.address, [business.code, food.code]
    )
    rows = demo_rows(DEMO_COUNT)
    issued = issue_demo(registry, agency, business, rows, folder / "business")
    foods = issue_demo(registry, agency, food, food_rows(rows), folder / "food")
    revoke(registry, agency, issued.documents[REVOKED_INDEX], Reason.ADMINISTRATIVE_PENALTY)
    payloads = []
    for kind, batch in (("business", issued), ("food", foods)):
        for document, path in zip(batch.documents, batch.paths, strict=True):
            payload = encode_payload(present(document, []))
            text_path = folder / "qr" / f"{kind}-{path.stem}.el1"
            write_atomically(text_path, (payload + "\n").encode("ascii"))
            qr_png(payload, text_path.with_suffix(".png"))
            payloads.append(text_path)
    HomeConfig(chain_url=chain.url, chain_id=chain.chain_id, registry=registry.address).save(home)
    return ServiceDemo(registry.address, folder, tuple(payloads), payloads[REVOKED_INDEX])


def is_set_up(home: Path) -> bool:
    """Whether the home already names a registry (then no demo is set up)."""
    return HomeConfig.load(home).registry is not None or bool(os.environ.get("ELICENCE_REGISTRY"))
