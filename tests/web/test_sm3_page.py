"""The sm3-128 suite on the web pages: the vendored SM3 (npm sm-crypto), the verify page
and the present page with a licence issued with SM3, and a suite the service does not
know, which no page shows as a verdict.

The service here is one of this module's own (`elicence serve` without --demo, on its own
node) whose registry has an sm3-128 batch: the demo's keys are kept nowhere.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver

from issuer.batch import WrappedBatch, wrap_batch
from ledger import Registry, connect
from ledger.config import HomeConfig
from licence.catalogue import catalogue
from licence.payload import decode_payload, encode_payload
from licence.presentation import present
from tests.conftest import (
    AGENCY_CODE,
    AGENCY_NAME,
    ELICENCE,
    NodeProcess,
    free_port,
    key_for,
    publish_types,
)
from tests.samples import business_licence
from tests.web.conftest import STATIC, _stop_group, _wait_healthy, wait
from tests.web.pages import open_page, verify_text

REPO = STATIC.parents[2]
SM3_JS = STATIC / "vendor" / "sm-crypto" / "sm3.js"
BUSINESS = catalogue().get("business-licence")


def test_vendored_sm3_is_the_pinned_packages_file_listed_with_its_licence() -> None:
    pinned = json.loads((REPO / "package.json").read_text("utf-8"))["devDependencies"]
    assert pinned["sm-crypto"] == "0.5.8"
    listing = (STATIC / "vendor" / "VENDORED.md").read_text("utf-8")
    assert "npm `sm-crypto`" in listing and "| 0.5.8 |" in listing
    installed = REPO / "node_modules" / "sm-crypto"
    if not installed.exists():
        pytest.skip("node_modules/sm-crypto is not installed (npm ci)")
    assert json.loads((installed / "package.json").read_text("utf-8"))["version"] == "0.5.8"
    assert SM3_JS.read_bytes() == (installed / "dist" / "sm3.js").read_bytes()
    license_file = STATIC / "vendor" / "sm-crypto" / "LICENSE"
    assert license_file.read_bytes() == (installed / "LICENCE_MIT").read_bytes()


# sm-crypto's SM3 is an independent implementation (JavaScript, not OpenSSL): on every
# message length across three 64-byte blocks and key lengths on both sides of a block.
_CROSS_CHECK = r"""
import { readFileSync } from "node:fs";
import vm from "node:vm";
vm.runInThisContext(readFileSync(process.argv[2], "utf8"));
const bytes = (n) => Uint8Array.from({ length: n }, (_, i) => (i * 7 + 3) & 0xff);
const hashes = [];
const macs = [];
for (let n = 0; n < 200; n += 1) hashes.push(globalThis.sm3(bytes(n)));
for (const k of [1, 16, 63, 64, 65, 129]) macs.push(globalThis.sm3(bytes(40), { key: bytes(k) }));
console.log(JSON.stringify({ hashes, macs }));
"""


def _bytes(n: int) -> bytes:
    return bytes((i * 7 + 3) & 0xFF for i in range(n))


def test_vendored_sm3_agrees_with_openssl_on_every_length_and_key(tmp_path: Path) -> None:
    node = shutil.which("node")
    if node is None:
        pytest.fail("Node.js is needed to run the web page's SM3 (scripts/_setup.sh)")
    runner = tmp_path / "sm3.mjs"
    runner.write_text(_CROSS_CHECK, encoding="utf-8")
    ran = subprocess.run(
        [node, str(runner), str(SM3_JS)], capture_output=True, text=True, timeout=60, check=False
    )
    assert ran.returncode == 0, ran.stderr
    page = json.loads(ran.stdout)
    assert page["hashes"] == [hashlib.new("sm3", _bytes(n)).hexdigest() for n in range(200)]
    assert page["macs"] == [
        hmac.digest(_bytes(k), _bytes(40), "sm3").hex() for k in (1, 16, 63, 64, 65, 129)
    ]


@dataclass
class Sm3Site:
    """A verify service whose registry holds one sm3-128 batch."""

    url: str
    batch: WrappedBatch
    folder: Path

    def licence_file(self, index: int = 1) -> Path:
        path = self.folder / f"sm3-{index}.json"
        path.write_bytes(self.batch.documents[index].to_bytes())
        return path


@pytest.fixture(scope="module")
def sm3_site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sm3Site]:
    root = tmp_path_factory.mktemp("sm3-web")
    home = root / "home"
    node = NodeProcess(root / "chain-home").start()
    process = None
    try:
        chain = connect(node.url)
        governor, agency = key_for("sm3-page-governor"), key_for("sm3-page-agency")
        registry = Registry.deploy(chain, governor)
        publish_types(registry, governor, [1])
        registry.register_agency(governor, AGENCY_CODE, AGENCY_NAME, agency.address, [1])
        batch = wrap_batch(
            BUSINESS,
            [business_licence(i) for i in range(3)],
            chain_id=chain.chain_id,
            registry=registry.address,
            suite="sm3-128",
        )
        registry.anchor(agency, batch.root, BUSINESS.code, len(batch.documents))
        HomeConfig(node.url, chain.chain_id, registry.address).save(home)
        port = free_port()
        log = root / "serve.log"
        with log.open("wb") as sink:
            process = subprocess.Popen(
                [
                    *(str(ELICENCE), "serve", "--log-level", "warning"),
                    *("--home", str(home), "--port", str(port), "--chain", node.url),
                ],
                stdout=sink,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        url = f"http://127.0.0.1:{port}"
        _wait_healthy(url, process, log)
        yield Sm3Site(url, batch, root)
    finally:
        if process is not None:
            _stop_group(process)
        node.stop()


def _status(card) -> str | None:  # type: ignore[no-untyped-def]
    return card.get_attribute("data-status")


@pytest.mark.slow
def test_verify_page_shows_an_sm3_licence_valid_and_a_changed_one_tampered(
    browser: WebDriver, sm3_site: Sm3Site
) -> None:
    open_page(browser, sm3_site.url)
    document = sm3_site.batch.documents[1]
    assert _status(verify_text(browser, encode_payload(present(document, [])))) == "VALID"
    assert _status(verify_text(browser, document.to_bytes().decode())) == "VALID"
    raw = document.to_json()
    raw["fields"]["registeredCapital"] = "1亿元人民币"
    assert _status(verify_text(browser, json.dumps(raw, ensure_ascii=False))) == "TAMPERED"


@pytest.mark.slow
def test_verify_page_says_a_suite_it_lacks_cannot_be_checked_and_gives_no_verdict(
    browser: WebDriver, sm3_site: Sm3Site
) -> None:
    open_page(browser, sm3_site.url)
    raw = {**sm3_site.batch.documents[1].to_json(), "hashSuite": "sha3-256-128"}
    shown = verify_text(browser, json.dumps(raw, ensure_ascii=False))
    assert shown.get_attribute("data-kind") == "unchecked"
    assert _status(shown) is None
    assert "不支持" in shown.text and "伪造" in shown.text
    shown.find_element(By.CSS_SELECTOR, "details.card__detail summary").click()
    assert "unsupported-hash-suite" in shown.find_element(By.CSS_SELECTOR, "details").text


@pytest.mark.slow
def test_present_page_hides_fields_of_an_sm3_licence_and_the_qr_verifies_valid(
    browser: WebDriver, sm3_site: Sm3Site
) -> None:
    open_page(browser, sm3_site.url + "/present.html")
    browser.find_element(By.ID, "licence-file").send_keys(str(sm3_site.licence_file(2)))
    payload = wait(browser).until(lambda d: d.find_element(By.ID, "payload").get_attribute("value"))
    # An EL2: payload is read with the verifier's own chain and registry.
    anchor = sm3_site.batch.documents[2].anchor
    deployment = {"chain_id": anchor.chain_id, "registry": anchor.registry}
    shown = decode_payload(str(payload), **deployment)
    assert shown.suite == "sm3-128" and "legalRepresentative" in shown.hidden
    assert shown.computed_root() == sm3_site.batch.root
    # Hiding one more field computes its SM3 commitment in the browser.
    browser.find_element(By.CSS_SELECTOR, "label[for='field-registeredCapital']").click()
    wait(browser).until(
        lambda d: d.find_element(By.ID, "payload").get_attribute("value") != payload
    )
    less = str(browser.find_element(By.ID, "payload").get_attribute("value"))
    hidden = decode_payload(less, **deployment)
    assert "registeredCapital" in hidden.hidden
    assert (
        hidden.hidden["registeredCapital"]
        == sm3_site.batch.documents[2].commitments["registeredCapital"]
    )
    open_page(browser, sm3_site.url)
    assert _status(verify_text(browser, str(payload))) == "VALID"
    assert _status(verify_text(browser, less)) == "VALID"


@pytest.mark.slow
def test_present_page_refuses_a_suite_it_lacks_with_a_message(
    browser: WebDriver, sm3_site: Sm3Site, tmp_path: Path
) -> None:
    raw = {**sm3_site.batch.documents[1].to_json(), "hashSuite": "toString"}
    path = tmp_path / "unknown-suite.json"
    path.write_text(json.dumps(raw, ensure_ascii=False), "utf-8")
    open_page(browser, sm3_site.url + "/present.html")
    browser.find_element(By.ID, "licence-file").send_keys(str(path))
    error = wait(browser).until(lambda d: d.find_element(By.ID, "open-error").text)
    assert "不支持的哈希算法" in error
    assert not browser.find_element(By.ID, "qr-out").is_displayed()
