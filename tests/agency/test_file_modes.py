"""Every file elicence writes is 0600 in a 0700 folder (issue 15.5).

Issued documents and their QR images hold the licence secret and personal fields; the
service's audit, API keys and index name who verified what; keystores hold keys. None of
them may be readable by another account on the machine, whether elicence runs as the
`elicence` command (which sets a private umask) or as a library in a process whose umask
is the usual 022.
"""

from __future__ import annotations

import json
import os
import stat
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from issuer.keystore import AGENCY_KEYSTORE, create, keystore_path
from issuer.qr import qr_png
from issuer.records import Records
from ledger.config import HomeConfig
from ledger.index import RegistryIndex
from licence.catalogue import catalogue
from licence.payload import encode_payload
from licence.presentation import present
from tests.agency.conftest import PASSPHRASE, write_csv
from tests.samples import business_licence
from tests.service.conftest import ServiceProcess
from verifier.demo import issue_demo
from verifier.service.apikeys import ApiKeyStore
from verifier.service.audit import AuditLog

BUSINESS = catalogue().get("business-licence")


def modes(*roots: Path) -> dict[str, int]:
    """Every folder and file under `roots` (the roots too), by path, with its mode."""
    found: dict[str, int] = {}
    for root in roots:
        found[str(root)] = stat.S_IMODE(root.stat().st_mode)
        for folder, folders, files in os.walk(root):
            for name in folders + files:
                path = Path(folder) / name
                found[str(path)] = stat.S_IMODE(path.lstat().st_mode)
    return found


def not_private(*roots: Path) -> dict[str, str]:
    """The paths under `roots` that are not 0700 folders or 0600 files, with their modes."""
    wrong = {}
    for path, mode in modes(*roots).items():
        expected = 0o700 if Path(path).is_dir() else 0o600
        if mode != expected:
            wrong[path] = oct(mode)
    return wrong


@pytest.fixture
def open_umask() -> Iterator[None]:
    """This process's umask set to the common 022, as in a library user's program."""
    previous = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(previous)


@pytest.mark.slow
def test_a_full_story_leaves_only_private_files_in_private_folders(node_agency, tmp_path):
    rows = [business_licence(i) for i in range(6)]
    source = write_csv(tmp_path / "licences.csv", rows)
    out = tmp_path / "issued"
    issued = node_agency.run(
        "issue",
        str(source),
        "--type",
        "business-licence",
        "--out",
        str(out),
        "--batch-size",
        "3",
        "--workers",
        "2",
    )
    assert issued.returncode == 0, issued.stderr
    assert (out / "110108000000000001.png").exists()
    revoked = node_agency.run("revoke", "110108000000000001", "--reason", "COURT_ORDER")
    assert revoked.returncode == 0, revoked.stderr
    presented = tmp_path / "presented"
    shown = node_agency.run(
        "present",
        str(out / "110108000000000002.json"),
        "--qr",
        str(presented / "p.png"),
        "--out",
        str(presented / "p.json"),
    )
    assert shown.returncode == 0, shown.stderr
    demo = tmp_path / "demo"
    assert node_agency.run("demo", "--out", str(demo)).returncode == 0

    service_home = tmp_path / "service-home"
    made = node_agency.run("apikey", "create", "--name", "approvals", "--home", str(service_home))
    assert made.returncode == 0, made.stderr
    service = ServiceProcess(
        service_home, node_agency.node.url, node_agency.registry.address, "--workers", "2"
    ).start()
    try:
        document = json.loads((out / "110108000000000002.json").read_text(encoding="utf-8"))
        request = urllib.request.Request(
            f"{service.url}/v1/verifications",
            json.dumps({"document": document, "purpose": "开办企业"}).encode(),
            {"Content-Type": "application/json", "Authorization": f"Bearer {made.stdout.strip()}"},
        )
        with urllib.request.urlopen(request, timeout=60) as answer:
            assert json.loads(answer.read())["status"] == "VALID"
        # While the service runs, its SQLite files have their -wal and -shm side files.
        running = not_private(service_home)
    finally:
        service.stop()
    audit = node_agency.run("audit", "--home", str(service_home), "--format", "jsonl")
    assert audit.returncode == 0 and "开办企业" in audit.stdout

    assert running == {}
    roots = (
        node_agency.node.home,
        node_agency.home,
        node_agency.governor_home,
        out,
        presented,
        demo,
        service_home,
    )
    assert not_private(*roots) == {}


def test_library_use_writes_private_files_even_with_an_open_umask(
    open_umask, registry, agency_key, tmp_path
):
    home = tmp_path / "home"
    create(keystore_path(home, AGENCY_KEYSTORE), PASSPHRASE, key=agency_key.key)
    HomeConfig("embedded", registry.chain.chain_id, registry.address).save(home)
    with Records.of_home(home):
        pass
    out = tmp_path / "out" / "business"
    batch = issue_demo(registry, agency_key, BUSINESS, [business_licence(1)], out)
    qr_png(encode_payload(present(batch.documents[0], [])), tmp_path / "qr" / "one.png")
    service = home / "service"
    ApiKeyStore(service / "apikeys.sqlite").close()
    log = AuditLog(service / "audit.sqlite")
    index = RegistryIndex(home / "index.sqlite", registry)
    try:
        assert not_private(home, tmp_path / "out", tmp_path / "qr") == {}
    finally:
        index.close()
        log.close()


def test_opening_files_an_older_version_left_open_makes_them_private(open_umask, tmp_path):
    home = tmp_path / "home"
    service = home / "service"
    service.mkdir(parents=True, mode=0o755)
    home.chmod(0o755)
    for name in ("audit.sqlite", "audit.sqlite-wal", "apikeys.sqlite"):
        (service / name).touch(mode=0o644)
    (home / "records.sqlite").touch(mode=0o644)
    HomeConfig.load(home)
    AuditLog(service / "audit.sqlite").close()
    ApiKeyStore(service / "apikeys.sqlite").close()
    with Records.of_home(home):
        pass
    service.chmod(0o700)  # a subfolder the home's owner made open is the owner's choice...
    assert not_private(home) == {}  # ...but the home and every data file are tightened
