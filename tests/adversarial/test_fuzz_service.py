"""Fuzzing every route of a real `elicence serve` process (uvicorn) over a real node.

Ten thousand seeded hostile requests (JSON, EL1 text, multipart forms, images, headers)
and the seed corpus: not one answer of 500 or more, the process alive, its memory
bounded, and a genuine licence still VALID afterwards. The routes are read from
create_app(), so a new route is fuzzed (and must have a maker) from the day it exists.
"""

from __future__ import annotations

import json
import os
import random
import zlib

import base45
import httpx
import pytest
from fastapi.routing import APIRoute
from starlette.routing import Mount, Route

from issuer.qr import qr_png_bytes
from licence.payload import encode_payload
from licence.presentation import present
from tests.adversarial import fuzzing as fz
from tests.conftest import NodeProcess
from tests.service.conftest import ServiceProcess, issued_on_node
from verifier.service.apikeys import ApiKeyStore
from verifier.service.app import create_app
from verifier.service.settings import Settings

SEED = 15
INPUTS = int(os.environ.get("ELICENCE_FUZZ_INPUTS", "10000"))
RSS_GROWTH_MB = 400  # generous: caches and the audit log grow; a leak of images does not fit
PEAK_MB = 1500  # the whole process at its worst (issue #15: 2.8 GB before the image caps)


def service_routes(tmp_path) -> dict[str, str]:
    """Every route of the app, as "METHOD /path", with how its requests are made.

    The operations come from the app's OpenAPI document (FastAPI keeps included routers'
    routes behind its own objects); routes outside it (the document itself, /docs) and
    mounted folders come from `app.routes`.
    """
    app = create_app(Settings(home=tmp_path / "routes-home"))
    kinds: dict[str, str] = {}
    for path, operations in app.openapi()["paths"].items():
        for method, operation in operations.items():
            content = (operation.get("requestBody") or {}).get("content", {})
            if method == "get":
                kind = "get"
            elif "application/json" in content:
                kind = "json"
            elif "multipart/form-data" in content:
                kind = "multipart"
            else:
                kind = "unknown"
            kinds[f"{method.upper()} {path}"] = kind
    for route in app.routes:
        if isinstance(route, Mount):
            kinds[f"GET {route.path or ''}/*"] = "static"
        elif isinstance(route, APIRoute | Route):
            for method in sorted((route.methods or set()) - {"HEAD"}):
                kinds.setdefault(f"{method} {route.path}", "get" if method == "GET" else "unknown")
    return kinds


class ServiceInputs:
    """Seeded makers of hostile requests, per kind of route."""

    def __init__(
        self, rng: random.Random, payloads: list[str], documents: list[dict], image: bytes, key: str
    ) -> None:
        self.rng = rng
        self.values = fz.Values(rng)
        self.payloads = payloads
        self.documents = documents
        self.image = image
        self.key = key
        self.bomb = "EL1:" + base45.b45encode(zlib.compress(b"\x00" * 2_700_000, 9)).decode()

    # -- pieces --------------------------------------------------------------------------

    def el1(self) -> str:
        rng = self.rng
        payload = rng.choice(self.payloads)
        kind = rng.random()
        if kind < 0.1:
            return payload
        if kind < 0.5:
            chars = list(payload)
            for _ in range(rng.randint(1, 5)):
                at = rng.randrange(4, len(chars))
                chars[at] = rng.choice("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:")
            return "".join(chars)
        if kind < 0.65:
            return payload[: rng.randrange(len(payload))]
        if kind < 0.75:
            return payload + rng.choice(["A", "AA", "::", " ", "\n", "\u0000"])
        if kind < 0.85:
            return rng.choice(["EL2:", "el1:", "EL1", "", "EL1::"]) + payload[4:]
        if kind < 0.95:
            return self.bomb
        return self.values.string()

    def document(self) -> object:
        rng = self.rng
        doc = json.loads(json.dumps(rng.choice(self.documents)))
        for _ in range(rng.randint(1, 3)):
            target = doc
            path = []
            while isinstance(target, dict) and target and rng.random() < 0.6:
                key = rng.choice(list(target))
                path.append(key)
                if not isinstance(target[key], dict | list):
                    break
                target = target[key] if isinstance(target[key], dict) else target
            if isinstance(target, dict) and target:
                key = rng.choice(list(target))
                choice = rng.random()
                if choice < 0.4:
                    target[key] = json.loads(
                        rng.choice(["1", '"x"', "null", "[]", "{}", "true", "1e300"])
                    )
                elif choice < 0.6:
                    del target[key]
                elif choice < 0.8:
                    target[self.values.string() or "k"] = self.values.string()
                else:
                    target[key] = self.values.string()
        return doc

    def purpose(self) -> str:
        return self.rng.choice(
            [
                '"审批-2026-000123"',
                '"\\ud800"',
                '"a\\u0000b"',
                '"' + "p" * 300 + '"',
                "12",
                "null",
                '["x"]',
                json.dumps(self.values.string()),
            ]
        )

    def headers(self, content_type: str) -> list[tuple[str, str]]:
        rng = self.rng
        headers = [("Content-Type", content_type)]
        pick = rng.random()
        if pick < 0.15:
            headers[0] = (
                "Content-Type",
                rng.choice(
                    [
                        "text/plain",
                        "application/json; charset=utf-16",
                        "application/json; charset=utf-7",
                        "APPLICATION/JSON",
                        "application/json\t;;;",
                        "multipart/form-data",
                        "application/x-www-form-urlencoded",
                        "",
                        'application/json; boundary="',
                    ]
                ),
            )
        elif pick < 0.2:
            headers = []
        pick = rng.random()
        if pick < 0.2:
            headers.append(("Authorization", f"Bearer {self.key}"))
        elif pick < 0.35:
            headers.append(
                (
                    "Authorization",
                    rng.choice(
                        [
                            "Bearer",
                            "Bearer ",
                            "Bearer " + "a" * 5000,
                            "Basic dXNlcjpwYXNz",
                            f"Bearer {self.key}x",
                            f"bearer {self.key[:-1]}",
                            "Bearer el_" + "é" * 20,
                            "Bearer \u00ff\u00fe\u0000",
                            f"Bearer {self.key}, Bearer {self.key}",
                        ]
                    ),
                )
            )
        if rng.random() < 0.05:
            headers.append(("X-Forwarded-For", "127.0.0.1, 10.0.0.1, " + "1." * 500))
        return headers

    # -- bodies --------------------------------------------------------------------------

    def licence_input(self) -> str:
        rng = self.rng
        pick = rng.random()
        if pick < 0.45:
            member = f'"qr":{json.dumps(self.el1())}'
        elif pick < 0.8:
            member = f'"document":{json.dumps(self.document(), ensure_ascii=rng.random() < 0.5)}'
        else:
            member = f"{self.values.key()}:{self.values.value()}"
        extra = ""
        if rng.random() < 0.4:
            extra += f',"purpose":{self.purpose()}'
        if rng.random() < 0.1:
            extra += f",{self.values.key()}:{self.values.value()}"
        return "{" + member + extra + "}"

    def json_body(self) -> bytes:
        rng = self.rng
        pick = rng.random()
        if pick < 0.5:
            text = self.licence_input()
        elif pick < 0.7:
            items = ",".join(self.licence_input() for _ in range(rng.choice([0, 1, 2, 5, 30, 101])))
            extra = rng.choice(
                [
                    "",
                    ',"requiredTypes":["business-licence"]',
                    ',"sameHolder":"yes"',
                    ',"requiredTypes":' + self.values.value(),
                ]
            )
            text = '{"items":[' + items + "]" + extra + "}"
        elif pick < 0.9:
            text = self.values.value()
        else:
            text = rng.choice(
                [
                    "",
                    "{",
                    '{"qr":"EL1:',
                    '{"qr":"EL1:","qr":"EL1:"}',
                    "\ufeff{}",
                    '{"qr":' + "9" * rng.choice([400, 5000]) + "}",
                    '{"qr":"' + "A" * rng.choice([130_000, 1_100_000]) + '"}',
                    fz.deep(rng.choice([500, 2000, 3000])).decode(),
                ]
            )
        data = text.encode("utf-8", "surrogatepass")
        if rng.random() < 0.05:
            data = fz.mutate_bytes(rng, data)
        return data

    def image_bytes(self) -> bytes:
        rng = self.rng
        pick = rng.random()
        if pick < 0.2:
            return self.image
        if pick < 0.5:
            return fz.mutate_bytes(rng, self.image)
        if pick < 0.6:
            return self.image[: rng.randrange(len(self.image))]
        if pick < 0.8:
            width, height = rng.choice(
                [(1, 1), (1, 30_000), (30_000, 1), (3000, 3000), (20_000, 20_000), (2, 2)]
            )
            return fz.png(width, height, rows=b"\x00" * 64 if width * height > 10**7 else None)
        if pick < 0.9:
            return b"\xff\xd8\xff" + rng.randbytes(rng.randint(0, 2000))
        return rng.randbytes(rng.randint(0, 500))

    def multipart_body(self) -> tuple[bytes, str]:
        rng = self.rng
        parts = []
        if rng.random() < 0.9:
            parts.append(
                fz.image_part(
                    self.image_bytes(),
                    rng.choice(["qr.png", "", "../../etc/passwd", "é.png", 'a"b.png']),
                    rng.choice(
                        ["image/png", "image/jpeg", "text/plain", "application/octet-stream"]
                    ),
                )
            )
        if rng.random() < 0.6:
            charset = rng.choice(
                [
                    None,
                    None,
                    "utf-8",
                    "utf-7",
                    "utf-16",
                    "latin-1",
                    "x-bogus",
                    "gb18030",
                    "shift_jis",
                ]
            )
            value = rng.choice(
                [
                    b"+2AA-",
                    b"\xff\xfe",
                    "审批".encode(),
                    b"a\x00b",
                    b"p" * rng.choice([10, 300, 70_000]),
                ]
            )
            parts.append(fz.field_part("purpose", value, charset))
        for _ in range(rng.choice([0, 0, 0, 1, 5, 50])):
            parts.append(fz.field_part(rng.choice(["x", "image", "purpose", ""]), rng.randbytes(8)))
        rng.shuffle(parts)
        boundary = "fuzzboundary"
        body = fz.multipart(parts, boundary)
        content_type = f"multipart/form-data; boundary={boundary}"
        pick = rng.random()
        if pick < 0.05:
            content_type = "multipart/form-data"
        elif pick < 0.1:
            content_type = "multipart/form-data; boundary=other"
        elif pick < 0.15:
            body = fz.mutate_bytes(rng, body)
        return body, content_type

    # -- probes --------------------------------------------------------------------------

    def json_probe(self, route: str) -> fz.Probe:
        method, path = route.split(" ", 1)
        body = self.json_body()
        return fz.Probe(
            route, "json", fz.http_request(method, path, body, self.headers("application/json"))
        )

    def multipart_probe(self, route: str) -> fz.Probe:
        method, path = route.split(" ", 1)
        body, content_type = self.multipart_body()
        headers = self.headers(content_type)
        return fz.Probe(route, "multipart", fz.http_request(method, path, body, headers))

    def get_probe(self, route: str) -> fz.Probe:
        rng = self.rng
        path = route.split(" ", 1)[1]
        query = rng.choice(
            [
                "",
                "?a=1",
                "?" + "x=" + "y" * 3000,
                "?%ff%fe=%00",
                "?licence=" + "0x" * 40,
                "?a[b][c]=1" * 20,
            ]
        )
        headers = self.headers(rng.choice(["application/json", "text/html"]))
        headers.append(
            ("Accept", rng.choice(["*/*", "text/html", "application/json;q=0.x", "\u00ff"]))
        )
        if rng.random() < 0.1:
            headers.append(("Range", "bytes=0-1,1-2,2-3," * 100))
        body = b"" if rng.random() < 0.9 else self.json_body()
        return fz.Probe(route, "get", fz.http_request("GET", path + query, body, headers))

    def static_probe(self, route: str) -> fz.Probe:
        rng = self.rng
        prefix = route.split(" ", 1)[1].removesuffix("/*")
        path = prefix + rng.choice(
            [
                "/",
                "/index.html",
                "/../../../../etc/passwd",
                "/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
                "/..%2f..%2f..%2fetc%2fpasswd",
                "/%00",
                "/" + "a" * 6000,
                "/%ff%fe",
                "//etc/passwd",
                "/vendor/../../../pyproject.toml",
                "/" + "".join(rng.choice("abc/%.é") for _ in range(rng.randint(1, 60))),
            ]
        )
        method = rng.choice(
            ["GET", "GET", "GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "TRACE", "PROPFIND"]
        )
        return fz.Probe(
            route,
            "static",
            fz.http_request(method, path, b"", self.headers("text/html")),
            well_formed=" " not in path,
        )

    def header_probe(self, route: str) -> fz.Probe:
        """A request whose framing lies (Content-Length, Transfer-Encoding, odd lines)."""
        rng = self.rng
        method, path = route.split(" ", 1)
        if path.endswith("/*"):
            path = "/"
        body = self.json_body()[:2000]
        pick = rng.randrange(9)
        if pick == 0:
            headers = [
                ("Content-Type", "application/json"),
                ("Content-Length", str(len(body) + rng.randint(1, 10**6))),
            ]
        elif pick == 1:
            headers = [
                ("Content-Type", "application/json"),
                (
                    "Content-Length",
                    rng.choice(["-1", "abc", "1e3", "99999999999999999999999", " 2", "0x10"]),
                ),
            ]
        elif pick == 2:
            headers = [
                ("Content-Type", "application/json"),
                ("Content-Length", str(len(body))),
                ("Content-Length", "0"),
            ]
        elif pick == 3:
            chunks = f"{len(body):x}\r\n".encode() + body + b"\r\n0\r\n\r\n"
            body = chunks if rng.random() < 0.5 else fz.mutate_bytes(rng, chunks)
            headers = [("Content-Type", "application/json"), ("Transfer-Encoding", "chunked")]
        elif pick == 4:
            headers = [
                ("Content-Type", "application/json"),
                ("Transfer-Encoding", rng.choice(["gzip", "chunked, gzip", "identity", "x"])),
            ]
        elif pick == 5:
            headers = [
                ("Content-Type", "application/json"),
                ("X-Long", "h" * rng.choice([8000, 70_000])),
            ]
        elif pick == 6:
            headers = [("Content-Type", "application/json")] + [
                (f"X-H{i}", "v") for i in range(rng.choice([100, 500]))
            ]
        elif pick == 7:
            method = rng.choice(["PATCH", "DELETE", "PUT", "OPTIONS", "TRACE", "CONNECT", "FOO"])
            headers = [("Content-Type", "application/json")]
        else:
            headers = [
                ("Content-Type", "application/json"),
                ("Expect", "100-continue"),
                ("Content-Encoding", "gzip"),
            ]
        raw = fz.http_request(method, path, body, headers)
        if rng.random() < 0.1:
            raw = raw.replace(
                b"HTTP/1.1", rng.choice([b"HTTP/1.0", b"HTTP/9.9", b"HTTP/1.1 extra"]), 1
            )
        return fz.Probe(route, f"headers-{pick}", raw, well_formed=False)


def _corpus_probes() -> list[fz.Probe]:
    probes = []
    for path in fz.corpus_files("service"):
        route = fz.route_of_folder(path.parent.name)
        method, target = route.split(" ", 1)
        data = path.read_bytes()
        name = f"corpus {path.parent.name}/{path.name}"
        if path.suffix == ".http":
            probes.append(fz.Probe(route, name, data, well_formed=False))
        elif path.suffix == ".multipart":
            headers = [("Content-Type", "multipart/form-data; boundary=fuzzboundary")]
            probes.append(fz.Probe(route, name, fz.http_request(method, target, data, headers)))
        elif path.suffix in {".png", ".jpg", ".bin"}:
            body = fz.multipart([fz.image_part(data)])
            headers = [("Content-Type", "multipart/form-data; boundary=fuzzboundary")]
            probes.append(fz.Probe(route, name, fz.http_request(method, target, body, headers)))
        else:
            probes.append(fz.json_probe(route, name, target, data))
    # Bodies of megabytes are made here rather than kept as files.
    for size in (2_000_000, 12_000_000):
        probes.append(
            fz.json_probe(
                "POST /v1/verifications",
                f"body-{size}-bytes",
                "/v1/verifications",
                b'{"qr":"' + b"A" * size + b'"}',
            )
        )
    probes.append(
        fz.Probe(
            "POST /v1/verifications/image",
            "purpose-1mb",
            fz.http_request(
                "POST",
                "/v1/verifications/image",
                fz.multipart(
                    [fz.image_part(fz.png(1, 1)), fz.field_part("purpose", b"p" * 1_000_000)]
                ),
                [("Content-Type", "multipart/form-data; boundary=fuzzboundary")],
            ),
        )
    )
    return probes


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """A real node, a registry with three licences on it, and `elicence serve` over it."""
    folder = tmp_path_factory.mktemp("fuzz-service")
    node = NodeProcess(folder / "node-home").start()
    try:
        registry, _, batch = issued_on_node(node.url, folder / "licences", "fuzz-service", 3)
        home = folder / "service-home"
        store = ApiKeyStore(home / "service" / "apikeys.sqlite")
        try:
            _, key = store.create("fuzz")
        finally:
            store.close()
        service = ServiceProcess(
            home,
            node.url,
            registry.address,
            env={"ELICENCE_ANONYMOUS_RATE": "1000000", "ELICENCE_ANONYMOUS_BURST": "1000000"},
        ).start()
        try:
            yield service, batch, key, folder
        finally:
            if service.process is not None and service.process.poll() is None:
                service.stop()
    finally:
        if node.process is not None:
            node.stop()


def test_fuzzing_every_route_gives_no_server_error_and_the_service_survives(served, tmp_path):
    service, batch, key, _ = served
    assert service.process is not None
    routes = service_routes(tmp_path)
    unknown = [r for r, k in routes.items() if k == "unknown"]
    assert unknown == [], f"routes the fuzzer has no maker for: {unknown}"

    payloads = [encode_payload(present(d, [])) for d in batch.documents]
    documents = [d.to_json() for d in batch.documents] + [
        present(d, []).to_json() for d in batch.documents
    ]
    rng = random.Random(SEED)
    inputs = ServiceInputs(rng, payloads, documents, qr_png_bytes(payloads[0]), key)
    makers = []
    for route, kind in sorted(routes.items()):
        maker = {
            "json": inputs.json_probe,
            "multipart": inputs.multipart_probe,
            "get": inputs.get_probe,
            "static": inputs.static_probe,
        }[kind]
        weight = {"json": 10.0, "multipart": 3.0, "get": 1.0, "static": 1.0}[kind]
        makers.append((weight, lambda m=maker, r=route: m(r)))
        makers.append((weight * 0.1, lambda r=route: inputs.header_probe(r)))
    probes = fz.weighted(rng, makers, INPUTS)
    fz.fuzz_and_check(
        "service",
        service.port,
        service.process,
        probes,
        _corpus_probes(),
        routes,
        rss_growth_mb=RSS_GROWTH_MB,
        peak_mb=PEAK_MB,
    )
    # Still serving, and still right.
    answer = httpx.post(f"{service.url}/v1/verifications", json={"qr": payloads[1]}, timeout=60)
    assert answer.status_code == 200 and answer.json()["status"] == "VALID", answer.text


def test_every_service_route_has_corpus_or_maker_coverage(tmp_path):
    """The corpus folders name real routes (a renamed route must not leave them unsent)."""
    routes = service_routes(tmp_path)
    folders = {p.parent.name for p in fz.corpus_files("service")}
    assert {fz.route_of_folder(f) for f in folders} <= set(routes)
