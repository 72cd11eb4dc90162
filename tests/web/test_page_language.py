"""The verify page speaks its own language: reasons, problems and errors in Chinese on the
Chinese page (the service's English words only folded away for support staff), in
English on the English page. A real headless Chromium against the real service."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import base45
import httpx
import pytest
from PIL import Image
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement

from licence.payload import base45_decode, encode_payload
from tests.web.conftest import WAIT_S, Site
from tests.web.pages import card, open_page, shoot, verify_text

pytestmark = pytest.mark.slow

# Hex (roots, addresses, licence ids) and credit codes are the same in every language.
_LANGUAGE_FREE = re.compile(r"0x[0-9a-fA-F]+|\b[0-9A-Z]{18}\b")
_ENGLISH_WORD = re.compile(r"[A-Za-z]{3,}")


def english_words(text: str) -> list[str]:
    """The English words in `text`, leaving out hex and codes."""
    return _ENGLISH_WORD.findall(_LANGUAGE_FREE.sub(" ", text))


def visible_text(shown: WebElement) -> str:
    """The card's text as a clerk sees it, without the status code shown beside the
    Chinese status on purpose (VALID, TAMPERED: what an integrator quotes)."""
    code = shown.find_elements(By.CSS_SELECTOR, ".card__code")
    text = shown.text
    return text.replace(code[0].text, "") if code else text


def corrupt_payload(payload: str) -> str:
    """`payload` with its deflate stream broken: the first block's type is the reserved
    one, so inflating fails as a badly printed or retyped code does (zlib error -3)."""
    prefix, body = payload[:4], payload[4:]  # EL1: or EL2:
    compressed = bytearray(base45_decode(body))
    compressed[2] = 0xFF
    return prefix + base45.b45encode(bytes(compressed)).decode("ascii")


@pytest.mark.parametrize("status", ["VALID", "TAMPERED", "REVOKED"])
def test_chinese_page_shows_no_english_reason_text(
    browser: WebDriver, site: Site, screenshots: Path, status: str
) -> None:
    # EL1: carries the root, so a changed field reads TAMPERED (an EL2: payload, which
    # carries none, folds to a root never anchored: NOT_ANCHORED).
    payload = encode_payload(site.document(status), layout=1)
    answer = site.verify({"qr": payload})
    open_page(browser, site.url)
    shown = verify_text(browser, payload)
    assert shown.get_attribute("data-status") == status
    reasons = [r.text for r in shown.find_elements(By.CSS_SELECTOR, ".check__reason")]
    reasons += [r.text for r in shown.find_elements(By.CSS_SELECTOR, ".card__reason")]
    assert len(reasons) >= len(answer["checks"])
    for check, reason in zip(answer["checks"], reasons, strict=False):
        assert reason and reason != check["reason"], check["code"]
    for reason in reasons:
        assert english_words(reason) == [], reason
    assert english_words(visible_text(shown)) == [], visible_text(shown)
    shoot(browser, screenshots, f"verify-zh-reasons-{status.lower()}", shown)


def test_tampered_reason_in_chinese_names_the_roots_it_compared(
    browser: WebDriver, site: Site
) -> None:
    text = site.path("TAMPERED").read_text("utf-8")
    answer = site.verify({"document": json.loads(text)})
    integrity = answer["checks"][0]
    assert (integrity["outcome"], integrity["code"]) == ("failed", "integrity.mismatch")
    open_page(browser, site.url)
    shown = verify_text(browser, text)
    reason = shown.find_element(By.CSS_SELECTOR, ".card__reason").text
    assert integrity["params"]["root"] in reason and integrity["params"]["computed"] in reason
    assert "已被改动" in reason


def test_english_page_words_the_reasons_in_english(browser: WebDriver, site: Site) -> None:
    answer = site.verify({"qr": encode_payload(site.document("REVOKED"))})
    open_page(browser, site.url + "/?lang=en")
    shown = verify_text(browser, encode_payload(site.document("REVOKED")))
    failed = next(c for c in answer["checks"] if c["outcome"] == "failed")
    assert shown.find_element(By.CSS_SELECTOR, ".card__reason").text.endswith(failed["reason"])
    status_reason = shown.find_element(By.CSS_SELECTOR, "[data-fact=status-reason] dd").text
    assert status_reason == "administrative penalty"  # the API's statusReason is Chinese
    integrity = shown.find_element(By.CSS_SELECTOR, "[data-check=integrity] .check__reason")
    assert integrity.text == answer["checks"][0]["reason"]


def test_corrupt_qr_payload_gets_a_plain_chinese_sentence_and_folded_detail(
    browser: WebDriver, site: Site, screenshots: Path
) -> None:
    # An EL1: payload (still read) whose zlib stream is broken.
    corrupt = corrupt_payload(encode_payload(site.document("VALID"), layout=1))
    problem = httpx.post(f"{site.url}/v1/verifications", json={"qr": corrupt}, timeout=WAIT_S)
    assert (problem.status_code, problem.json()["reason"]) == (422, "zlib")
    open_page(browser, site.url)
    shown = verify_text(browser, corrupt)
    assert shown.get_attribute("data-kind") == "unreadable"
    assert shown.get_attribute("data-status") is None
    assert shown.find_element(By.ID, "card-title").text == "无法读取"
    sentence = shown.find_element(By.CSS_SELECTOR, ".card__meaning").text
    assert "重新扫描" in sentence and "重新生成二维码" in sentence
    assert english_words(shown.text) == [], shown.text
    # The internals are there, folded, for whoever supports the counter.
    detail = shown.find_element(By.CSS_SELECTOR, "details.card__detail")
    assert detail.get_attribute("open") is None
    assert "zlib" not in shown.text
    detail.find_element(By.TAG_NAME, "summary").click()
    assert "zlib" in detail.text and "corrupt compressed data" in detail.text
    shoot(browser, screenshots, "verify-corrupt-qr-zh", shown)
    browser.find_element(By.ID, "lang").click()
    sentence = card(browser).find_element(By.CSS_SELECTOR, ".card__meaning").text
    assert sentence.startswith("This QR code cannot be read. Scan it again")
    assert "new QR code" in sentence


def test_picture_without_a_qr_code_says_what_to_do_in_chinese(
    browser: WebDriver, site: Site, tmp_path: Path
) -> None:
    picture = tmp_path / "blank.png"
    buffer = io.BytesIO()
    Image.new("L", (400, 300), 255).save(buffer, format="PNG")
    picture.write_bytes(buffer.getvalue())
    open_page(browser, site.url)
    browser.find_element(By.ID, "upload").send_keys(str(picture))
    shown = card(browser)
    assert shown.get_attribute("data-kind") == "unreadable"
    sentence = shown.find_element(By.CSS_SELECTOR, ".card__meaning").text
    assert "图片中没有找到可以读取的二维码" in sentence
    assert english_words(shown.text) == [], shown.text


def test_refused_for_too_many_requests_says_when_to_retry(browser: WebDriver, site: Site) -> None:
    open_page(browser, site.url)
    browser.execute_script(
        """
        window.fetch = async () => new Response(
          JSON.stringify({type: "https://elicence.example/problems/rate-limited",
                          title: "Too many requests", status: 429, detail: "over the rate"}),
          {status: 429, headers: {"content-type": "application/problem+json",
                                  "retry-after": "7"}});
        """
    )
    shown = verify_text(browser, encode_payload(site.document("VALID")))
    assert shown.get_attribute("data-kind") == "unchecked"
    assert "7 秒后重试" in shown.find_element(By.CSS_SELECTOR, ".card__meaning").text
    assert english_words(shown.text) == [], shown.text
