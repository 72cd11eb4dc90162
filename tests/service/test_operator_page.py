"""The operator page (/operator) and its data (/v1/operator/series): only an operator key
reads it, an operator key verifies nothing, and what it plots follows what the service
did: verdicts, latency, refusals, index lag and the audit backlog. The page itself in
headless Chromium over a real two-worker `elicence serve`, on a phone's width."""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service as ChromeService
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import WebDriverWait

from licence.payload import encode_payload
from licence.presentation import present
from tests.conftest import run_elicence
from tests.samples import business_licence
from tests.service.conftest import ServiceProcess, issued_on_node
from verifier.service.operator_series import Sample, quantile, series

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
PHONE_WIDTH = 375
WAIT_S = 30.0


def series_of(service, key: str | None):
    headers = {} if key is None else {"Authorization": f"Bearer {key}"}
    return service.client.get("/v1/operator/series", headers=headers)


def operator_key(service) -> str:
    from verifier.service.apikeys import ApiKeyStore

    store = ApiKeyStore(service.settings.service_dir / "apikeys.sqlite")
    try:
        _, key = store.create("ops", operator=True)
    finally:
        store.close()
    return key


def tick(service) -> None:
    """One sampler tick now (the task takes one every 10 s)."""
    service.client.portal.call(service.client.app.state.operator_series.tick)


# ---------------------------------------------------------------- who may read it


def test_series_without_a_key_is_refused_401(service):
    answer = series_of(service, None)
    assert answer.status_code == 401
    assert answer.json()["type"].endswith("/unauthenticated")


def test_series_with_an_approval_systems_key_is_refused_403(service):
    answer = series_of(service, service.key("county-approvals"))
    assert answer.status_code == 403
    assert answer.json()["type"].endswith("/not-permitted")
    assert "--operator" in answer.json()["detail"]


def test_operator_key_may_not_verify_licences(service):
    batch = service.issue([business_licence(0)])
    answer = service.verify(batch.documents[0], key=operator_key(service))
    assert answer.status_code == 403


def test_operator_key_takes_no_licence_limits(tmp_path):
    from verifier.service.apikeys import ApiKeyStore
    from verifier.service.errors import InvalidRequest

    store = ApiKeyStore(tmp_path / "apikeys.sqlite")
    try:
        with pytest.raises(InvalidRequest) as refused:
            store.create("ops", operator=True, types=frozenset({"business-licence"}))
    finally:
        store.close()
    assert [e.path for e in refused.value.errors] == ["operator"]


def test_page_is_served_without_data_and_refers_only_to_its_own_files(service):
    page = service.client.get("/operator")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert 'src="/operator/operator.js"' in page.text
    assert "http://" not in page.text and "https://" not in page.text
    for asset in ("/operator/operator.js", "/operator/operator.css"):
        assert service.client.get(asset).status_code == 200


# ---------------------------------------------------------------- what it shows


def test_series_shows_verdicts_latency_and_refusals_just_made(service):
    key = operator_key(service)
    batch = service.issue([business_licence(i) for i in range(3)])
    for document in batch.documents:
        assert service.verify(document).status_code == 200
    assert service.verify(batch.documents[0], key="elk_" + "x" * 43).status_code == 401
    body = series_of(service, key).json()
    assert sum(body["verdicts"]["VALID"]) > 0
    assert any(v is not None for v in body["latencyMs"]["p99"])
    assert sum(body["rejected"]["401"]) > 0
    assert body["aggregated"] is False  # one process here: it says so
    assert len(body["times"]) == len(body["verdicts"]["VALID"]) == len(body["indexLag"])


def test_index_lag_counts_blocks_the_index_has_not_read_yet(service):
    key = operator_key(service)
    service.issue([business_licence(0)])  # blocks the index has not seen
    service.issue([business_licence(1)])
    tick(service)  # reads the head, samples, then brings the index up
    lagging = series_of(service, key).json()["indexLag"]
    tick(service)
    caught_up = series_of(service, key).json()["indexLag"]
    assert lagging[-2] >= 2  # the point of the first tick
    assert caught_up[-1] == 0


def test_audit_backlog_counts_answered_records_not_yet_in_the_log(service):
    key = operator_key(service)
    batch = service.issue([business_licence(0)])
    # Another process holds the log (an export, a backup): answers go on, their records
    # wait in the spool, and the operator sees them waiting.
    blocker = sqlite3.connect(service.settings.service_dir / "audit.sqlite", isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")
    try:
        assert service.verify(batch.documents[0]).status_code == 200
        deadline = time.monotonic() + WAIT_S
        while True:
            tick(service)
            if 1 in series_of(service, key).json()["auditBacklog"][-2:]:
                break
            assert time.monotonic() < deadline, "the backlog never showed the record"
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    deadline = time.monotonic() + WAIT_S
    while True:
        tick(service)
        if series_of(service, key).json()["auditBacklog"][-1] == 0:
            break
        assert time.monotonic() < deadline, "the backlog never went back to 0"


@pytest.mark.parametrize(
    ("q", "buckets", "expected"),
    [
        (0.5, [(0.01, 0), (0.02, 10), (float("inf"), 10)], 0.015),
        (0.99, [(0.01, 100), (float("inf"), 100)], 0.0099),
        (0.99, [(0.01, 0), (0.05, 0), (float("inf"), 5)], 0.05),  # beyond the last bound
        (0.5, [(0.01, 0), (float("inf"), 0)], None),  # nothing answered
    ],
)
def test_percentiles_are_estimated_from_the_histogram_as_prometheus_does(q, buckets, expected):
    found = quantile(q, buckets)
    assert found == (None if expected is None else pytest.approx(expected))


def test_series_turns_counters_into_rates_and_a_restart_into_no_negative_rate():
    def at(t: float, valid: float) -> Sample:
        return Sample(t, {"VALID": valid}, {}, (), 10, 12, 0)

    body = series([at(0, 0), at(10, 500), at(20, 100)])
    assert body["verdicts"]["VALID"] == [50.0, 0.0]
    assert body["indexLag"] == [2, 2]


# ---------------------------------------------------------------- the page in a browser


def _browser(profile: Path) -> WebDriver:
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for argument in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--no-first-run",
        f"--user-data-dir={profile}",
        f"--window-size={PHONE_WIDTH},800",
        "--lang=zh-CN",
    ):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=ChromeService(str(CHROMEDRIVER)), options=options)
    # The window's outer size includes no chrome in headless mode; the viewport is set
    # exactly so that the test measures 375 CSS pixels.
    driver.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {"width": PHONE_WIDTH, "height": 800, "deviceScaleFactor": 2, "mobile": True},
    )
    return driver


@pytest.fixture
def phone(tmp_path) -> Iterator[WebDriver]:
    if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
        pytest.skip("needs Debian's chromium and chromium-driver (./scripts/test installs them)")
    driver = _browser(tmp_path / "profile")
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture
def served(node_process, tmp_path) -> Iterator[tuple[ServiceProcess, list[str]]]:
    """Three licences on a real node and `elicence serve --workers 2` over it."""
    registry, _, batch = issued_on_node(node_process.url, tmp_path / "licences", "op", 3)
    service = ServiceProcess(
        tmp_path / "service-home",
        node_process.url,
        registry.address,
        "--workers",
        "2",
        env={"ELICENCE_ANONYMOUS_RATE": "1000", "ELICENCE_ANONYMOUS_BURST": "1000"},
    )
    service.start()
    payloads = [encode_payload(present(d, [])) for d in batch.documents]
    try:
        yield service, payloads
    finally:
        service.stop()


def _scroll_overflow(driver: WebDriver) -> int:
    return int(
        driver.execute_script(
            "return document.documentElement.scrollWidth - document.documentElement.clientWidth;"
        )
    )


def test_operator_page_on_a_phone_plots_the_last_verifications(served, phone, tmp_path):
    service, payloads = served
    made = run_elicence(
        "apikey", "create", "--name", "ops", "--operator", "--home", str(service.home)
    )
    assert made.returncode == 0, made.stderr
    key = made.stdout.strip().splitlines()[-1]
    refused = httpx.get(f"{service.url}/v1/operator/series", timeout=WAIT_S)
    assert refused.status_code == 401
    for n in range(20):
        answer = httpx.post(
            f"{service.url}/v1/verifications", json={"qr": payloads[n % 3]}, timeout=WAIT_S
        )
        assert answer.status_code == 200, answer.text

    phone.get(f"{service.url}/operator")
    wait = WebDriverWait(phone, WAIT_S)
    wait.until(lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-ready"))
    # Without the key: no plots, and the page asks for it.
    assert not phone.find_element(By.ID, "charts").is_displayed()
    assert "运维密钥" in phone.find_element(By.ID, "message").text

    phone.find_element(By.ID, "key").send_keys(key)
    phone.find_element(By.CSS_SELECTOR, "#key-form button[type=submit]").click()
    wait.until(lambda d: d.find_element(By.ID, "charts").is_displayed())
    points = {
        section.get_attribute("data-chart"): int(
            section.find_element(By.TAG_NAME, "svg").get_attribute("data-points") or 0
        )
        for section in phone.find_elements(By.CSS_SELECTOR, "#charts [data-chart]")
    }
    assert set(points) == {"verdicts", "latency", "rejected", "lag", "backlog"}
    assert points["verdicts"] > 0 and points["latency"] > 0
    legend = phone.find_element(By.CSS_SELECTOR, '[data-chart="verdicts"] .legend').text
    assert "有效" in legend
    # Two workers: the page says its figures are the sum over them.
    assert "全部工作进程" in phone.find_element(By.ID, "scope").text
    assert _scroll_overflow(phone) <= 0
    phone.save_screenshot(str(tmp_path / "operator-phone.png"))

    phone.find_element(By.ID, "lang").click()
    assert "valid" in phone.find_element(By.CSS_SELECTOR, '[data-chart="verdicts"] .legend').text
    assert _scroll_overflow(phone) <= 0


def test_operator_page_with_a_wrong_key_says_so_and_plots_nothing(served, phone):
    service, _ = served
    phone.get(f"{service.url}/operator?lang=en")
    wait = WebDriverWait(phone, WAIT_S)
    wait.until(lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-ready"))
    phone.find_element(By.ID, "key").send_keys("elk_" + "x" * 43)
    phone.find_element(By.CSS_SELECTOR, "#key-form button[type=submit]").click()
    wait.until(lambda d: "401" in d.find_element(By.ID, "message").text)
    assert not phone.find_element(By.ID, "charts").is_displayed()


def test_series_json_is_plain_json(service):
    body = series_of(service, operator_key(service)).text
    assert json.loads(body)["intervalSeconds"] == 10
