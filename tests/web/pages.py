"""What the browser tests do on the pages, in the page's own terms."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any, cast

from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement

from tests.web.conftest import wait

CARD = "#card-slot article[data-kind]"

# The WCAG 2.2 contrast ratio of every element under `root` that has text of its own,
# against the first opaque background behind it. Returns [ratio, tag, text] rows.
_CONTRAST_JS = """
const root = document.querySelector(arguments[0]);
const channel = (v) => {
  v /= 255;
  return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4;
};
const luminance = (css) => {
  const [r, g, b] = css.match(/[\\d.]+/g).map(Number);
  return 0.2126 * channel(r) + 0.7152 * channel(g) + 0.0722 * channel(b);
};
const background = (node) => {
  for (; node; node = node.parentElement) {
    const colour = getComputedStyle(node).backgroundColor;
    const parts = colour.match(/[\\d.]+/g).map(Number);
    if (parts.length === 3 || parts[3] === 1) return colour;
  }
  return "rgb(255, 255, 255)";
};
const rows = [];
for (const node of [root, ...root.querySelectorAll("*")]) {
  const own = [...node.childNodes].some((c) => c.nodeType === 3 && c.textContent.trim());
  if (!own || !node.getClientRects().length) continue;
  const a = luminance(getComputedStyle(node).color);
  const b = luminance(background(node));
  const ratio = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
  rows.push([ratio, node.tagName, node.textContent.trim().slice(0, 40)]);
}
return rows;
"""


def open_page(driver: WebDriver, url: str) -> None:
    """Load a page and wait until its script has wired everything up."""
    driver.get(url)
    wait(driver).until(lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-ready"))


def verify_text(driver: WebDriver, text: str) -> WebElement:
    """Paste `text` into the verify page's box, press 核验 and return the new card."""
    box = driver.find_element(By.ID, "paste")
    # Set as a paste would (a scanner gun or Ctrl+V puts the whole text at once).
    driver.execute_script("arguments[0].value = arguments[1];", box, text)
    return submit_and_wait(driver)


def submit_and_wait(driver: WebDriver) -> WebElement:
    """Submit the paste form and wait for the card that answers it."""
    driver.execute_script("document.getElementById('card-slot').replaceChildren();")
    driver.find_element(By.CSS_SELECTOR, "#paste-form button[type=submit]").click()
    return card(driver)


def card(driver: WebDriver) -> WebElement:
    """The verdict card once it is shown."""
    return cast(WebElement, wait(driver).until(lambda d: d.find_element(By.CSS_SELECTOR, CARD)))


def field_rows(card_element: WebElement) -> dict[str, tuple[str, str, str]]:
    """Each field row of a card: name -> (state, label, shown value)."""
    rows = {}
    for row in card_element.find_elements(By.CSS_SELECTOR, "tr[data-field]"):
        rows[str(row.get_attribute("data-field"))] = (
            str(row.get_attribute("data-state")),
            row.find_element(By.TAG_NAME, "th").text,
            row.find_element(By.TAG_NAME, "td").text,
        )
    return rows


def contrast(driver: WebDriver, selector: str) -> list[tuple[float, str, str]]:
    """The contrast ratio of each text-bearing element under `selector`."""
    rows = driver.execute_script(_CONTRAST_JS, selector)
    return [(float(r[0]), str(r[1]), str(r[2])) for r in rows]


def shoot(driver: WebDriver, folder: Path, name: str, element: WebElement | None = None) -> Path:
    """Save a screenshot of the viewport (or of one element) as NAME.png in `folder`."""
    path = folder / f"{name}.png"
    if element is None:
        driver.save_screenshot(str(path))
    else:
        element.screenshot(str(path))
    return path


def full_page(driver: WebDriver, folder: Path, name: str) -> Path:
    """A screenshot of the whole page height at the current width (window resized)."""
    height = int(driver.execute_script("return document.documentElement.scrollHeight"))
    size = driver.get_window_size()
    driver.set_window_size(size["width"], height + (size["height"] - _inner_height(driver)))
    try:
        return shoot(driver, folder, name)
    finally:
        driver.set_window_size(size["width"], size["height"])


def _inner_height(driver: WebDriver) -> int:
    return int(driver.execute_script("return window.innerHeight"))


def canvas_png(driver: WebDriver, selector: str) -> bytes:
    """The PNG bytes of a canvas as the page drew it."""
    url: Any = driver.execute_script(
        "return document.querySelector(arguments[0]).toDataURL('image/png');", selector
    )
    return base64.b64decode(str(url).split(",", 1)[1])
