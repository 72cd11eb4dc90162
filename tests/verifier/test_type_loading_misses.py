"""An attacker's stream of licences naming made-up types (or real types in versions nobody
published) costs the verifier almost nothing per licence: what the loader parsed and what
it could not load are remembered, until a new publication (or a new catalogue folder
file) could change the answer. Counted as definitions read from the index and files read
from the folder, never timed."""

from __future__ import annotations

import asyncio
import copy
import json
import shutil
from pathlib import Path

import pytest

from ledger.index import RegistryIndex
from licence.catalogue import catalogue
from licence.catalogue_rules import parse_definition
from tests.conftest import publish_types
from tests.verifier.test_type_loading import (  # noqa: F401
    FOOD_V1,
    FOOD_V2,
    TYPES,
    _food_v2,
    shipped_catalogue_only,
)
from verifier.errors import TypeUnavailable
from verifier.type_loading import TypeLoader

REQUESTS = 1000
# Types other installations use: published in the registry, absent from this catalogue.
OTHERS = [
    parse_definition(copy.deepcopy(FOOD_V1) | {"id": f"other-type-{k}", "code": 200 + k})
    for k in range(5)
]


class Counted:
    """The index as a TypeLoader reads it, counting the definitions it hands out."""

    def __init__(self, index: RegistryIndex) -> None:
        self.index = index
        self.definitions = 0

    def licence_type(self, code, version):
        return self.index.licence_type(code, version)

    def licence_type_definition(self, code, version):
        self.definitions += 1
        return self.index.licence_type_definition(code, version)

    def published_types(self):
        return self.index.published_types()

    def anchor_of(self, root):
        return self.index.anchor_of(root)


@pytest.fixture
def index(tmp_path, registry, governor) -> RegistryIndex:
    """An index of a registry publishing all 20 shipped types and 5 types this verifier
    does not hold."""
    publish_types(registry, governor)
    registry.publish_licence_types(governor, OTHERS)
    made = RegistryIndex(tmp_path / "index.sqlite", registry)
    made.catch_up()
    assert len(made.published_types()) == 25
    return made


@pytest.fixture
def folder(tmp_path) -> Path:
    """A catalogue folder holding a copy of each of the 20 shipped definitions."""
    copies = tmp_path / "types"
    shutil.copytree(TYPES, copies)
    assert len(list(copies.glob("*.json"))) == 20
    return copies


@pytest.fixture
def folder_reads(monkeypatch, folder) -> list[Path]:
    """Every read of a file of the catalogue folder."""
    reads: list[Path] = []
    original = Path.read_bytes

    def counting(self: Path) -> bytes:
        if self.parent == folder:
            reads.append(self)
        return original(self)

    monkeypatch.setattr(Path, "read_bytes", counting)
    return reads


def _refused(loader: TypeLoader, type_ref: str | int, version: int) -> str:
    with pytest.raises(TypeUnavailable) as refused:
        loader.load(type_ref, version)
    return str(refused.value)


def test_a_thousand_made_up_type_ids_parse_each_published_definition_at_most_once(index):
    counted = Counted(index)
    loader = TypeLoader([counted])
    first = _refused(loader, "made-up-type", 1)
    assert "knows no licence type of that id" in first
    # The first miss may read each definition this catalogue lacks, once.
    assert counted.definitions <= len(OTHERS)
    after_first = counted.definitions
    for i in range(REQUESTS):
        assert _refused(loader, "made-up-type", 1) == first
        assert "knows no licence type" in _refused(loader, f"made-up-{i}", 1)
    assert counted.definitions == after_first


def test_a_real_code_in_a_version_nobody_published_is_refused_without_reading_the_index(index):
    counted = Counted(index)
    loader = TypeLoader([counted])
    for ref in (2, "food-business-licence"):
        for _ in range(REQUESTS):
            detail = _refused(loader, ref, 60000)
            assert "has not published code 2 version 60000" in detail
    assert counted.definitions <= 1


def test_a_catalogue_folder_is_read_once_for_any_number_of_made_up_ids(index, folder, folder_reads):
    loader = TypeLoader([index], folder=folder)
    first = _refused(loader, "made-up-type", 1)
    assert len(folder_reads) <= 20
    read_once = len(folder_reads)
    for i in range(REQUESTS):
        assert _refused(loader, "made-up-type", 1) == first
        _refused(loader, f"made-up-{i}", 1)
        _refused(loader, 2, 60000 + i % 3)
    assert len(folder_reads) == read_once


def test_a_file_added_to_the_folder_after_a_miss_is_loaded_on_the_next_licence(
    index, registry, governor, folder, folder_reads
):
    registry.publish_licence_type(governor, FOOD_V2)
    index.catch_up()
    loader = TypeLoader([index], folder=folder)
    for _ in range(REQUESTS):
        assert "holds no definition of code 2 version 2" in _refused(
            loader, "food-business-licence", 2
        )
    assert len(folder_reads) <= 20
    (folder / "food-business-licence-v2.json").write_text(
        json.dumps(_food_v2(), ensure_ascii=False), "utf-8"
    )
    loaded = loader.load("food-business-licence", 2)
    assert loaded.definition_hash == FOOD_V2.definition_hash
    assert catalogue().get("food-business-licence", 2) is loaded


def test_a_version_published_after_a_miss_is_loaded_on_the_first_licence_after_the_index_has_it(
    index, registry, governor
):
    counted = Counted(index)
    loader = TypeLoader([counted])
    for _ in range(REQUESTS):
        _refused(loader, "food-business-licence", 2)
        _refused(loader, "harbour-food-licence", 1)
    registry.publish_licence_type(governor, FOOD_V2)
    harbour = copy.deepcopy(FOOD_V1) | {"id": "harbour-food-licence", "code": 99}
    registry.publish_licence_type(governor, parse_definition(harbour))
    # Published on chain, not yet in the index: still a miss (this verifier trusts the
    # index's confirmed view), and still answered from memory.
    _refused(loader, "food-business-licence", 2)
    index.catch_up()
    assert loader.load("food-business-licence", 2).definition_hash == FOOD_V2.definition_hash
    assert loader.load("harbour-food-licence", 1).code == 99


def test_the_misses_remembered_are_bounded(index):
    loader = TypeLoader([index], keep_misses=50)
    for i in range(500):
        _refused(loader, f"made-up-{i}", 1)
    assert loader.misses_remembered <= 50
    # The newest are kept: the last one is answered from memory.
    assert loader.remembered(f"made-up-{499}", 1) is not None


def test_concurrent_licences_of_one_unknown_type_take_one_thread_and_a_known_miss_none(index):
    loader = TypeLoader([index])
    threads: list[tuple[str | int, int]] = []
    original = loader.load

    def counting(type_ref, version, *, anchor_root=None):
        threads.append((type_ref, version))
        return original(type_ref, version, anchor_root=anchor_root)

    loader.load = counting  # type: ignore[method-assign]

    async def stream(count: int) -> list[BaseException | object]:
        asks = [loader.load_async("made-up-type", 1) for _ in range(count)]
        return await asyncio.gather(*asks, return_exceptions=True)

    answers = asyncio.run(stream(50))
    assert all(isinstance(a, TypeUnavailable) for a in answers)
    assert threads == [("made-up-type", 1)]
    answers = asyncio.run(stream(REQUESTS))
    assert all(isinstance(a, TypeUnavailable) for a in answers)
    assert threads == [("made-up-type", 1)]  # answered on the event loop

    async def made_up(count: int) -> list[BaseException | object]:
        asks = [loader.load_async(f"made-up-{i}", 1) for i in range(count)]
        asks += [loader.load_async(2, 60000 + i) for i in range(count)]
        asks += [loader.load_async("food-business-licence", 60000 + i) for i in range(count)]
        return await asyncio.gather(*asks, return_exceptions=True)

    # What the first load read shows these are not published: no thread either.
    answers = asyncio.run(made_up(REQUESTS))
    assert all(isinstance(a, TypeUnavailable) for a in answers)
    assert threads == [("made-up-type", 1)]


def test_a_type_id_longer_than_any_definition_allows_is_refused_at_once_and_not_kept(index):
    counted = Counted(index)
    loader = TypeLoader([counted])
    for i in range(REQUESTS):
        detail = _refused(loader, f"{i}-" + "x" * 100_000, 1)
        assert "no licence type id is longer than 64 characters" in detail
        assert len(detail) < 1000  # the id is not echoed whole
    assert loader.misses_remembered == 0
    assert counted.definitions == 0
