"""The page's files: served by the service, nothing from outside, vendored copies current."""

from __future__ import annotations

import json
import re
import tomllib
from html.parser import HTMLParser
from pathlib import Path

import httpx
import pytest

from tests.web.conftest import STATIC, Site
from verifier.verdict import reason_table

REPO = STATIC.parents[2]
NODE_MODULES = REPO / "node_modules"
PAGES = ("index.html", "present.html")
# Each vendored file and the package file it is an unmodified copy of.
VENDORED = {
    "pako/pako_deflate.umd.min.js": ("pako", "dist/browser/pako_deflate.umd.min.js"),
    "pako/LICENSE": ("pako", "LICENSE"),
    "jsqr/jsQR.js": ("jsqr", "dist/jsQR.js"),
    "jsqr/LICENSE": ("jsqr", "LICENSE"),
    "qrcode-generator/qrcode.js": ("qrcode-generator", "dist/qrcode.js"),
    "swagger-ui-dist/swagger-ui-bundle.js": ("swagger-ui-dist", "swagger-ui-bundle.js"),
    "swagger-ui-dist/swagger-ui.css": ("swagger-ui-dist", "swagger-ui.css"),
    "swagger-ui-dist/favicon-32x32.png": ("swagger-ui-dist", "favicon-32x32.png"),
    "swagger-ui-dist/LICENSE": ("swagger-ui-dist", "LICENSE"),
    "sm-crypto/sm3.js": ("sm-crypto", "dist/sm3.js"),
    "sm-crypto/sm2.js": ("sm-crypto", "dist/sm2.js"),
    "sm-crypto/LICENSE": ("sm-crypto", "LICENCE_MIT"),
    "pako/pako_inflate.umd.min.js": ("pako", "dist/browser/pako_inflate.umd.min.js"),
    "noble-secp256k1/index.js": ("@noble/secp256k1", "index.js"),
    "noble-secp256k1/LICENSE": ("@noble/secp256k1", "LICENSE"),
    "noble-hashes/sha3.js": ("@noble/hashes", "sha3.js"),
    "noble-hashes/_u64.js": ("@noble/hashes", "_u64.js"),
    "noble-hashes/utils.js": ("@noble/hashes", "utils.js"),
    "noble-hashes/LICENSE": ("@noble/hashes", "LICENSE"),
}


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self.handlers: list[str] = []
        self.inline_scripts = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        names = dict(attrs)
        self.urls += [v for n, v in attrs if n in ("src", "href") and v]
        self.handlers += [f"{tag} {n}" for n in names if n.startswith("on")]
        if tag == "script" and "src" not in names:
            self.inline_scripts += 1


def _tags(page: str) -> _Tags:
    parser = _Tags()
    parser.feed((STATIC / page).read_text("utf-8"))
    return parser


def _references(page: str) -> list[str]:
    return _tags(page).urls


def _own_files() -> list[Path]:
    """The files we write (not the vendored libraries)."""
    return [p for p in STATIC.rglob("*") if p.is_file() and "vendor" not in p.parts]


@pytest.mark.parametrize("page", PAGES)
def test_pages_reference_only_files_of_their_own(page: str) -> None:
    for url in _references(page):
        assert not re.match(r"^[a-z]+:|^//", url), f"{page} loads {url} from elsewhere"
        target = url.split("#")[0].split("?")[0]
        if target and target != "./":
            assert (STATIC / target).is_file(), f"{page} refers to missing {url}"


def test_no_script_or_style_fetches_from_another_host() -> None:
    for path in _own_files():
        if path.suffix in (".js", ".css"):
            text = path.read_text("utf-8")
            # The SVG namespace is a name, never fetched (document.createElementNS).
            fetches = r"https?://(?!www\.w3\.org/2000/svg\b)|@import|url\(\s*['\"]?(?!data:)"
            assert not re.search(fetches, text), path


def test_pages_have_no_inline_script() -> None:
    # Every script is a file, so the service may forbid inline scripts (CSP script-src 'self').
    for page in PAGES:
        tags = _tags(page)
        assert tags.inline_scripts == 0, page
        assert tags.handlers == [], page


def test_the_page_carries_no_copy_of_the_catalogue() -> None:
    # The page's types are the service's (GET /v1/catalogue, js/common.js loadCatalogue):
    # a copy could lay out a payload by another field order than the service reads.
    assert not (STATIC / "catalogue.json").exists()
    for path in _own_files():
        if path.suffix in (".js", ".html"):
            assert "catalogue.json" not in path.read_text("utf-8"), path
    assert '"../v1/catalogue"' in (STATIC / "js" / "common.js").read_text("utf-8")


@pytest.mark.slow
def test_the_pages_licence_types_are_the_services_catalogue(browser, site: Site) -> None:
    browser.get(site.url + "/present.html")
    loaded = browser.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        f"import({site.url + '/js/common.js'!r}).then((m) => m.loadCatalogue())"
        ".then(done, (e) => done(String(e)));"
    )
    served = httpx.get(site.url + "/v1/catalogue", timeout=30).json()["licenceTypes"]
    assert loaded == {"types": served}
    assert len(served) >= 20


def test_page_words_reasons_from_the_packages_own_table() -> None:
    # One source of the reasons' words (verifier/verdict.py); the page reads this copy.
    shipped = json.loads((STATIC / "reasons.json").read_text("utf-8"))
    assert shipped == reason_table(), "run scripts/vendor_web to refresh reasons.json"


@pytest.mark.parametrize("copy", sorted(VENDORED))
def test_vendored_file_is_an_unmodified_copy_of_the_pinned_package(copy: str) -> None:
    package, inside = VENDORED[copy]
    source = NODE_MODULES / package / inside
    if not source.exists():
        pytest.skip(f"{source} is not installed (npm ci)")
    assert (STATIC / "vendor" / copy).read_bytes() == source.read_bytes(), (
        f"vendor/{copy} differs from {package}: run scripts/vendor_web"
    )


def test_vendored_versions_are_pinned_and_listed_with_their_licences() -> None:
    pinned = json.loads((REPO / "package.json").read_text("utf-8"))["devDependencies"]
    listing = (STATIC / "vendor" / "VENDORED.md").read_text("utf-8")
    folders = {package: copy.split("/")[0] for copy, (package, _) in VENDORED.items()}
    for package, folder in folders.items():
        version = pinned[package]
        assert re.fullmatch(r"\d+\.\d+\.\d+", version), f"{package} is not pinned: {version}"
        assert f"npm `{package}`" in listing and f"| {version} |" in listing, package
        assert (STATIC / "vendor" / folder / "LICENSE").is_file(), package
        installed = NODE_MODULES / package / "package.json"
        if installed.exists():
            assert json.loads(installed.read_text("utf-8"))["version"] == version


def test_package_data_ships_every_static_file() -> None:
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text("utf-8"))
    patterns = pyproject["tool"]["setuptools"]["package-data"]["verifier"]
    shipped = {p for pattern in patterns for p in (REPO / "verifier").glob(pattern) if p.is_file()}
    every = {p for p in STATIC.rglob("*") if p.is_file()}
    assert every <= shipped, sorted(str(p) for p in every - shipped)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("path", "kind"),
    [
        ("/", "text/html"),
        ("/present.html", "text/html"),
        ("/css/app.css", "text/css"),
        ("/js/verify.js", "javascript"),  # module scripts need a JavaScript type
        ("/js/present.js", "javascript"),
        ("/js/elformat.js", "javascript"),
        ("/vendor/jsqr/jsQR.js", "javascript"),
        ("/v1/catalogue", "application/json"),
        ("/reasons.json", "application/json"),
        ("/js/reasons.js", "javascript"),
    ],
)
def test_service_serves_the_page_files(site: Site, path: str, kind: str) -> None:
    response = httpx.get(site.url + path, timeout=30)
    assert response.status_code == 200
    assert kind in response.headers["content-type"]
