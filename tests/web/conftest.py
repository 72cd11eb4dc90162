"""Browser tests of the web page: a real `elicence serve` process and headless Chromium.

The service runs as its own process on a free loopback port (`elicence serve --demo`),
with its embedded chain and the demo licences it writes under its home; the tests add a
tampered copy of one of them. The page is driven by Selenium through Debian's
chromedriver and chromium (installed by ./scripts/test). Screenshots go to one temporary
folder per session, printed at the end of the run: look at them.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import WebDriverWait

from licence.document import LicenceDocument, loads_document
from licence.errors import LicenceFormatError
from tests.conftest import ELICENCE, NodeProcess, free_port

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
STATIC = Path(__file__).resolve().parents[2] / "verifier" / "web" / "static"
DESKTOP = (1280, 1000)
PHONE = (390, 844)  # a common phone's CSS viewport
# Generous: the first start compiles nothing but does deploy and issue the demo batch.
START_TIMEOUT_S = 120.0
WAIT_S = 30.0

_shots_key = pytest.StashKey[Path]()


@dataclass
class Site:
    """The running service, and its demo licences by the verdict they get."""

    url: str
    home: Path
    documents: dict[str, list[Path]] = field(default_factory=dict)

    def verify(self, body: dict[str, Any]) -> dict[str, Any]:
        """The service's answer to POST /v1/verifications (asserting a 200)."""
        response = httpx.post(f"{self.url}/v1/verifications", json=body, timeout=WAIT_S)
        assert response.status_code == 200, response.text
        answer: dict[str, Any] = response.json()
        return answer

    def document(self, status: str) -> LicenceDocument:
        """A demo licence whose verdict is `status`."""
        if not self.documents.get(status):
            pytest.skip(f"the service's demo has no {status} licence under {self.home}")
        return loads_document(self.documents[status][0].read_bytes())

    def path(self, status: str) -> Path:
        """The file of a demo licence whose verdict is `status`."""
        self.document(status)
        return self.documents[status][0]


def _server_command(home: Path, port: int, chain_url: str) -> list[str]:
    return [
        str(ELICENCE),
        *("serve", "--demo", "--log-level", "warning"),
        *("--home", str(home), "--port", str(port)),
        *("--chain", chain_url),
    ]


def _serve_available() -> bool:
    found = subprocess.run(
        [str(ELICENCE), "serve", "--help"], capture_output=True, check=False, timeout=60
    )
    return found.returncode == 0


def _wait_healthy(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(
                f"the service exited with {process.returncode}: {log.read_text()[-2000:]}"
            )
        try:
            if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"the service did not answer /healthz within {START_TIMEOUT_S} s")


def _classify(site: Site) -> None:
    # The demo's file layout belongs to the service; what matters here is the verdict
    # each licence gets, so every document under the home is asked about once.
    for path in sorted(site.home.rglob("*.json")):
        try:
            loads_document(path.read_bytes())
        except (LicenceFormatError, OSError, ValueError):
            continue  # not a licence (a batch record, the config)
        answer = site.verify({"document": json.loads(path.read_text("utf-8"))})
        site.documents.setdefault(answer["status"], []).append(path)


def _add_tampered(site: Site, folder: Path) -> None:
    # A copy of a valid licence with its registered capital inflated: the change a
    # forger would make, caught by the integrity check.
    raw = json.loads(site.path("VALID").read_text("utf-8"))
    field = "registeredCapital" if "registeredCapital" in raw["fields"] else "holderName"
    raw["fields"][field] = "10000万元人民币"
    path = folder / "tampered.json"
    path.write_text(json.dumps(raw, ensure_ascii=False, indent=2), "utf-8")
    assert site.verify({"document": raw})["status"] == "TAMPERED"
    site.documents.setdefault("TAMPERED", []).insert(0, path)


@pytest.fixture(scope="session")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    """`elicence serve` with its demo, on a free loopback port, for the session."""
    if not _serve_available():
        pytest.skip("`elicence serve` is not available (the verifier service issue)")
    home = tmp_path_factory.mktemp("web") / "home"
    home.mkdir()
    # The chain node of its own on a free port: the home's default (8545) may be
    # another test's node, and `serve` would use whatever answers there.
    node = NodeProcess(home / "chain-home").start()
    port = free_port()
    log = home.parent / "serve.log"
    with log.open("wb") as sink:
        # Its own process group, so that anything it starts is stopped with it.
        process = subprocess.Popen(
            _server_command(home, port, node.url),
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(url, process, log)
        found = Site(url, home)
        _classify(found)
        _add_tampered(found, home.parent)
        yield found
    finally:
        _stop_group(process)
        node.stop()


def _stop_group(process: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(process.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


@pytest.fixture(scope="session")
def screenshots(request: pytest.FixtureRequest) -> Path:
    """The folder this session's screenshots go to (printed at the end of the run).

    Not under pytest's basetemp, which keeps only the last three runs: the pictures are
    for a person to look at after the run.
    """
    folder = Path(tempfile.mkdtemp(prefix="elicence-web-screenshots-"))
    request.config.stash[_shots_key] = folder
    return folder


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    folder = config.stash.get(_shots_key, None)
    if folder is not None:
        terminalreporter.write_line(f"web page screenshots: {folder}")


def _browser(profile: Path) -> WebDriver:
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for argument in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--disable-dev-shm-usage",
        f"--user-data-dir={profile}",
        f"--window-size={DESKTOP[0]},{DESKTOP[1]}",
        # A fixed locale, so that nothing but the page's own switch picks the language.
        "--lang=zh-CN",
    ):
        options.add_argument(argument)
    return webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[WebDriver]:
    """A fresh headless Chromium (its own profile, so no language choice carries over)."""
    if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
        pytest.skip("needs Debian's chromium and chromium-driver (./scripts/test installs them)")
    driver = _browser(tmp_path / "profile")
    driver.set_script_timeout(WAIT_S)
    try:
        yield driver
    finally:
        driver.quit()


def wait(driver: WebDriver) -> WebDriverWait[WebDriver]:
    """Waits for something the page does after a click or a request."""
    return WebDriverWait(driver, WAIT_S)
