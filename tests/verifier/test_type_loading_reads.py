"""The figure of issue 20: verifying a licence of a type version not yet cached costs at
most one chain read, and none once cached. Counted as JSON-RPC calls reaching a real
embedded node over HTTP (through a counting proxy on 127.0.0.1), not timed."""

from __future__ import annotations

import json
import threading
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from issuer.batch import wrap_batch
from ledger.chain import connect
from ledger.registry import Registry
from licence.catalogue import catalogue
from licence.document import parse_document
from tests.conftest import AGENCY_CODE, AGENCY_NAME, key_for, publish_types, run_elicence
from tests.samples import food_business_licence
from tests.verifier.test_type_loading import FOOD_V2, shipped_catalogue_only  # noqa: F401
from verifier.chain_source import RegistrySource
from verifier.checks import verify
from verifier.type_loading import TypeLoader, parse_loading
from verifier.verdict import Status


class CountingProxy:
    """Forwards JSON-RPC to `target`, keeping the method of every call."""

    def __init__(self, target: str) -> None:
        self.calls: list[str] = []
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                sent = json.loads(body)
                for call in sent if isinstance(sent, list) else [sent]:
                    proxy.calls.append(call["method"])
                request = urllib.request.Request(target, body, {"Content-Type": "application/json"})
                with urllib.request.urlopen(request, timeout=30) as answer:
                    data = answer.read()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def proxy(embedded_node_url) -> Iterator[CountingProxy]:
    counting = CountingProxy(embedded_node_url)
    try:
        yield counting
    finally:
        counting.close()


def _anchored(registry, agency, licence_type, index):
    batch = wrap_batch(
        licence_type,
        [food_business_licence(index)],
        chain_id=registry.chain.chain_id,
        registry=registry.address,
    )
    registry.anchor(agency, batch.root, licence_type.code, 1, type_version=licence_type.version)
    return batch.documents[0]


@pytest.fixture
def on_node(embedded_node_url):
    """A registry on the node publishing food business licence versions 1 and 2, and a
    licence of each anchored (the second as JSON: this installation lacks version 2)."""
    chain = connect(embedded_node_url)
    governor, agency = key_for("reads-governor"), key_for("reads-agency")
    registry = Registry.deploy(chain, governor)  # the node tops the keys up
    publish_types(registry, governor, [FOOD_V2.code])
    registry.register_agency(governor, AGENCY_CODE, AGENCY_NAME, agency.address, [FOOD_V2.code])
    registry.publish_licence_type(governor, FOOD_V2)
    shipped = _anchored(registry, agency, catalogue().get("food-business-licence", 1), 0)
    raw = _anchored(registry, agency, FOOD_V2, 1).to_json()
    assert not catalogue().has("food-business-licence", 2)
    return registry, shipped, raw


def test_an_uncached_type_version_costs_one_chain_read_and_a_cached_one_none(on_node, proxy):
    registry, shipped, raw = on_node

    counted = RegistrySource(Registry.at(connect(proxy.url), registry.address))
    proxy.calls.clear()
    document = parse_loading(lambda: parse_document(raw), lambda: TypeLoader([counted]))
    assert proxy.calls == ["eth_getLogs"]  # exactly one read: the publication's event

    proxy.calls.clear()
    assert parse_loading(lambda: parse_document(raw), lambda: TypeLoader([counted])) is not None
    assert proxy.calls == []  # cached

    # The whole verification of the loaded version reads no more than that of a shipped one.
    proxy.calls.clear()
    assert verify(shipped, counted).status is Status.VALID
    shipped_reads = len(proxy.calls)
    proxy.calls.clear()
    assert verify(document, counted).status is Status.VALID
    assert 1 + len(proxy.calls) <= shipped_reads + 1


def test_elicence_verify_loads_a_published_version_and_cannot_check_an_unpublished_one(
    on_node, embedded_node_url, tmp_path
):
    registry, _, raw = on_node
    trusted = ["--chain", embedded_node_url, "--registry", registry.address]
    document = tmp_path / "v2.json"
    document.write_text(json.dumps(raw, ensure_ascii=False), "utf-8")
    valid = run_elicence("verify", str(document), *trusted)
    assert valid.returncode == 0, valid.stdout + valid.stderr
    assert "VALID" in valid.stdout

    unpublished = tmp_path / "v9.json"
    unpublished.write_text(json.dumps({**raw, "typeVersion": 9}, ensure_ascii=False), "utf-8")
    result = run_elicence("verify", str(unpublished), *trusted)
    assert result.returncode == 3, result.stdout + result.stderr  # could not check
    assert "has not published code 2 version 9" in result.stderr
    assert "TAMPERED" not in result.stdout + result.stderr
