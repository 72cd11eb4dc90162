"""The verify page in a real headless Chromium against the real service."""

from __future__ import annotations

import base64
import io
from pathlib import Path

import pytest
import segno
from PIL import Image, ImageFilter
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webdriver import WebDriver

from issuer.qr import qr_png_bytes
from licence.catalogue import catalogue
from licence.payload import encode_payload
from tests.web.conftest import PHONE, Site
from tests.web.pages import (
    card,
    contrast,
    field_rows,
    full_page,
    open_page,
    shoot,
    verify_text,
)

pytestmark = pytest.mark.slow

BUSINESS = catalogue().get("business-licence")
AA_TEXT = 4.5


def test_valid_payload_shows_a_green_card_with_the_fields(
    browser: WebDriver, site: Site, screenshots: Path
) -> None:
    document = site.document("VALID")
    open_page(browser, site.url)
    shown = verify_text(browser, encode_payload(document))
    assert shown.get_attribute("data-status") == "VALID"
    assert "card--ok" in str(shown.get_attribute("class"))
    assert shown.find_element(By.ID, "card-title").text.startswith("有效")
    rows = field_rows(shown)
    for spec in BUSINESS.fields:
        if spec.name in document.fields and spec.personal:
            # The page calls anonymously: personal fields are withheld by default.
            assert rows[spec.name] == ("withheld", spec.label.zh, "未向本终端提供")
        elif spec.name in document.fields:
            assert rows[spec.name] == ("disclosed", spec.label.zh, document.fields[spec.name])
    assert shown.find_element(By.CSS_SELECTOR, "[data-fact=issuer-name] dd").text
    assert shown.find_element(By.CSS_SELECTOR, "[data-fact=anchor-block] dd").text.isdigit()
    assert shown.find_element(By.CSS_SELECTOR, "[data-fact=anchor-root] dd").text == (
        "0x" + document.anchor.root.hex()
    )
    shoot(browser, screenshots, "verify-valid-card", shown)
    full_page(browser, screenshots, "verify-valid-desktop")


def test_tampered_licence_json_shows_a_red_tampered_card(
    browser: WebDriver, site: Site, screenshots: Path
) -> None:
    text = site.path("TAMPERED").read_text("utf-8")
    open_page(browser, site.url)
    shown = verify_text(browser, text)
    assert shown.get_attribute("data-status") == "TAMPERED"
    assert "card--bad" in str(shown.get_attribute("class"))
    assert shown.find_element(By.ID, "card-title").text.startswith("已被篡改")
    assert shown.find_element(By.CSS_SELECTOR, ".card__reason").text
    shoot(browser, screenshots, "verify-tampered-card", shown)


def test_tampered_payload_shows_a_red_tampered_card(browser: WebDriver, site: Site) -> None:
    tampered = site.document("TAMPERED")
    open_page(browser, site.url)
    # EL1: carries the root the changed field no longer leads to (EL2: carries none).
    shown = verify_text(browser, encode_payload(tampered, layout=1))
    assert shown.get_attribute("data-status") == "TAMPERED"
    assert "card--bad" in str(shown.get_attribute("class"))


def test_revoked_payload_shows_a_red_card_with_its_reason(
    browser: WebDriver, site: Site, screenshots: Path
) -> None:
    revoked = site.document("REVOKED")
    answer = site.verify({"qr": encode_payload(revoked)})
    open_page(browser, site.url)
    shown = verify_text(browser, encode_payload(revoked))
    assert shown.get_attribute("data-status") == "REVOKED"
    assert "card--bad" in str(shown.get_attribute("class"))
    assert shown.find_element(By.ID, "card-title").text.startswith("已吊销")
    assert answer["statusReason"]
    assert (
        shown.find_element(By.CSS_SELECTOR, "[data-fact=status-reason] dd").text
        == (answer["statusReason"])
    )
    failed = next(c for c in answer["checks"] if c["outcome"] == "failed")
    # The reason is worded in Chinese from its code, quoting the block it names.
    reason = shown.find_element(By.CSS_SELECTOR, ".card__reason").text
    assert failed["code"] == "status.revoked" and "吊销" in reason
    assert str(failed["params"]["block"]) in reason and failed["reason"] not in reason
    shoot(browser, screenshots, "verify-revoked-card", shown)


def _photo_of(payload: str) -> bytes:
    """A phone photo of a printed QR code, roughly: tilted, soft, on a grey desk, JPEG."""
    buffer = io.BytesIO()
    segno.make_qr(payload, error="m", boost_error=False).save(buffer, kind="png", scale=5, border=4)
    code = Image.open(io.BytesIO(buffer.getvalue())).convert("RGB")
    tilted = code.rotate(9, expand=True, fillcolor=(255, 255, 255), resample=Image.BICUBIC)
    desk = Image.new("RGB", (tilted.width + 500, tilted.height + 360), (128, 122, 112))
    desk.paste(tilted, (260, 170))
    softened = desk.filter(ImageFilter.GaussianBlur(1.2))
    out = io.BytesIO()
    softened.save(out, format="JPEG", quality=60)
    return out.getvalue()


def test_uploaded_qr_photo_gets_a_verdict(
    browser: WebDriver, site: Site, screenshots: Path, tmp_path: Path
) -> None:
    photo = tmp_path / "counter-photo.jpg"
    photo.write_bytes(_photo_of(encode_payload(site.document("VALID"))))
    open_page(browser, site.url)
    browser.find_element(By.ID, "upload").send_keys(str(photo))
    shown = card(browser)
    assert shown.get_attribute("data-status") == "VALID"
    shoot(browser, screenshots, "verify-uploaded-photo", shown)


def test_uploaded_licence_file_gets_a_verdict(browser: WebDriver, site: Site) -> None:
    open_page(browser, site.url)
    browser.find_element(By.ID, "upload").send_keys(str(site.path("REVOKED")))
    assert card(browser).get_attribute("data-status") == "REVOKED"


def test_camera_control_is_there_and_frames_are_decoded(browser: WebDriver, site: Site) -> None:
    # Headless Chromium has no camera: the control is checked, and the function that
    # reads each camera frame is fed a still picture of a QR code instead: the image
    # issuing prints (drawn by zint), read by the page's own decoder.
    payload = encode_payload(site.document("VALID"))
    open_page(browser, site.url)
    start = browser.find_element(By.ID, "camera-start")
    assert start.is_displayed() and start.text == "打开摄像头扫码"
    decoded = browser.execute_async_script(
        """
        const [png, done] = arguments;
        // Built in memory: the service's CSP (connect-src 'self') refuses fetching data: URLs.
        const bytes = Uint8Array.from(atob(png), (c) => c.charCodeAt(0));
        const blob = new Blob([bytes], { type: "image/png" });
        const scan = await import("./js/scan.js");
        done(scan.decodeImageData(await scan.imageDataOfBlob(blob)));
        """,
        base64.b64encode(qr_png_bytes(payload)).decode("ascii"),
    )
    assert decoded == payload


def test_could_not_check_is_not_shown_as_invalid(
    browser: WebDriver, site: Site, screenshots: Path
) -> None:
    # The service answers 503 problem+json when its chain cannot be read; the embedded
    # chain cannot be unplugged from here, so the page's fetch gets that answer instead.
    open_page(browser, site.url)
    browser.execute_script(
        """
        window.fetch = async () => new Response(
          JSON.stringify({type: "about:blank", title: "could not check", status: 503,
                          detail: "the chain could not be read"}),
          {status: 503, headers: {"content-type": "application/problem+json"}});
        """
    )
    shown = verify_text(browser, encode_payload(site.document("VALID")))
    assert shown.get_attribute("data-kind") == "unchecked"
    assert shown.get_attribute("data-status") is None
    assert "card--unknown" in str(shown.get_attribute("class"))
    assert shown.find_element(By.ID, "card-title").text == "无法核验"
    # The service's words are there for support staff, folded away until asked for.
    assert "the chain could not be read" not in shown.text
    shown.find_element(By.CSS_SELECTOR, "details.card__detail summary").click()
    assert "the chain could not be read" in shown.find_element(By.CSS_SELECTOR, "details").text
    shoot(browser, screenshots, "verify-could-not-check", shown)


def test_unreadable_input_says_so_without_a_verdict(browser: WebDriver, site: Site) -> None:
    open_page(browser, site.url)
    shown = verify_text(browser, "EL1:NOT A PAYLOAD")
    assert shown.get_attribute("data-kind") == "unreadable"
    assert shown.get_attribute("data-status") is None


def test_language_switch_turns_page_and_card_to_english_and_back(
    browser: WebDriver, site: Site, screenshots: Path
) -> None:
    open_page(browser, site.url)
    html = browser.find_element(By.TAG_NAME, "html")
    assert html.get_attribute("lang") == "zh-CN"
    shown = verify_text(browser, encode_payload(site.document("VALID")))
    switch = browser.find_element(By.ID, "lang")
    assert switch.text == "English"
    switch.click()
    assert html.get_attribute("lang") == "en"
    assert browser.find_element(By.TAG_NAME, "h1").text == "Verify an electronic licence"
    shown = card(browser)
    assert shown.find_element(By.ID, "card-title").text.startswith("Valid")
    labels = {name: row[1] for name, row in field_rows(shown).items()}
    assert labels["holderName"] == BUSINESS.field("holderName").label.en  # type: ignore[union-attr]
    shoot(browser, screenshots, "verify-valid-card-en", shown)
    browser.find_element(By.ID, "lang").click()
    assert html.get_attribute("lang") == "zh-CN"
    assert card(browser).find_element(By.ID, "card-title").text.startswith("有效")


def test_language_choice_is_kept_for_the_next_visit(browser: WebDriver, site: Site) -> None:
    open_page(browser, site.url)
    browser.find_element(By.ID, "lang").click()
    open_page(browser, site.url + "/present.html")
    assert browser.find_element(By.TAG_NAME, "html").get_attribute("lang") == "en"


def test_keyboard_alone_reaches_paste_and_verifies(browser: WebDriver, site: Site) -> None:
    payload = encode_payload(site.document("VALID"))
    open_page(browser, site.url)
    body = browser.find_element(By.TAG_NAME, "body")
    body.send_keys(Keys.TAB)  # the skip link comes first
    assert browser.switch_to.active_element.get_attribute("class") == "skip"
    order = []
    for _ in range(6):
        active = browser.switch_to.active_element
        order.append(active.get_attribute("id") or active.text)
        if active.get_attribute("id") == "paste":
            break
        active.send_keys(Keys.TAB)
    assert order[-1] == "paste", order
    box = browser.switch_to.active_element
    browser.execute_script("arguments[0].value = arguments[1];", box, payload)
    box.send_keys(Keys.TAB)
    button = browser.switch_to.active_element
    assert button.text == "核验"
    # Focus is visible: a real outline, not the browser default removed.
    outline = browser.execute_script(
        "const s = getComputedStyle(arguments[0]); return [s.outlineStyle, s.outlineWidth];",
        button,
    )
    assert outline[0] != "none" and outline[1] != "0px", outline
    button.send_keys(Keys.ENTER)
    assert card(browser).get_attribute("data-status") == "VALID"


@pytest.mark.parametrize("status", ["VALID", "TAMPERED", "REVOKED"])
def test_card_text_meets_wcag_aa_contrast(browser: WebDriver, site: Site, status: str) -> None:
    open_page(browser, site.url)
    verify_text(browser, site.path(status).read_text("utf-8"))
    low = [row for row in contrast(browser, "main") if row[0] < AA_TEXT]
    assert not low, low


def test_card_fits_a_phone_screen(browser: WebDriver, site: Site, screenshots: Path) -> None:
    browser.set_window_size(*PHONE)
    open_page(browser, site.url)
    full_page(browser, screenshots, "verify-phone-empty")
    shown = verify_text(browser, encode_payload(site.document("REVOKED")))
    overflow = browser.execute_script(
        "return document.documentElement.scrollWidth - document.documentElement.clientWidth;"
    )
    assert overflow <= 0, f"the page scrolls sideways by {overflow} px on a phone"
    shoot(browser, screenshots, "verify-phone-revoked-card", shown)
    full_page(browser, screenshots, "verify-phone-revoked")


def test_print_view_shows_the_card_alone(browser: WebDriver, site: Site, screenshots: Path) -> None:
    open_page(browser, site.url)
    verify_text(browser, encode_payload(site.document("VALID")))
    browser.execute_cdp_cmd("Emulation.setEmulatedMedia", {"media": "print"})
    hidden = browser.execute_script(
        "return ['.bar', '.ways', 'h1', '.print-button'].map("
        "s => getComputedStyle(document.querySelector(s)).display);"
    )
    assert hidden == ["none"] * 4
    assert card(browser).is_displayed()
    full_page(browser, screenshots, "verify-print-view")
    browser.execute_cdp_cmd("Emulation.setEmulatedMedia", {"media": ""})
