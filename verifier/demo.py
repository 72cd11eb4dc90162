"""The whole story in one process on an embedded chain, for `./scripts/run`.

Deploy the registry, register a demo agency for business and food licences, issue a
small batch, revoke one licence, tamper with a copy of another, and verify three.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from eth_account import Account
from eth_account.signers.local import LocalAccount

from issuer.agency import AgencyContext
from issuer.files import write_atomically
from issuer.issuing import IssueOptions, issue_rows
from issuer.manifest import IssuedBatch, load_batch
from issuer.records import RECORDS_FILE, Records
from issuer.status import revoke
from ledger.chain import connect
from ledger.private import private_folder
from ledger.registry import Registry
from licence.catalogue import LicenceType, catalogue
from licence.credit_code import check_character
from licence.document import LicenceDocument, loads_document
from licence.reasons import Reason
from verifier.chain_source import RegistrySource
from verifier.checks import verify
from verifier.verdict import Verdict

# A made-up agency code of Guangzhou's Tianhe district (11: a state organ; 440106: the
# district) whose check characters are right (GB 32100 and the organisation code's
# GB 11714): tests/licence/test_demo_codes.py checks every demo code.
DEMO_AGENCY_NAME = "广州市天河区市场监督管理局"
DEMO_AGENCY_CODE = "1144010600749623X2"
FUNDING_WEI = 10**21  # 1,000 ether of the embedded chain's test currency


@dataclass(frozen=True)
class DemoResult:
    """What the demo did and found."""

    registry: str
    chain_id: int
    batch: IssuedBatch
    verdicts: tuple[tuple[str, Path, Verdict], ...]


def demo_rows(count: int) -> list[dict[str, str]]:
    """Demo business licences of Guangzhou's Tianhe district (fictitious enterprises with
    well-formed credit codes)."""
    rows = []
    for i in range(count):
        stem = f"914401067{i + 1:08d}"
        rows.append(
            {
                "licenceNumber": f"44010600{i + 1:010d}",
                "holderName": f"广州天河示例{'甲乙丙丁戊己庚辛壬癸'[i % 10]}科技有限公司",
                "unifiedSocialCreditCode": stem + check_character(stem),
                "legalRepresentative": "示例法人",
                "registeredAddress": f"广东省广州市天河区天河路{100 + i}号",
                "businessScope": "一般项目：技术服务、技术开发、技术咨询、技术交流、技术转让、"
                "技术推广；软件开发（除依法须经批准的项目外，凭营业执照依法自主开展经营活动）。",
                "registeredCapital": f"{(i + 1) * 100}万元人民币",
                "dateOfEstablishment": "2021-03-15",
                "validFrom": "2021-03-15",
                "validUntil": "2041-03-14",
                "issuingAuthority": DEMO_AGENCY_NAME,
            }
        )
    return rows


def tampered_copy(document: LicenceDocument, path: Path) -> LicenceDocument:
    """A copy of `document` whose registered capital was inflated, written to `path`."""
    raw = document.to_json()
    raw["fields"]["registeredCapital"] = "10000万元人民币"
    data = json.dumps(raw, ensure_ascii=False, indent=2).encode("utf-8")
    write_atomically(path, data)
    return loads_document(data)


def issue_demo(
    registry: Registry,
    agency: LocalAccount,
    licence_type: LicenceType,
    rows: Sequence[Mapping[str, str]],
    out_dir: Path,
) -> IssuedBatch:
    """`rows` issued as one batch, as `elicence issue` issues (without QR images).

    The demo's agency key is kept nowhere, so its records are of no use afterwards: they
    live in a temporary folder for the length of the issue.
    """
    with (
        tempfile.TemporaryDirectory(prefix="elicence-demo-") as scratch,
        Records(Path(scratch) / RECORDS_FILE) as records,
    ):
        report = issue_rows(
            AgencyContext(registry, agency, records),
            licence_type,
            rows,
            private_folder(out_dir, tighten=False),
            options=IssueOptions(batch_size=max(1, len(rows)), qr=False, workers=1),
        )
    return load_batch(report.batches[0].manifest)


def run_demo(out_dir: Path, count: int = 5) -> DemoResult:
    """Run the story; documents go to `out_dir`."""
    chain = connect("embedded")
    governor = Account.create()
    agency = Account.create()
    chain.fund(governor.address, FUNDING_WEI)
    chain.fund(agency.address, FUNDING_WEI)
    registry = Registry.deploy(chain, governor)
    # Agencies can only be authorised for published types: the shipped catalogue.
    registry.publish_licence_types(governor, catalogue())
    business = catalogue().get("business-licence")
    food = catalogue().get("food-business-licence")
    registry.register_agency(
        governor, DEMO_AGENCY_CODE, DEMO_AGENCY_NAME, agency.address, [business.code, food.code]
    )
    batch = issue_demo(registry, agency, business, demo_rows(count), out_dir)
    revoked = batch.documents[2]
    revoke(registry, agency, revoked, Reason.ADMINISTRATIVE_PENALTY)
    tampered_path = out_dir / "tampered" / batch.paths[1].name
    tampered = tampered_copy(batch.documents[1], tampered_path)

    source = RegistrySource(registry)
    cases = (
        ("a valid licence", batch.paths[0], batch.documents[0]),
        ("a tampered copy", tampered_path, tampered),
        ("a revoked licence", batch.paths[2], revoked),
    )
    verdicts = tuple((label, path, verify(doc, source)) for label, path, doc in cases)
    return DemoResult(registry.address, chain.chain_id, batch, verdicts)
