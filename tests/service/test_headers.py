"""Every answer carries the security headers; verdicts are never cached; /docs works
offline; anonymous callers do not see personal fields unless the operator says so."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import pytest
from fastapi.testclient import TestClient

from licence.payload import encode_payload
from licence.presentation import present
from tests.samples import business_licence
from tests.service.conftest import make_service
from verifier.service.app import WEB_STATIC, create_app
from verifier.service.settings import Settings

COMMON = {
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
}


def _assert_secure(response) -> None:
    for name, value in COMMON.items():
        assert response.headers.get(name) == value, (response.request.url, name)
    policy = response.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in policy
    assert "default-src 'self'" in policy
    # No host but our own, and nothing that would let injected markup run.
    assert not re.search(r"https?:|\*|'unsafe-eval'", policy), policy
    assert len(response.headers.get_list("content-security-policy")) == 1


@pytest.fixture
def site(tmp_path, registry, agency_key):
    """The service with the real web page."""
    made = make_service(tmp_path, registry, agency_key, web_root=WEB_STATIC)
    with made.client:
        yield made


def _verdict(site):
    batch = site.issue([business_licence(70)])
    return site.post("/v1/verifications", {"qr": encode_payload(present(batch.documents[0], []))})


ANSWERS = {
    "verdict (fast path)": _verdict,
    "problem (fast path)": lambda s: s.post("/v1/verifications", b"{", headers={}),
    "unauthenticated (fast path)": lambda s: s.post("/v1/verifications", {}, key="elk_nobody"),
    "batch problem": lambda s: s.post("/v1/verifications/batch", {"items": []}),
    "image problem": lambda s: s.client.post(
        "/v1/verifications/image", files={"image": ("x.png", b"nope", "image/png")}
    ),
    "catalogue": lambda s: s.client.get("/v1/catalogue"),
    "holder problem": lambda s: s.post("/v1/holder/verifications", {}),
    "not found": lambda s: s.client.get("/v1/nothing"),
    "web page": lambda s: s.client.get("/"),
    "web page script": lambda s: s.client.get("/js/verify.js"),
    "docs": lambda s: s.client.get("/docs"),
    "docs asset": lambda s: s.client.get("/docs/assets/swagger-ui.css"),
    "openapi": lambda s: s.client.get("/openapi.json"),
    "metrics": lambda s: s.client.get("/metrics"),
    "health": lambda s: s.client.get("/healthz"),
}


@pytest.mark.parametrize("kind", list(ANSWERS))
def test_every_kind_of_answer_carries_the_security_headers(site, kind):
    response = ANSWERS[kind](site)
    assert response.status_code < 500, response.text
    _assert_secure(response)
    if response.request.url.path == "/v1/catalogue":  # the page keeps it, by ETag
        assert response.headers["cache-control"] == "no-cache"
    elif response.request.url.path.startswith("/v1/"):
        assert response.headers["cache-control"] == "no-store"


def test_an_unexpected_error_still_carries_the_headers(tmp_path, registry, monkeypatch):
    settings = Settings(home=tmp_path / "home", web_root=tmp_path / "no-web")
    app = create_app(settings, registry=registry)

    async def broken(*_args, **_kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(app.state.services.verification, "verify_batch", broken)
    with TestClient(app, raise_server_exceptions=False) as client:
        response = client.post(
            "/v1/verifications/batch",
            content=b'{"items": [{"qr": "EL1:X"}]}',
            headers={"Content-Type": "application/json"},
        )
    assert response.status_code == 500
    _assert_secure(response)
    assert response.headers["cache-control"] == "no-store"


def test_verdicts_are_not_stored_by_caches(site):
    response = _verdict(site)
    assert response.status_code == 200
    assert response.json()["status"] == "VALID"
    assert response.headers["cache-control"] == "no-store"


def test_web_page_policy_forbids_inline_script_and_framing(site):
    policy = site.client.get("/").headers["content-security-policy"]
    directives = dict(d.strip().split(" ", 1) for d in policy.split(";"))
    assert directives["script-src"] == "'self'"
    assert directives["style-src"] == "'self'"
    assert directives["object-src"] == "'none'"


@pytest.mark.parametrize("page", ["index.html", "present.html"])
def test_web_pages_need_nothing_the_policy_forbids(page):
    # style-src 'self' drops style attributes; script-src 'self' inline scripts and handlers.
    html = (WEB_STATIC / page).read_text("utf-8")
    assert not re.search(r"\sstyle=|<script>|\son[a-z]+=", html)


class _References(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self.inline: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag, attrs):
        named = dict(attrs)
        self.urls += [v for n, v in attrs if n in ("src", "href") and v]
        self._in_script = tag == "script" and "src" not in named

    def handle_data(self, data):
        if self._in_script:
            self.inline.append(data)
            self._in_script = False


def test_docs_page_loads_nothing_from_another_host(site):
    page = site.client.get("/docs")
    assert page.status_code == 200
    found = _References()
    found.feed(page.text)
    assert found.urls, "the docs page references its assets"
    assert not re.search(r"https?://|//cdn", page.text)
    for url in found.urls:
        assert url.startswith("/"), url
        asset = site.client.get(url)
        assert asset.status_code == 200, url
        assert len(asset.content) > 0
    # The one inline script (Swagger UI's start) is allowed by its hash, nothing else is.
    policy = page.headers["content-security-policy"]
    script_src = next(d for d in policy.split(";") if d.strip().startswith("script-src"))
    assert "'unsafe-inline'" not in script_src
    assert len(found.inline) == 1 and script_src.count("'sha256-") == 1
    assert site.client.get("/openapi.json").status_code == 200


def test_docs_are_served_even_without_the_web_page(service):
    page = service.client.get("/docs")
    assert page.status_code == 200
    assert service.client.get("/docs/assets/swagger-ui-bundle.js").status_code == 200
    assert service.client.get("/redoc").status_code == 404  # it would load a CDN script


def test_anonymous_callers_do_not_see_personal_fields_by_default(tmp_path, registry, agency_key):
    assert Settings(home=tmp_path).anonymous_sees_personal is False
    made = make_service(tmp_path, registry, agency_key)
    with made.client:
        batch = made.issue([business_licence(71)])
        document = batch.documents[0]
        shown = present(document, ["legalRepresentative"])
        body = made.post("/v1/verifications", {"qr": encode_payload(shown)}).json()
    assert body["status"] == "VALID"
    assert "legalRepresentative" not in body["fields"]
    assert body["withheld"] == ["legalRepresentative"]
    assert document.fields["legalRepresentative"] not in str(body)


def test_operator_may_let_anonymous_callers_see_personal_fields(tmp_path, registry, agency_key):
    made = make_service(tmp_path, registry, agency_key, anonymous_sees_personal=True)
    with made.client:
        batch = made.issue([business_licence(72)])
        shown = present(batch.documents[0], ["legalRepresentative"])
        body = made.post("/v1/verifications", {"qr": encode_payload(shown)}).json()
    assert body["fields"]["legalRepresentative"] == batch.documents[0].fields["legalRepresentative"]
    assert body["withheld"] == []
