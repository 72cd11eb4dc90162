"""After a whole story, no personal field where it does not belong.

The story, with the real `elicence` command and real processes: deploy and authorise,
issue both licence types with QR images, present, verify through the service (QR text,
document, image), read the holder log, revoke, verify again, list the audit log. Then
every file under the story's folder (homes, output folders, the node's chain database,
the service's audit, key and index databases, the logs of every process) is searched
for every personal field value of the issued licences (the catalogue's `personal`
flags), as UTF-8, UTF-16 (both byte orders), hex and JSON escapes, and inside the QR
codes of images and the EL1: payloads of text:

- the chain database, the logs, the audit log and the indexes hold none at all;
- any other file holding one is 0600, in folders that are 0700.

The chain database also holds no field value of any licence besides its agency's name
(and the example values of the licence type definitions published in it).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import stat
import subprocess
from pathlib import Path

import httpx
import pytest

from issuer.keystore import AGENCY_KEYSTORE, create, keystore_path
from ledger import Registry, connect
from ledger.config import HomeConfig
from licence.catalogue import catalogue
from licence.errors import LicenceFormatError
from licence.payload import decode_payload, encode_payload
from tests.conftest import AGENCY_CODE, AGENCY_NAME, ELICENCE, NodeProcess, key_for, publish_types
from tests.samples import business_licence, food_business_licence
from verifier.images import decode_image, load_any

PASSPHRASE = "correct horse battery staple"
PURPOSE = "审批-2026-000123"
BUSINESS_PEOPLE = ("欧阳娜娜", "司马相如", "诸葛孔明", "上官婉儿")
FOOD_PEOPLE = ("东方不败", "独孤求败", "西门吹雪")
_PAYLOAD = re.compile(rb"EL[12]:[0-9A-Z $%*+\-./:]+")
# An EL2: payload is read with a verifier's chain and registry; any reveals its fields.
_ANY_DEPLOYMENT = {"chain_id": 1, "registry": "0x" + "00" * 20}


def forms(value: str) -> dict[str, bytes]:
    """The ways a text can sit in a file."""
    utf8 = value.encode()
    return {
        "utf-8": utf8,
        "utf-16-le": value.encode("utf-16-le"),
        "utf-16-be": value.encode("utf-16-be"),
        "hex": utf8.hex().encode(),
        "HEX": utf8.hex().upper().encode(),
        "json-escaped": json.dumps(value).strip('"').encode(),
    }


def views(path: Path) -> list[bytes]:
    """A file's bytes, and what its QR codes and EL2:/EL1: payloads carry."""
    data = path.read_bytes()
    found = [data]
    payloads = [m.group().decode() for m in _PAYLOAD.finditer(data)]
    if data.startswith((b"\x89PNG", b"\xff\xd8\xff")):
        with contextlib.suppress(LicenceFormatError, ValueError, OSError):
            payloads.append(decode_image(data))
    for payload in payloads:
        with contextlib.suppress(LicenceFormatError, ValueError):
            found.append(decode_payload(payload.strip(), **_ANY_DEPLOYMENT).to_bytes())
    return found


def holdings(path: Path, values: dict[str, str]) -> list[str]:
    """ "<value label> as <form>" for every value found in the file."""
    seen = views(path)
    return [
        f"{label} as {form}"
        for label, value in values.items()
        for form, needle in forms(value).items()
        if any(needle in view for view in seen)
    ]


def private_path(path: Path, root: Path) -> bool:
    """0600, and every folder from its own up to `root` (excluded) 0700."""
    if stat.S_IMODE(path.stat().st_mode) != 0o600:
        return False
    folder = path.parent
    while folder != root and root in folder.parents:
        if stat.S_IMODE(folder.stat().st_mode) != 0o700:
            return False
        folder = folder.parent
    return True


def run(log: Path, *args: str, home: Path, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run the real command; its standard error is kept as a log (under `log`)."""
    env = {
        **os.environ,
        "ELICENCE_HOME": str(home),
        "ELICENCE_PASSPHRASE": PASSPHRASE,
        "COLUMNS": "200",
        "NO_COLOR": "1",
    }
    result = subprocess.run(
        [str(ELICENCE), *args], capture_output=True, text=True, env=env, check=False, timeout=300
    )
    with log.open("a", encoding="utf-8") as handle:
        handle.write(f"$ elicence {' '.join(args)}\n{result.stderr}")
    if check:
        assert result.returncode == 0, f"elicence {' '.join(args)}: {result.stderr}"
    return result


def private_file(path: Path, text: str) -> Path:
    """An input the test writes itself (it holds personal data): 0600 in a 0700 folder."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    path.chmod(0o600)
    return path


def rows_csv(rows: list[dict[str, str]]) -> str:
    names = list(rows[0])
    lines = [",".join(names)]
    for row in rows:
        lines.append(",".join(f'"{row[n]}"' for n in names))
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="module")
def story(tmp_path_factory):
    """The whole story (once: it runs a dozen real processes); returns (root, the
    licences' fields, the folders that must hold no personal field)."""
    root = tmp_path_factory.mktemp("privacy") / "story"
    root.mkdir(mode=0o700)
    logs = root / "logs"
    logs.mkdir(mode=0o700)
    cli_log = logs / "cli-stderr.log"
    node = NodeProcess(root / "node-home").start()
    service = None
    try:
        chain = connect(node.url)
        governor, agency = key_for("privacy-governor"), key_for("privacy-agency")
        registry = Registry.deploy(chain, governor)
        publish_types(registry, governor, [1, 2])
        registry.register_agency(governor, AGENCY_CODE, AGENCY_NAME, agency.address, [1, 2])
        home = root / "agency-home"
        HomeConfig(node.url, chain.chain_id, registry.address).save(home)
        create(keystore_path(home, AGENCY_KEYSTORE), PASSPHRASE, key=agency.key)

        business = [
            business_licence(i, legalRepresentative=name) for i, name in enumerate(BUSINESS_PEOPLE)
        ]
        food = [
            food_business_licence(i, legalRepresentative=name) for i, name in enumerate(FOOD_PEOPLE)
        ]
        inputs = root / "inputs"
        run(
            cli_log,
            "issue",
            str(private_file(inputs / "business.csv", rows_csv(business))),
            "--type",
            "business-licence",
            "--out",
            str(root / "issued" / "business"),
            home=home,
        )
        run(
            cli_log,
            "issue",
            str(private_file(inputs / "food.csv", rows_csv(food))),
            "--type",
            "food-business-licence",
            "--out",
            str(root / "issued" / "food"),
            home=home,
        )
        issued = sorted((root / "issued" / "business").glob("110108*.json"))
        assert len(issued) == len(business)
        first = issued[0]

        holder = root / "holder"
        holder.mkdir(mode=0o700)
        run(
            cli_log,
            "present",
            str(first),
            "--disclose",
            "legalRepresentative",
            "--out",
            str(holder / "disclosing.json"),
            "--qr",
            str(holder / "disclosing.png"),
            home=home,
        )
        # The holder disclosed the personal field: the service sees it, and must keep it
        # out of its records.
        shown = encode_payload(load_any((holder / "disclosing.json").read_bytes()))

        service_home = root / "service-home"
        from tests.service.conftest import ServiceProcess

        service = ServiceProcess(
            service_home,
            node.url,
            registry.address,
            env={"ELICENCE_ANONYMOUS_RATE": "1000", "ELICENCE_ANONYMOUS_BURST": "1000"},
        )
        service.log = logs / "service.log"
        service.start()
        api = f"{service.url}/v1"
        full = json.loads(first.read_text())
        answers = [
            httpx.post(f"{api}/verifications", json={"qr": shown, "purpose": PURPOSE}, timeout=60),
            httpx.post(
                f"{api}/verifications", json={"document": full, "purpose": PURPOSE}, timeout=60
            ),
            httpx.post(
                f"{api}/verifications",
                json={"document": json.loads((holder / "disclosing.json").read_text())},
                timeout=60,
            ),
            httpx.post(
                f"{api}/verifications/image",
                files={"image": ("qr.png", first.with_suffix(".png").read_bytes(), "image/png")},
                data={"purpose": PURPOSE},
                timeout=60,
            ),
            httpx.post(
                f"{api}/verifications/batch",
                json={
                    "items": [{"document": json.loads(p.read_text())} for p in issued[:2]],
                    "purpose": PURPOSE,
                },
                timeout=60,
            ),
        ]
        assert [a.status_code for a in answers] == [200] * len(answers), [a.text for a in answers]
        assert answers[0].json()["status"] == "VALID"
        httpx.post(f"{api}/holder/verifications", json={"document": full}, timeout=60)
        run(cli_log, "revoke", full["fields"]["licenceNumber"], "--reason", "1", home=home)
        after = httpx.post(
            f"{api}/verifications", json={"qr": shown, "purpose": PURPOSE}, timeout=60
        )
        assert after.json()["status"] == "REVOKED"
        httpx.post(f"{api}/holder/verifications", json={"document": full}, timeout=60)
        run(
            cli_log,
            "verify",
            str(first),
            "--chain",
            node.url,
            "--registry",
            registry.address,
            home=home,
            check=False,
        )
        service.stop()
        audit = run(cli_log, "audit", "--home", str(service_home), "--format", "jsonl", home=home)
        (logs / "audit-export.jsonl").write_text(audit.stdout, encoding="utf-8")
    finally:
        if service is not None and service.process is not None:
            service.stop()
        if node.process is not None:
            node.stop()
    return root, business + food, (root / "node-home", logs, service_home)


def test_a_full_story_leaves_personal_fields_only_in_private_files(story):
    root, licences, clean = story
    licence_types = {t.id: t for t in catalogue()}
    personal = {
        f"{spec.name}#{n}": licence[spec.name]
        for n, licence in enumerate(licences)
        for licence_type in licence_types.values()
        for spec in licence_type.fields
        if spec.personal and spec.name in licence and set(licence) <= set(licence_type.field_names)
    }
    assert len(personal) == len(BUSINESS_PEOPLE) + len(FOOD_PEOPLE)
    chain_db, logs, _ = clean
    forbidden = [chain_db, logs]
    scanned = 0
    leaks = []
    holding = []
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        scanned += 1
        found = holdings(path, personal)
        if not found:
            continue
        holding.append(path.relative_to(root))
        where = path.relative_to(root)
        databases = path.name.startswith(("audit.sqlite", "index")) or "chain" in path.name
        if any(folder in path.parents for folder in forbidden) or databases:
            leaks.append(f"{where}: must hold no personal field, holds {found[:3]}")
        elif not private_path(path, root):
            mode = oct(stat.S_IMODE(path.stat().st_mode))
            leaks.append(f"{where} ({mode}, folders {_modes(path, root)}): holds {found[:3]}")
    assert scanned > 20, scanned
    # The scan sees what it looks for: in the issued documents, inside their QR codes and
    # in the QR codes' EL1 texts (all private files, checked above).
    issued = {p.suffix for p in holding if p.parts[0] == "issued"}
    assert issued == {".json", ".png", ".el1"}, holding
    assert leaks == [], "personal fields where they do not belong:\n" + "\n".join(leaks)


def test_the_chain_database_holds_no_field_of_any_licence(story):
    root, licences, (chain_db, _, _) = story
    # The published type definitions are public and on chain: a sample equal to one of
    # their example values (or part of one) is no licence's field leaking.
    published = "".join(t.definition.decode("utf-8") for t in catalogue())
    values = {
        f"{name}#{n}": value
        for n, licence in enumerate(licences)
        for name, value in licence.items()
        if name not in {"issuingAuthority", "validFrom", "validUntil", "dateOfEstablishment"}
        and len(value) >= 4
        and value not in published
    }
    found = {
        str(path.relative_to(root)): holdings(path, values)[:5]
        for path in chain_db.rglob("*")
        if path.is_file()
    }
    assert {k: v for k, v in found.items() if v} == {}


def _modes(path: Path, root: Path) -> str:
    modes = []
    folder = path.parent
    while folder != root and root in folder.parents:
        modes.append(f"{folder.name}={oct(stat.S_IMODE(folder.stat().st_mode))}")
        folder = folder.parent
    return ", ".join(modes)
