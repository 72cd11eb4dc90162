"""The API docs page renders its operations from the service alone, and no page breaks
the service's Content-Security-Policy."""

from __future__ import annotations

from urllib.parse import urlparse

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver

from tests.web.conftest import Site, wait

# Runs before any script of the page: collects what the browser blocked under the CSP.
_WATCH_CSP = """
window.__blocked = [];
document.addEventListener("securitypolicyviolation", (event) => {
  window.__blocked.push(event.violatedDirective + " " + event.blockedURI);
});
"""


def _watch(browser: WebDriver) -> None:
    browser.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": _WATCH_CSP})


def _foreign_requests(browser: WebDriver, site: Site) -> list[str]:
    own = urlparse(site.url).netloc
    names: list[str] = browser.execute_script(
        "return performance.getEntriesByType('resource').map((entry) => entry.name)"
    )
    return [
        n for n in names if urlparse(n).scheme in ("http", "https") and urlparse(n).netloc != own
    ]


@pytest.mark.slow
def test_docs_page_renders_every_operation_from_the_service_alone(
    browser: WebDriver, site: Site
) -> None:
    _watch(browser)
    browser.get(site.url + "/docs")
    wait(browser).until(lambda d: d.find_elements(By.CSS_SELECTOR, ".opblock-summary-path"))
    paths = {
        e.get_attribute("data-path")
        for e in browser.find_elements(By.CSS_SELECTOR, ".opblock-summary-path")
    }
    assert {"/v1/verifications", "/v1/verifications/batch", "/v1/verifications/image"} <= paths
    assert _foreign_requests(browser, site) == []
    assert browser.execute_script("return window.__blocked") == []


@pytest.mark.slow
@pytest.mark.parametrize("page", ["/", "/present.html"])
def test_web_pages_run_under_the_content_security_policy(
    browser: WebDriver, site: Site, page: str
) -> None:
    _watch(browser)
    browser.get(site.url + page)
    wait(browser).until(lambda d: d.execute_script("return document.readyState") == "complete")
    assert browser.execute_script("return window.__blocked") == []
    assert _foreign_requests(browser, site) == []
