"""Licences of a type version the verifier does not ship: loaded from the registry (or a
catalogue folder, checked against the registry's hash), refused when a copy differs,
"could not check" when nothing can be loaded, and TAMPERED when the document names
another version than its batch was anchored under."""

from __future__ import annotations

import copy
import dataclasses
import json
from pathlib import Path

import pytest

from licence.catalogue import catalogue
from licence.catalogue_rules import parse_definition
from licence.document import parse_document
from licence.errors import UnknownTypeVersion
from tests.samples import REMARKS_FIELD, food_business_licence
from verifier.checks import verify
from verifier.errors import DefinitionMismatch, TypeUnavailable
from verifier.type_loading import TypeLoader, parse_loading
from verifier.verdict import CheckName, Outcome, Status

TYPES = Path(__file__).parents[2] / "licence" / "licence_types"
FOOD_V1 = json.loads((TYPES / "food-business-licence.json").read_text("utf-8"))
REMARKS = REMARKS_FIELD


def _food_v2(label: str = "备注"):
    raw = copy.deepcopy(FOOD_V1)
    raw["version"] = 2
    raw["fields"].append({**REMARKS, "label": {"zh": label, "en": "Remarks"}})
    return raw


FOOD_V2 = parse_definition(_food_v2())
# The catalogue as the package ships it, read anew (catalogue() is the cached one).
SHIPPED = catalogue.__wrapped__()._by_key


@pytest.fixture(autouse=True)
def shipped_catalogue_only():
    """Every test starts from the shipped catalogue and leaves it so: what a test loads
    must not make another test's verifier hold it."""
    held = catalogue()
    saved = held._by_key
    held._install(SHIPPED)
    yield
    held._install(saved)


def _issue_v2(world, *, anchored_version: int = 2):
    """A batch of food business licences wrapped under version 2, anchored as
    `anchored_version`; its first document as JSON (the catalogue does not hold v2)."""
    world.registry.publish_licence_type(world.governor, FOOD_V2)
    batch = world.wrap([food_business_licence(i) for i in range(3)], "food-business-licence")
    assert not catalogue().has("food-business-licence", 2)
    world.registry.anchor(
        world.agency, batch.root, FOOD_V2.code, len(batch.documents), type_version=anchored_version
    )
    return batch.documents[0].to_json()


@pytest.fixture
def v2_world(world, monkeypatch):
    # World.wrap looks the type up in the catalogue: give it v2 for the wrapping only.
    original = world.wrap

    def wrap(rows, type_id="business-licence"):
        catalogue().add(FOOD_V2)
        try:
            return original(rows, type_id)
        finally:
            held = catalogue()
            held._install({k: v for k, v in held._by_key.items() if k != FOOD_V2.key})

    monkeypatch.setattr(world, "wrap", wrap)
    return world


def test_a_licence_of_a_version_published_on_chain_is_loaded_from_the_chain_and_verifies(
    v2_world,
):
    raw = _issue_v2(v2_world)
    assert raw["typeVersion"] == 2
    with pytest.raises(UnknownTypeVersion):
        parse_document(raw)
    document = parse_loading(lambda: parse_document(raw), lambda: TypeLoader([v2_world.registry]))
    assert document.licence_type.version == 2
    assert document.licence_type.definition_hash == FOOD_V2.definition_hash
    verdict = verify(document, v2_world.source)
    assert verdict.status is Status.VALID, verdict.to_json()
    # Cached: the next licence of that version parses without a loader.
    assert parse_document(raw).licence_type.version == 2


def test_a_folder_copy_whose_hash_differs_from_the_chains_is_refused_naming_both(
    v2_world, tmp_path
):
    raw = _issue_v2(v2_world)
    other = _food_v2(label="附注")  # one label changed: another definition
    (tmp_path / "food-business-licence-v2.json").write_text(
        json.dumps(other, ensure_ascii=False), "utf-8"
    )
    loader = TypeLoader([v2_world.registry], folder=tmp_path)
    with pytest.raises(DefinitionMismatch) as refused:
        parse_loading(lambda: parse_document(raw), lambda: loader)
    exc = refused.value
    assert exc.recorded == FOOD_V2.definition_hash
    assert exc.found == parse_definition(other).definition_hash
    message = str(exc)
    for named in ("food-business-licence-v2.json", "code 2", "version 2"):
        assert named in message
    assert "0x" + FOOD_V2.definition_hash.hex() in message
    assert "0x" + exc.found.hex() in message
    assert not catalogue().has("food-business-licence", 2)


def test_a_folder_copy_matching_the_chain_is_loaded_without_reading_the_event(v2_world, tmp_path):
    raw = _issue_v2(v2_world)
    (tmp_path / "food.json").write_text(json.dumps(_food_v2(), ensure_ascii=False), "utf-8")
    loader = TypeLoader([v2_world.registry], folder=tmp_path)
    document = parse_loading(lambda: parse_document(raw), lambda: loader)
    assert verify(document, v2_world.source).status is Status.VALID


def test_a_version_the_chain_never_published_could_not_be_checked_and_is_not_tampered(world):
    issued = world.issue([food_business_licence(0)], "food-business-licence")
    raw = issued.documents[0].to_json()
    raw["typeVersion"] = 3
    with pytest.raises(TypeUnavailable) as unavailable:
        parse_loading(lambda: parse_document(raw), lambda: TypeLoader([world.registry]))
    assert not isinstance(unavailable.value, DefinitionMismatch)
    assert unavailable.value.version == 3
    assert "has not published code 2 version 3" in str(unavailable.value)
    assert "could not be checked" in str(unavailable.value)


def test_a_licence_naming_another_version_than_its_anchor_is_tampered(v2_world):
    # Wrapped under v2, anchored as v1: the document's version is not its batch's.
    raw = _issue_v2(v2_world, anchored_version=1)
    document = parse_loading(lambda: parse_document(raw), lambda: TypeLoader([v2_world.registry]))
    verdict = verify(document, v2_world.source)
    assert verdict.status is Status.TAMPERED
    issuer = next(c for c in verdict.checks if c.name is CheckName.ISSUER)
    assert issuer.outcome is Outcome.FAILED
    assert issuer.wording is not None
    assert issuer.wording.code == "issuer.other-type-version"
    assert dict(issuer.wording.params) == {
        "anchoredVersion": 1,
        "licenceType": "food-business-licence",
        "typeVersion": 2,
    }
    assert "version 1" in issuer.reason and "version 2" in issuer.reason


def test_a_catalogue_version_already_held_is_never_read_again(world):
    class Refusing:
        def licence_type(self, code, version):
            raise AssertionError("read")

        licence_type_definition = licence_type

    held = TypeLoader([Refusing()]).load("food-business-licence", 1)
    assert held is catalogue().get("food-business-licence", 1)


def test_adding_a_version_defined_otherwise_is_refused_by_the_catalogue():
    from licence.errors import CatalogueError

    catalogue().add(FOOD_V2)
    catalogue().add(FOOD_V2)  # the same definition again: nothing happens
    other = parse_definition(_food_v2(label="附注"))
    with pytest.raises(CatalogueError, match="defined twice"):
        catalogue().add(other)
    clash = dataclasses.replace(FOOD_V2, id="another-food-licence")
    with pytest.raises(CatalogueError, match="code 2 is both"):
        catalogue().add(clash)
    assert catalogue().get("food-business-licence", 2) is FOOD_V2
    assert catalogue().get("food-business-licence") is FOOD_V2  # the current version


def test_catalogue_add_from_many_threads_keeps_every_version():
    from concurrent.futures import ThreadPoolExecutor

    versions = []
    for version in range(2, 42):
        raw = copy.deepcopy(FOOD_V1)
        raw["version"] = version
        versions.append(parse_definition(raw))
    held = catalogue()
    saved = held._by_key
    try:
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(held.add, versions))
        assert [t.version for t in held.versions("food-business-licence")] == list(range(1, 42))
        assert held.get("food-business-licence").version == 41
    finally:
        held._install(saved)


@pytest.fixture
def served():
    """An HTTP server on 127.0.0.1 answering paths from a dict (404 otherwise)."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    pages: dict[str, bytes] = {}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = pages.get(self.path)
            self.send_response(200 if body is not None else 404)
            self.send_header("Content-Length", str(len(body or b"")))
            self.end_headers()
            self.wfile.write(body or b"")

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield pages, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_a_url_copy_is_loaded_when_its_hash_is_the_registrys_and_refused_otherwise(
    v2_world, served
):
    raw = _issue_v2(v2_world)
    pages, base = served
    template = base + "/types/{code}/{version}.json"
    pages["/types/2/2.json"] = json.dumps(_food_v2(label="附注"), ensure_ascii=False).encode()
    loader = TypeLoader([v2_world.registry], url=template)
    with pytest.raises(DefinitionMismatch, match=r"/types/2/2\.json"):
        parse_loading(lambda: parse_document(raw), lambda: loader)
    pages["/types/2/2.json"] = json.dumps(_food_v2(), ensure_ascii=False, indent=2).encode()
    document = parse_loading(lambda: parse_document(raw), lambda: loader)
    assert verify(document, v2_world.source).status is Status.VALID


def test_a_url_that_answers_too_much_or_nothing_leaves_the_licence_unchecked(v2_world, served):
    from verifier.type_loading import MAX_DEFINITION_BYTES

    raw = _issue_v2(v2_world)
    pages, base = served
    loader = TypeLoader([v2_world.registry], url=base + "/{id}-v{version}.json")
    with pytest.raises(TypeUnavailable, match="404"):
        parse_loading(lambda: parse_document(raw), lambda: loader)
    pages["/food-business-licence-v2.json"] = b" " * (MAX_DEFINITION_BYTES + 1)
    with pytest.raises(TypeUnavailable, match=f"more than {MAX_DEFINITION_BYTES} bytes"):
        parse_loading(lambda: parse_document(raw), lambda: loader)


@pytest.mark.parametrize(
    "url",
    [
        "http://example.org/{code}/{version}.json",
        "http://localhost/{code}/{version}.json",
        "ftp://127.0.0.1/{code}.json",
        "file:///etc/{code}.json",
    ],
)
def test_a_catalogue_url_must_be_https_or_local_http(url):
    with pytest.raises(ValueError, match="https"):
        TypeLoader([], url=url)


def test_a_verifier_holding_another_definition_of_a_published_version_cannot_check(world):
    # The registry publishes FOOD_V2; this verifier holds a v2 with one label changed.
    world.registry.publish_licence_type(world.governor, FOOD_V2)
    local = parse_definition(_food_v2(label="附注"))
    catalogue().add(local)
    batch = world.wrap([food_business_licence(5)], "food-business-licence")
    world.registry.anchor(world.agency, batch.root, FOOD_V2.code, 1, type_version=2)
    with pytest.raises(DefinitionMismatch) as refused:
        verify(batch.documents[0], world.source)
    assert refused.value.recorded == FOOD_V2.definition_hash
    assert refused.value.found == local.definition_hash
    assert "this verifier's catalogue" in str(refused.value)
