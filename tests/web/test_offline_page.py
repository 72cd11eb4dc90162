"""The verify page as an offline web app, in headless Chromium with the service stopped.

A registry on a real node holds, in each hash suite, a licence of every verdict: VALID,
TAMPERED (a field changed), REVOKED, SUPERSEDED, EXPIRED and ISSUER_NOT_AUTHORISED (an
agency's chain key reported compromised, and a seal by a compromised seal key); the
governor exports one trust snapshot (`elicence snapshot export`) that a real `elicence
serve` offers at GET /v1/trust-snapshot. The page is opened once online (it installs its
service worker, pins the trust anchor and fetches the snapshot); then the service process
is killed and the page reloaded: it must come from the worker's cache, restore the
snapshot, and give for each licence the verdict (status, and each check's name, outcome
and reason code) that `verify()` gives over the snapshot and over the chain and that
`elicence verify --snapshot --json` prints, with the snapshot's block and age on every
card.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from eth_account.signers.local import LocalAccount
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement

from cli.snapshot import GOVERNOR_SEAL_KEYSTORE
from issuer.batch import wrap_batch
from issuer.keystore import GOVERNOR_KEYSTORE, create, keystore_path, load_seal_key
from issuer.qr import qr_png_bytes
from ledger import Registry, connect
from ledger.config import HomeConfig
from licence import seal
from licence.catalogue import catalogue
from licence.catalogue_rules import parse_definition
from licence.document import LicenceDocument, parse_document
from licence.payload import decode_payload, encode_payload
from licence.reasons import Reason
from tests.conftest import (
    AGENCY_CODE,
    AGENCY_NAME,
    ELICENCE,
    OTHER_AGENCY_CODE,
    OTHER_AGENCY_NAME,
    NodeProcess,
    free_port,
    key_for,
    publish_types,
)
from tests.samples import business_licence, with_remarks
from tests.web.conftest import STATIC, wait
from tests.web.pages import card, contrast, open_page, shoot, verify_text
from verifier.chain_source import RegistrySource
from verifier.checks import verify
from verifier.errors import TypeUnavailable
from verifier.trust_snapshot import body_digest, load_snapshot, sign_body
from verifier.type_loading import TypeLoader, parse_loading

SUITES = ("sha256-128", "sm3-128")
# The licences the page, the CLI and the chain must give the same verdict for, in each
# suite; the first word is the verdict's status.
CASES = (
    "VALID",
    "TAMPERED",
    "REVOKED",
    "SUPERSEDED",
    "EXPIRED",
    "ISSUER_NOT_AUTHORISED key",
    "ISSUER_NOT_AUTHORISED seal",
)
# Version 2 of the business licence, published on chain only (the page reads it from the
# snapshot), and a v1 licence that names version 2 (its hashes agree; its batch's version
# does not): the JSON texts, as the holder would upload them.
VERSION_CASES = ("VALID version 2", "TAMPERED type version")
BUSINESS_V2 = parse_definition(with_remarks("business-licence"))
PASSPHRASE = "offline page passphrase"
PHONE_WIDTH = 375
SW = STATIC / "sw.js"


# ---------------------------------------------------------------- the worker's files


def _shell() -> list[str]:
    text = SW.read_text("utf-8")
    block = re.search(r"const SHELL = \[(.*?)\];", text, re.DOTALL)
    assert block is not None, "sw.js has no SHELL list"
    return re.findall(r'^\s*"([^"]+)",?\s*$', block.group(1), re.MULTILINE)


def _version() -> str:
    found = re.search(r'const VERSION = "([0-9a-f]+)";', SW.read_text("utf-8"))
    assert found is not None
    return found.group(1)


def shell_digest(paths: list[str]) -> str:
    """The cache version sw.js must carry: a digest of every shell file's name and bytes."""
    digest = hashlib.sha256()
    for path in paths:
        digest.update(path.encode("utf-8") + b"\0" + (STATIC / path).read_bytes() + b"\0")
    return digest.hexdigest()[:12]


_IMPORT = re.compile(r"""(?:\bimport\s*(?:[\w*{}\s,]+from\s*)?|\bimport\s*\()\s*["']([^"']+)["']""")
_TAG = re.compile(r"""<(?:script|link)\b[^>]*?\b(?:src|href)="([^"]+)\"""")


def _loaded_by(page: str) -> set[str]:
    """Every file `page` loads: its tags' files and, from its modules, what they import."""
    found: set[str] = set()
    todo = [u for u in _TAG.findall((STATIC / page).read_text("utf-8"))]
    while todo:
        path = todo.pop()
        if path in found or not (STATIC / path).is_file():
            continue
        found.add(path)
        if path.endswith(".js"):
            base = Path(path).parent
            for spec in _IMPORT.findall((STATIC / path).read_text("utf-8")):
                if spec.startswith("."):
                    todo.append(os.path.normpath(base / spec))
        if path.endswith(".webmanifest"):
            todo += [i["src"] for i in json.loads((STATIC / path).read_text("utf-8"))["icons"]]
    return found


def test_worker_precaches_every_file_the_pages_load() -> None:
    shell = set(_shell())
    for page in ("index.html", "present.html"):
        missing = _loaded_by(page) - shell
        assert not missing, f"sw.js SHELL lacks what {page} loads: {sorted(missing)}"
    assert {"index.html", "js/verify.js", "js/offline.js", "reasons.json"} <= shell
    for path in shell:
        assert (STATIC / path).is_file(), f"sw.js precaches {path}, which does not exist"
    # Nothing of the API: never a verdict, and no copy of the catalogue either (offline,
    # the licence types are the snapshot's signed definitions).
    assert "v1/" not in SW.read_text("utf-8").split("const SHELL")[1]


def test_worker_cache_name_changes_with_the_files_it_precaches() -> None:
    # An update is installed only when sw.js changes: its VERSION names the bytes.
    expected = shell_digest(_shell())
    assert _version() == expected, f'set VERSION in sw.js to "{expected}" (the shell changed)'


# ---------------------------------------------------------------- the registry and service


@dataclass
class World:
    """A registry with a batch per suite, its governor's home and trust snapshots."""

    node: NodeProcess
    home: Path
    registry: str
    chain_id: int
    governor: LocalAccount
    snapshot: Path
    foreign: Path  # a snapshot of another registry, signed by the same governor
    governor_seal_key: bytes  # the governor's SM2 public key, which co-signs snapshots
    documents: dict[tuple[str, str], LicenceDocument] = field(default_factory=dict)
    texts: dict[tuple[str, str], str] = field(default_factory=dict)  # of VERSION_CASES


def _governor_home(home: Path, url: str, chain_id: int, registry: str, key: LocalAccount) -> None:
    HomeConfig(url, chain_id, registry).save(home)
    create(keystore_path(home, GOVERNOR_KEYSTORE), PASSPHRASE, key=key.key)


def _elicence(home: Path, *args: str) -> None:
    env = {**os.environ, "ELICENCE_HOME": str(home), "ELICENCE_PASSPHRASE": PASSPHRASE}
    done = subprocess.run(
        [str(ELICENCE), *args], capture_output=True, text=True, env=env, check=False
    )
    assert done.returncode == 0, done.stderr


def _export(home: Path, destination: Path) -> None:
    _elicence(home, "snapshot", "export", str(destination))


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    base = tmp_path_factory.mktemp("offline-page")
    node = NodeProcess(base / "chain").start()
    try:
        chain = connect(node.url)
        governor, agency = key_for("offline-page-governor"), key_for("offline-page-agency")
        registry = Registry.deploy(chain, governor)
        publish_types(registry, governor, [1])
        registry.publish_licence_type(governor, BUSINESS_V2)
        registry.register_agency(governor, AGENCY_CODE, AGENCY_NAME, agency.address, [1])
        # The agency seals its batches (SM2), so the page checks seals as the service does.
        seal_key = seal.new_private_key()
        registry.register_seal_key(governor, 1, seal.public_key(seal_key), chain.block_number() + 1)
        registry_bytes = bytes.fromhex(registry.address[2:])

        def sealer(root: bytes) -> bytes:
            return seal.seal_root(seal_key, chain.chain_id, registry_bytes, root)

        business = catalogue().get("business-licence", 1)

        def issue(
            rows: list[dict[str, str]],
            suite: str,
            by: LocalAccount,
            sealed: bool,
            of_type: Any = business,
        ) -> Any:
            batch = wrap_batch(
                of_type,
                rows,
                chain_id=chain.chain_id,
                registry=registry.address,
                suite=suite,
                sealer=sealer if sealed else None,
            )
            registry.anchor(by, batch.root, of_type.code, len(rows), type_version=of_type.version)
            return batch

        # A second agency (no seal key) whose chain key is reported compromised from
        # its first anchor here on: what it anchored since is ISSUER_NOT_AUTHORISED.
        posing = key_for("offline-page-other-agency")
        publish_types(registry, governor, [1])
        registry.register_agency(
            governor, OTHER_AGENCY_CODE, OTHER_AGENCY_NAME, posing.address, [1]
        )
        documents: dict[tuple[str, str], LicenceDocument] = {}
        texts: dict[tuple[str, str], str] = {}
        leaked = []
        for n, suite in enumerate(SUITES):
            rows = [
                business_licence(10 * n),
                business_licence(10 * n + 1),
                business_licence(10 * n + 2),
                business_licence(10 * n + 3, validFrom="2010-01-01", validUntil="2015-12-31"),
            ]
            batch = issue(rows, suite, agency, sealed=True)
            registry.revoke(agency, batch.root, batch.documents[1].licence_id, Reason.FRAUD)
            renewed = issue(
                [business_licence(10 * n + 2, registeredCapital="500万元人民币")],
                suite,
                agency,
                sealed=True,
            )
            registry.supersede(
                agency,
                batch.root,
                batch.documents[2].licence_id,
                renewed.documents[0].licence_id,
                Reason.CHANGE_OF_PARTICULARS,
            )
            other = issue(
                [business_licence(10 * n + 4, issuingAuthority=OTHER_AGENCY_NAME)],
                suite,
                posing,
                sealed=False,
            )
            anchored = registry.anchor_of(other.root)
            assert anchored is not None
            leaked.append(anchored.block_number)
            valid = batch.documents[0]
            changed = json.loads(valid.to_bytes())
            changed["fields"]["holderName"] = "别的公司"  # the holder's name, rewritten
            documents[(suite, "VALID")] = valid
            documents[(suite, "TAMPERED")] = parse_document(changed)
            documents[(suite, "REVOKED")] = batch.documents[1]
            documents[(suite, "SUPERSEDED")] = batch.documents[2]
            documents[(suite, "EXPIRED")] = batch.documents[3]
            documents[(suite, "ISSUER_NOT_AUTHORISED key")] = other.documents[0]
            second = issue(
                [business_licence(10 * n + 6, remarks="二〇二六年换发")],
                suite,
                agency,
                sealed=True,
                of_type=BUSINESS_V2,
            )
            texts[(suite, "VALID version 2")] = second.documents[0].to_bytes().decode()
            claims = json.loads(valid.to_bytes())
            claims["typeVersion"] = 2
            texts[(suite, "TAMPERED type version")] = json.dumps(claims, ensure_ascii=False)
            claims["typeVersion"] = 3  # never published
            texts[(suite, "unpublished version")] = json.dumps(claims, ensure_ascii=False)
        registry.mark_signer_compromised(governor, posing.address, min(leaked))
        # The agency's seal key reported compromised from these batches on: sealed by
        # whoever holds it now, they are ISSUER_NOT_AUTHORISED (its earlier ones stand).
        stolen = []
        for n, suite in enumerate(SUITES):
            forged = issue([business_licence(10 * n + 5)], suite, agency, sealed=True)
            anchored = registry.anchor_of(forged.root)
            assert anchored is not None
            stolen.append(anchored.block_number)
            documents[(suite, "ISSUER_NOT_AUTHORISED seal")] = forged.documents[0]
        registry.mark_seal_key_compromised(governor, 1, 1, min(stolen))
        home = base / "governor-home"
        _governor_home(home, node.url, chain.chain_id, registry.address, governor)
        # The governor's SM2 key co-signs the snapshot; `seal-key new` pins it in the
        # home's config.json, so the service's trust anchor names it.
        _elicence(home, "snapshot", "seal-key", "new")
        seal_public = json.loads((home / "config.json").read_text("utf-8"))["governorSealKey"]
        snapshot = base / "trust.snapshot"
        _export(home, snapshot)

        other = Registry.deploy(chain, governor)
        publish_types(other, governor, [1])
        other.register_agency(governor, AGENCY_CODE, AGENCY_NAME, agency.address, [1])
        other_home = base / "other-home"
        _governor_home(other_home, node.url, chain.chain_id, other.address, governor)
        shutil.copy(
            keystore_path(home, GOVERNOR_SEAL_KEYSTORE),
            keystore_path(other_home, GOVERNOR_SEAL_KEYSTORE),
        )
        foreign = base / "other-registry.snapshot"
        _export(other_home, foreign)
        yield World(
            node,
            home,
            registry.address,
            chain.chain_id,
            governor,
            snapshot,
            foreign,
            bytes.fromhex(seal_public),
            documents,
            texts,
        )
    finally:
        node.stop()
        # What reading version 2 loaded into this process's catalogue goes with the world.
        held = catalogue()
        held._install({k: v for k, v in held._by_key.items() if k != BUSINESS_V2.key})


class Service:
    """`elicence serve` on the governor's home, offering the world's snapshot."""

    def __init__(self, world: World, folder: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {**os.environ, "ELICENCE_TRUST_SNAPSHOT": str(world.snapshot)}
        with (folder / "serve.log").open("wb") as log:
            self.process: subprocess.Popen[bytes] | None = subprocess.Popen(
                [
                    str(ELICENCE),
                    *("serve", "--home", str(world.home), "--port", str(self.port)),
                    *("--chain", world.node.url, "--log-level", "warning"),
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,
            )
        self.log = folder / "serve.log"

    def wait_healthy(self) -> None:
        def healthy(_: object) -> bool:
            assert self.process is not None and self.process.poll() is None, self.log.read_text()
            try:
                return httpx.get(f"{self.url}/healthz", timeout=2).status_code == 200
            except httpx.HTTPError:
                return False

        from selenium.webdriver.support.ui import WebDriverWait

        WebDriverWait(self, 120, poll_frequency=0.2).until(healthy)

    def stop(self) -> None:
        """Kill the service: from now on nothing answers at its address."""
        if self.process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()
        self.process = None


@pytest.fixture
def service(world: World, tmp_path: Path) -> Iterator[Service]:
    running = Service(world, tmp_path)
    try:
        running.wait_healthy()
        yield running
    finally:
        running.stop()


# ---------------------------------------------------------------- on the page


def _wait_offline_ready(driver: WebDriver) -> None:
    wait(driver).until(
        lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-offline-ready")
    )


def _wait_snapshot(driver: WebDriver) -> str:
    """The block of the snapshot the page shows it holds, once it holds one."""
    status = driver.find_element(By.ID, "snapshot-status")
    wait(driver).until(lambda _: status.get_attribute("data-block"))
    return str(status.get_attribute("data-block"))


def _wait_controlled(driver: WebDriver) -> None:
    """Until the service worker is active and controls the page (its shell precached)."""
    wait(driver).until(lambda d: d.execute_script("return !!navigator.serviceWorker.controller"))


def _cache_names(driver: WebDriver) -> list[str]:
    names: list[str] = driver.execute_async_script(
        "const done = arguments[arguments.length - 1]; caches.keys().then(done);"
    )
    return names


def _cached_urls(driver: WebDriver) -> list[str]:
    urls: list[str] = driver.execute_async_script(
        """const done = arguments[arguments.length - 1];
        (async () => {
          const all = [];
          for (const name of await caches.keys()) {
            for (const request of await (await caches.open(name)).keys()) all.push(request.url);
          }
          return all;
        })().then(done);"""
    )
    return urls


def _upload(driver: WebDriver, input_id: str, path: Path) -> None:
    driver.execute_script("document.getElementById('card-slot').replaceChildren();")
    driver.find_element(By.ID, input_id).send_keys(str(path))


def _checks(shown: WebElement) -> list[tuple[str, str, str]]:
    rows = []
    for item in shown.find_elements(By.CSS_SELECTOR, "li[data-check]"):
        outcome = re.search(r"check--(\w+)", str(item.get_attribute("class")))
        assert outcome is not None
        rows.append(
            (
                str(item.get_attribute("data-check")),
                outcome.group(1),
                str(item.get_attribute("data-code")),
            )
        )
    return rows


def _loaded_snapshot(world: World) -> Any:
    return load_snapshot(
        world.snapshot,
        governors=[world.governor.address],
        registry=world.registry,
        chain_id=world.chain_id,
        governor_seal_key=world.governor_seal_key,
    )


def _python_verdict(world: World, document: LicenceDocument) -> dict[str, Any]:
    answer: dict[str, Any] = verify(document, _loaded_snapshot(world)).to_json()
    return answer


def _read_with_snapshot(world: World, text: str) -> LicenceDocument:
    """The JSON text as the service reads it offline: a type version it lacks from the
    snapshot (TypeUnavailable when the snapshot lacks it too)."""
    snapshot = _loaded_snapshot(world)
    return parse_loading(lambda: parse_document(json.loads(text)), lambda: TypeLoader([snapshot]))


def _chain_verdict(world: World, document: LicenceDocument) -> dict[str, Any]:
    """`verify()` over the registry itself, read from the node over JSON-RPC."""
    registry = Registry.at(connect(world.node.url), world.registry)
    answer: dict[str, Any] = verify(document, RegistrySource(registry)).to_json()
    return answer


def _cli_verdict(world: World, path: Path) -> tuple[int, dict[str, Any]]:
    """`elicence verify FILE --snapshot S --json` as a real process: its exit status
    and verdict."""
    env = {**os.environ, "COLUMNS": "200", "NO_COLOR": "1"}
    env.pop("ELICENCE_SNAPSHOT", None)
    done = subprocess.run(
        [
            str(ELICENCE),
            *("verify", str(path), "--json", "--home", str(world.home)),
            *("--snapshot", str(world.snapshot), "--governor", world.governor.address),
            *("--governor-seal-key", world.governor_seal_key.hex()),
        ],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert done.returncode in (0, 1), done.stderr
    answer: dict[str, Any] = json.loads(done.stdout)
    return done.returncode, answer


def _cli_exit(world: World, path: Path) -> int:
    done = subprocess.run(
        [
            str(ELICENCE),
            *("verify", str(path), "--json", "--home", str(world.home)),
            *("--snapshot", str(world.snapshot), "--governor", world.governor.address),
            *("--governor-seal-key", world.governor_seal_key.hex()),
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "NO_COLOR": "1"},
        check=False,
    )
    return done.returncode


def _shape(verdict: dict[str, Any]) -> tuple[str, list[tuple[str, str, str]]]:
    """What must agree everywhere: the status, and each check's name, outcome and code."""
    return verdict["status"], [(c["name"], c["outcome"], str(c["code"])) for c in verdict["checks"]]


def _assert_same_verdict(shown: WebElement, expected: dict[str, Any], block: str) -> None:
    assert shown.get_attribute("data-source") == "snapshot"
    assert shown.get_attribute("data-status") == expected["status"]
    assert _checks(shown) == [(c["name"], c["outcome"], str(c["code"])) for c in expected["checks"]]
    asof = shown.find_element(By.CSS_SELECTOR, "[data-asof-block]")
    assert asof.get_attribute("data-asof-block") == block
    assert f"截至区块 {block}" in asof.text
    assert asof.find_element(By.CSS_SELECTOR, ".asof__age").text.startswith("所用快照已有")


def _no_sideways_scroll(driver: WebDriver) -> bool:
    return bool(
        driver.execute_script(
            "return document.documentElement.scrollWidth <= document.documentElement.clientWidth"
        )
    )


@pytest.mark.slow
@pytest.mark.parametrize("suite", SUITES)
def test_page_verifies_from_its_snapshot_after_the_service_is_gone(
    browser: WebDriver,
    world: World,
    service: Service,
    suite: str,
    tmp_path: Path,
    screenshots: Path,
) -> None:
    open_page(browser, service.url)
    _wait_offline_ready(browser)
    block = _wait_snapshot(browser)
    _wait_controlled(browser)

    service.stop()
    with pytest.raises(httpx.HTTPError):
        httpx.get(f"{service.url}/healthz", timeout=2)
    open_page(browser, service.url)  # from the worker's cache, or not at all
    _wait_offline_ready(browser)
    assert _wait_snapshot(browser) == block  # kept across the reload

    valid, revoked = world.documents[(suite, "VALID")], world.documents[(suite, "REVOKED")]
    # The holder's JSON file, uploaded.
    valid_file = tmp_path / "valid.json"
    valid_file.write_bytes(valid.to_bytes())
    _upload(browser, "upload", valid_file)
    shown = card(browser)
    _assert_same_verdict(shown, _python_verdict(world, valid), block)
    assert shown.get_attribute("data-status") == "VALID"
    # The type named from the snapshot's definitions (GET v1/catalogue failed).
    assert shown.find_element(By.CSS_SELECTOR, "[data-fact=licence-type] dd").text == "营业执照"
    shoot(browser, screenshots, f"offline-valid-{suite}", shown)

    # A photo of the QR code, read in the browser.
    qr_file = tmp_path / "revoked.png"
    qr_file.write_bytes(qr_png_bytes(encode_payload(revoked)))
    _upload(browser, "upload", qr_file)
    shown = card(browser)
    _assert_same_verdict(shown, _python_verdict(world, revoked), block)
    assert shown.get_attribute("data-status") == "REVOKED"

    # An .el1 file and a pasted payload.
    el1_file = tmp_path / "valid.el1"
    el1_file.write_text(encode_payload(valid), "ascii")
    _upload(browser, "upload", el1_file)
    _assert_same_verdict(card(browser), _python_verdict(world, valid), block)
    shown = verify_text(browser, encode_payload(revoked))
    _assert_same_verdict(shown, _python_verdict(world, revoked), block)
    assert (
        shown.find_element(By.CSS_SELECTOR, "[data-asof-block]").get_attribute("data-stale")
        == "false"
    )

    # Every verdict, as the holder's JSON file: the page offline, verify() over the
    # snapshot and over the chain, and the CLI with the snapshot say the same.
    for case in CASES:
        expected = case.split()[0]
        document = world.documents[(suite, case)]
        path = tmp_path / f"{case.lower().replace(' ', '-')}.json"
        path.write_bytes(document.to_bytes())
        _upload(browser, "upload", path)
        shown = card(browser)
        page = (str(shown.get_attribute("data-status")), _checks(shown))
        from_snapshot = _python_verdict(world, document)
        exit_status, from_cli = _cli_verdict(world, path)
        assert _shape(from_snapshot)[0] == expected
        assert page == _shape(from_snapshot), case
        assert page == _shape(_chain_verdict(world, document)), case
        assert page == _shape(from_cli), case
        assert exit_status == (0 if expected == "VALID" else 1), case
        _assert_same_verdict(shown, from_snapshot, block)
        assert from_cli["snapshot"]["blockNumber"] == int(block)

    revoked_file = tmp_path / "revoked.json"
    revoked_file.write_bytes(revoked.to_bytes())

    # A second version of the type, published on chain only, and a licence that names
    # another version than its batch was anchored under: read by the snapshot's types.
    by_cli: dict[str, tuple[Path, tuple[str, list[tuple[str, str, str]]]]] = {}
    for case in VERSION_CASES:
        expected = case.split()[0]
        text = world.texts[(suite, case)]
        path = tmp_path / f"{case.lower().replace(' ', '-')}.json"
        path.write_text(text, "utf-8")
        _upload(browser, "upload", path)
        shown = card(browser)
        page = (str(shown.get_attribute("data-status")), _checks(shown))
        document = _read_with_snapshot(world, text)
        from_snapshot = _python_verdict(world, document)
        assert _shape(from_snapshot)[0] == expected, from_snapshot
        assert page == _shape(from_snapshot), case
        assert page == _shape(_chain_verdict(world, document)), case
        _assert_same_verdict(shown, from_snapshot, block)
        by_cli[case] = (path, page)
    codes = [code for _, _, code in _checks(card(browser))]
    assert "issuer.other-type-version" in codes

    # A version the registry never published: could not check (the licence may be
    # genuine), as `elicence verify --snapshot` says with exit status 3.
    text = world.texts[(suite, "unpublished version")]
    with pytest.raises(TypeUnavailable):
        _read_with_snapshot(world, text)
    path = tmp_path / "unpublished.json"
    path.write_text(text, "utf-8")
    _upload(browser, "upload", path)
    shown = card(browser)
    assert shown.get_attribute("data-kind") == "unchecked"
    assert "快照中没有这份证照所属证照类型的这一版本" in shown.text
    unpublished = path
    _upload(browser, "upload", revoked_file)
    shown = card(browser)

    # At a phone's width everything still fits, the age included.
    browser.set_window_size(PHONE_WIDTH, 800)
    assert _no_sideways_scroll(browser)
    assert shown.find_element(By.CSS_SELECTOR, ".asof__age").is_displayed()
    shoot(browser, screenshots, f"offline-revoked-phone-{suite}")
    panel = browser.find_element(By.ID, "offline")
    browser.execute_script("arguments[0].scrollIntoView()", panel)
    shoot(browser, screenshots, f"offline-panel-phone-{suite}", panel)

    # The CLI with the snapshot reads the other versions as the page does.
    for case, (path, page) in by_cli.items():
        _, from_cli = _cli_verdict(world, path)
        assert page == _shape(from_cli), case
    assert _cli_exit(world, unpublished) == 3


@pytest.mark.slow
def test_holders_page_offline_reads_the_licence_types_from_the_kept_snapshot(
    browser: WebDriver, world: World, service: Service, tmp_path: Path
) -> None:
    # The verify page keeps the snapshot; the holder's page, opened with the service gone,
    # lays the QR payload out by the snapshot's definitions (no copy of the catalogue).
    open_page(browser, service.url)
    _wait_offline_ready(browser)
    _wait_snapshot(browser)
    _wait_controlled(browser)
    service.stop()
    open_page(browser, service.url + "/present.html")
    valid = world.documents[("sha256-128", "VALID")]
    path = tmp_path / "valid.json"
    path.write_bytes(valid.to_bytes())
    browser.find_element(By.ID, "licence-file").send_keys(str(path))
    payload = wait(browser).until(lambda d: d.find_element(By.ID, "payload").get_attribute("value"))
    shown = decode_payload(str(payload), chain_id=world.chain_id, registry=world.registry)
    assert shown.licence_id == valid.licence_id
    assert set(shown.fields) < set(valid.fields)  # personal data starts hidden


@pytest.mark.slow
def test_snapshot_older_than_the_chosen_age_is_shown_amber_on_the_verdict(
    browser: WebDriver, world: World, service: Service, screenshots: Path
) -> None:
    # A node that mines blocks faster than one a second dates them ahead of the clock:
    # an age of 0 days is passed only once the snapshot's block time is.
    ahead = _loaded_snapshot(world).block_time.timestamp() + 1 - time.time()
    time.sleep(max(0.0, ahead))
    open_page(browser, service.url)
    _wait_offline_ready(browser)
    block = _wait_snapshot(browser)
    browser.find_element(By.ID, "offline-only").click()  # chosen offline: the service is not asked
    age = browser.find_element(By.ID, "max-age")
    assert age.get_attribute("value") == "7"  # the CLI's default
    browser.execute_script(
        "arguments[0].value = '0'; arguments[0].dispatchEvent(new Event('change'));", age
    )
    shown = verify_text(browser, encode_payload(world.documents[("sha256-128", "VALID")]))
    assert shown.get_attribute("data-source") == "snapshot"
    asof = shown.find_element(By.CSS_SELECTOR, "[data-asof-block]")
    assert asof.get_attribute("data-asof-block") == block
    assert asof.get_attribute("data-stale") == "true"
    assert "asof--stale" in str(asof.get_attribute("class"))
    assert "快照已超过 0 天" in asof.text
    browser.find_element(By.ID, "lang").click()
    shown = card(browser)
    asof = shown.find_element(By.CSS_SELECTOR, "[data-asof-block]")
    assert f"as of block {block}" in asof.text and "older than 0 days" in asof.text
    shoot(browser, screenshots, "offline-stale-card-en", shown)
    low = [row for row in contrast(browser, "[data-asof-block]") if row[0] < 4.5]
    assert not low, low  # WCAG 2.2 AA, as the rest of the card


def _altered(world: World, folder: Path, how: str) -> Path:
    """A snapshot file refused for the reason `how` names."""
    if how == "other-registry":
        return world.foreign
    path = folder / f"{how}.snapshot"
    if how == "format":
        path.write_bytes(b"not a gzip file")
        return path
    document = json.loads(gzip.decompress(world.snapshot.read_bytes()))
    if how == "signature":
        document["body"]["statuses"] = []  # hide the revocations
    elif how == "definition":
        # A definition changed, its stated hash left, signed again by both governor keys:
        # what an exporter that misread its index would sign.
        body = document["body"]
        entry = body["licenceTypes"][0]
        entry["definition"] = entry["definition"].replace("营业执照", "营业许可", 1)
        sm2 = load_seal_key(keystore_path(world.home, GOVERNOR_SEAL_KEYSTORE), PASSPHRASE)
        document["signatures"] = sign_body(body, body_digest(body), world.governor, sm2)
    else:  # "unsigned": the SM2 co-signature stripped
        document["signatures"]["sm2"] = None
    path.write_bytes(gzip.compress(json.dumps(document).encode("utf-8")))
    return path


@pytest.mark.slow
@pytest.mark.parametrize(
    ("how", "words"),
    [
        ("other-registry", "另一个登记合约"),
        ("signature", "签名无效"),
        ("unsigned", "缺少登记合约管理人的国密签名"),
        ("format", "不是可识别的信任快照"),
        ("definition", "类型定义与所记录的哈希不符"),
    ],
)
def test_snapshot_file_of_another_registry_or_altered_is_refused_with_its_reason(
    browser: WebDriver, world: World, service: Service, tmp_path: Path, how: str, words: str
) -> None:
    open_page(browser, service.url)
    _wait_offline_ready(browser)
    block = _wait_snapshot(browser)
    _upload(browser, "snapshot-file", _altered(world, tmp_path, how))
    problem = browser.find_element(By.ID, "snapshot-problem")
    wait(browser).until(lambda _: problem.is_displayed())
    assert problem.get_attribute("data-problem") == f"snapshot-refused-{how}"
    assert words in problem.text
    # The trusted snapshot stays in use.
    assert browser.find_element(By.ID, "snapshot-status").get_attribute("data-block") == block


@pytest.mark.slow
def test_worker_keeps_the_shell_only_and_an_update_drops_the_old_cache(
    browser: WebDriver, service: Service
) -> None:
    page = httpx.get(service.url + "/", timeout=30)
    policy = page.headers["content-security-policy"]
    assert "worker-src 'self'" in policy and "manifest-src 'self'" in policy
    assert (
        httpx.get(service.url + "/sw.js", timeout=30)
        .headers["content-type"]
        .startswith("text/javascript")
    )
    open_page(browser, service.url)
    _wait_offline_ready(browser)
    _wait_controlled(browser)
    # Chromium's own reading of the manifest: no errors, and nothing stops installing.
    manifest = browser.execute_cdp_cmd("Page.getAppManifest", {})
    assert manifest["url"].endswith("/manifest.webmanifest") and manifest["errors"] == []
    blockers = browser.execute_cdp_cmd("Page.getInstallabilityErrors", {})
    assert blockers["installabilityErrors"] == []
    verify_text(browser, "EL1:NOT-A-LICENCE")  # a call to v1/verifications
    assert _cache_names(browser) == [f"elicence-shell-{_version()}"]
    cached = _cached_urls(browser)
    assert f"{service.url}/index.html" in cached
    assert [u for u in cached if "/v1/" in u] == [], cached

    # What an old version left behind is deleted when a worker activates.
    browser.execute_async_script(
        """const done = arguments[arguments.length - 1];
        (async () => {
          await caches.open("elicence-shell-000000000000");
          for (const r of await navigator.serviceWorker.getRegistrations()) await r.unregister();
        })().then(done);"""
    )
    open_page(browser, service.url)
    _wait_controlled(browser)
    wait(browser).until(lambda d: _cache_names(d) == [f"elicence-shell-{_version()}"])


if __name__ == "__main__":
    # `python -m tests.web.test_offline_page`: set VERSION in sw.js after a shell file
    # changed (what test_worker_cache_name_changes_with_the_files_it_precaches asks for).
    stamped = shell_digest(_shell())
    SW.write_text(
        re.sub(r'const VERSION = "[0-9a-f]+";', f'const VERSION = "{stamped}";', SW.read_text()),
        "utf-8",
    )
    print(f"sw.js VERSION = {stamped}")
