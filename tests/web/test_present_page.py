"""The present page in a real headless Chromium: the QR it makes verifies VALID.

The page builds the presentation and its EL2: payload itself (WebCrypto, its own CBOR
and Base45, pako's raw deflate with the preset dictionary): these tests hand that
payload to the strict Python decoder (licence.payload.decode_payload, with the service's
chain and registry), to the service, and to the verify page.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement

from issuer.qr import qr_version
from licence.catalogue import catalogue
from licence.document import LicenceDocument, loads_document
from licence.payload import decode_payload
from licence.presentation import present
from tests.web.conftest import PHONE, Site, wait
from tests.web.pages import canvas_png, field_rows, full_page, open_page, shoot, verify_text
from verifier.images import decode_image

pytestmark = pytest.mark.slow

BUSINESS = catalogue().get("business-licence")


def _open_licence(driver: WebDriver, site: Site, path: Path) -> None:
    open_page(driver, site.url + "/present.html")
    driver.find_element(By.ID, "licence-file").send_keys(str(path))
    wait(driver).until(lambda d: d.find_element(By.ID, "payload").get_attribute("value"))


def _read(payload: str, site: Site) -> LicenceDocument:
    """The page's EL2: payload as the service reads it: with its own chain and registry."""
    anchor = site.document("VALID").anchor
    return decode_payload(payload, chain_id=anchor.chain_id, registry=anchor.registry)


def _payload(driver: WebDriver) -> str:
    return str(driver.find_element(By.ID, "payload").get_attribute("value"))


def _choice(driver: WebDriver, name: str) -> WebElement:
    return driver.find_element(By.ID, f"field-{name}")


def _toggle_and_wait(driver: WebDriver, name: str) -> str:
    """Click a field's box and return the payload of the QR code drawn after it."""
    before = _payload(driver)
    driver.find_element(By.CSS_SELECTOR, f"label[for='field-{name}']").click()
    wait(driver).until(lambda d: _payload(d) != before)
    return _payload(driver)


def test_page_shows_the_fields_with_mandatory_ones_fixed(
    browser: WebDriver, site: Site, screenshots: Path
) -> None:
    document = site.document("VALID")
    _open_licence(browser, site, site.path("VALID"))
    for spec in BUSINESS.fields:
        if spec.name not in document.fields:
            continue
        box = _choice(browser, spec.name)
        if spec.name in BUSINESS.mandatory_disclosure:
            assert box.is_selected() and not box.is_enabled(), spec.name
        else:
            assert box.is_enabled(), spec.name
    # Personal data starts hidden; other fields start disclosed.
    assert not _choice(browser, "legalRepresentative").is_selected()
    assert _choice(browser, "businessScope").is_selected()
    full_page(browser, screenshots, "present-desktop")


def test_initial_qr_decodes_in_python_and_verifies_valid(browser: WebDriver, site: Site) -> None:
    document = site.document("VALID")
    _open_licence(browser, site, site.path("VALID"))
    payload = _payload(browser)
    shown = _read(payload, site)  # the strict reader: canonical CBOR, no slack
    assert shown == present(document, [n for n in document.fields if n != "legalRepresentative"])
    assert site.verify({"qr": payload})["status"] == "VALID"


def test_hiding_a_field_gives_a_qr_that_verifies_valid_with_the_field_hidden(
    browser: WebDriver, site: Site, screenshots: Path
) -> None:
    document = site.document("VALID")
    _open_licence(browser, site, site.path("VALID"))
    payload = _toggle_and_wait(browser, "registeredCapital")
    assert not _choice(browser, "registeredCapital").is_selected()
    hidden = _read(payload, site)
    assert "registeredCapital" in hidden.hidden and "registeredCapital" not in hidden.fields
    assert hidden.licence_id == document.licence_id
    # The QR code the page drew carries exactly that payload, and a reader can read it.
    drawn = canvas_png(browser, "#qr-canvas")
    assert decode_image(drawn) == payload
    modules = int(str(browser.find_element(By.ID, "qr-canvas").get_attribute("data-modules")))
    assert modules == 4 * qr_version(payload) + 17
    shoot(browser, screenshots, "present-qr", browser.find_element(By.ID, "qr-out"))

    answer = site.verify({"qr": payload})
    assert answer["status"] == "VALID"
    assert "registeredCapital" in answer["hidden"]

    open_page(browser, site.url)
    shown = verify_text(browser, payload)
    assert shown.get_attribute("data-status") == "VALID"
    rows = field_rows(shown)
    assert rows["registeredCapital"][0] == "hidden"
    assert rows["registeredCapital"][2] == "持证人未公开"
    assert document.fields["registeredCapital"] not in shown.text
    shoot(browser, screenshots, "verify-presented-card", shown)


def test_disclosing_personal_data_and_minimum_both_verify(browser: WebDriver, site: Site) -> None:
    _open_licence(browser, site, site.path("VALID"))
    with_person = _toggle_and_wait(browser, "legalRepresentative")
    assert "legalRepresentative" in _read(with_person, site).fields
    assert site.verify({"qr": with_person})["status"] == "VALID"
    before = _payload(browser)
    browser.find_element(By.ID, "disclose-minimum").click()
    wait(browser).until(lambda d: _payload(d) != before)
    minimal = _read(_payload(browser), site)
    assert set(minimal.fields) == BUSINESS.mandatory_disclosure & set(minimal.commitments)
    assert site.verify({"qr": _payload(browser)})["status"] == "VALID"


def test_saved_presentation_can_be_presented_again_hiding_more(
    browser: WebDriver, site: Site, tmp_path: Path
) -> None:
    document = site.document("VALID")
    first = present(document, ["businessScope", "registeredAddress"])
    saved = tmp_path / "presentation.json"
    saved.write_text(json.dumps(first.to_json(), ensure_ascii=False), "utf-8")
    _open_licence(browser, site, saved)
    # A field the presentation already hides cannot be ticked.
    capital = _choice(browser, "registeredCapital")
    assert not capital.is_selected() and not capital.is_enabled()
    payload = _toggle_and_wait(browser, "businessScope")
    again = _read(payload, site)
    assert again == present(first, ["registeredAddress"])
    assert site.verify({"qr": payload})["status"] == "VALID"


def test_presentation_file_the_page_saves_is_the_one_in_the_qr(
    browser: WebDriver, site: Site
) -> None:
    # The test reads the download's blob: URL with fetch, which the page itself never
    # does and the service's CSP (connect-src 'self') refuses.
    browser.execute_cdp_cmd("Page.setBypassCSP", {"enabled": True})
    _open_licence(browser, site, site.path("VALID"))
    saved = browser.execute_async_script(
        "const done = arguments[0];"
        "fetch(document.getElementById('save-json').href).then(r => r.text()).then(done);"
    )
    from_file: LicenceDocument = loads_document(str(saved).encode("utf-8"))
    assert from_file == _read(_payload(browser), site)


def test_licence_never_leaves_the_device(browser: WebDriver, site: Site) -> None:
    _open_licence(browser, site, site.path("VALID"))
    _toggle_and_wait(browser, "registeredCapital")
    sent = browser.execute_script(
        "return performance.getEntriesByType('resource').map(e => [e.name, e.initiatorType]);"
    )
    requests = [name for name, kind in sent if kind in ("fetch", "xmlhttprequest", "beacon")]
    assert requests == [site.url + "/v1/catalogue"], requests


def test_not_a_licence_file_is_refused_with_a_message(
    browser: WebDriver, site: Site, tmp_path: Path
) -> None:
    wrong = tmp_path / "not-a-licence.json"
    wrong.write_text('{"format": "something-else"}', "utf-8")
    open_page(browser, site.url + "/present.html")
    browser.find_element(By.ID, "licence-file").send_keys(str(wrong))
    error = wait(browser).until(lambda d: d.find_element(By.ID, "open-error").text)
    assert "elicence/1" in error
    assert not browser.find_element(By.ID, "qr-out").is_displayed()


def test_present_page_in_english_on_a_phone(
    browser: WebDriver, site: Site, screenshots: Path
) -> None:
    browser.set_window_size(*PHONE)
    _open_licence(browser, site, site.path("VALID"))
    browser.find_element(By.ID, "lang").click()
    assert browser.find_element(By.TAG_NAME, "html").get_attribute("lang") == "en"
    label = browser.find_element(By.CSS_SELECTOR, "label[for='field-holderName'] .choice__name")
    assert label.text.startswith(BUSINESS.field("holderName").label.en)  # type: ignore[union-attr]
    overflow = browser.execute_script(
        "return document.documentElement.scrollWidth - document.documentElement.clientWidth;"
    )
    assert overflow <= 0, f"the page scrolls sideways by {overflow} px on a phone"
    full_page(browser, screenshots, "present-phone-en")
