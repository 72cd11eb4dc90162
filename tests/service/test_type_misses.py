"""An anonymous client sending licences that name made-up licence types (or a real type in
a version nobody published) gets the same 422 type-unavailable problem each time, at the
cost of a comparison: the service reads no published definition and no catalogue folder
file again, until a new publication (or folder file) could change the answer. Counted as
reads of the index and of the folder, never timed."""

from __future__ import annotations

import copy
import shutil
from pathlib import Path

from issuer.batch import wrap_batch
from ledger.index import RegistryIndex
from licence.catalogue import catalogue
from licence.catalogue_rules import parse_definition
from licence.payload import encode_payload
from licence.presentation import present
from tests.samples import food_business_licence
from tests.service.conftest import make_service
from tests.verifier.test_type_loading import (  # noqa: F401
    FOOD_V1,
    FOOD_V2,
    TYPES,
    shipped_catalogue_only,
)
from tests.verifier.test_type_loading_misses import OTHERS

REQUESTS = 200


def _type_unavailable(service, document) -> str:
    answer = service.post("/v1/verifications", {"document": document})
    assert answer.status_code == 422, answer.json()
    problem = answer.json()
    assert problem["type"].endswith("/unusable-licence")
    assert problem["reason"] == "type-unavailable"
    return str(problem["detail"])


def _qr_of_an_unpublished_version(service) -> str:
    """The QR text of a food business licence (code 2) under version 60000, which nobody
    published (wrapped with that version held for the wrapping only)."""
    unpublished = parse_definition(copy.deepcopy(FOOD_V1) | {"version": 60000})
    held = catalogue()
    saved = held._by_key
    held.add(unpublished)
    try:
        batch = wrap_batch(
            unpublished,
            [food_business_licence(4)],
            chain_id=service.registry.chain.chain_id,
            registry=service.registry.address,
        )
        return encode_payload(present(batch.documents[0], []))
    finally:
        held._install(saved)


def _qr_type_unavailable(service, qr: str) -> str:
    answer = service.post("/v1/verifications", {"qr": qr})
    assert answer.status_code == 422, answer.json()
    assert answer.json()["reason"] == "type-unavailable"
    return str(answer.json()["detail"])


def test_a_stream_of_licences_of_made_up_types_reads_no_definition_or_folder_file_again(
    tmp_path, registry, governor, agency_key, monkeypatch
):
    registry.publish_licence_types(governor, OTHERS)  # types this service does not hold
    folder = tmp_path / "types"
    shutil.copytree(TYPES, folder)
    definitions: list[tuple[int, int]] = []
    files: list[Path] = []
    read_definition = RegistryIndex.licence_type_definition
    read_bytes = Path.read_bytes

    def counting_definition(self, code, version):
        definitions.append((code, version))
        return read_definition(self, code, version)

    def counting_bytes(self: Path) -> bytes:
        if self.parent == folder:
            files.append(self)
        return read_bytes(self)

    monkeypatch.setattr(RegistryIndex, "licence_type_definition", counting_definition)
    monkeypatch.setattr(Path, "read_bytes", counting_bytes)
    service = make_service(tmp_path, registry, agency_key, catalogue=folder)
    with service.client:
        genuine = service.issue([food_business_licence(1)], "food-business-licence")
        raw = genuine.documents[0].to_json()
        made_up = raw | {"type": "made-up-type"}
        unpublished = raw | {"typeVersion": 60000}
        first = _type_unavailable(service, made_up)
        assert "knows no licence type of that id" in first
        never = _type_unavailable(service, unpublished)
        assert "has not published code 2 version 60000" in never
        qr = _qr_of_an_unpublished_version(service)
        never_qr = _qr_type_unavailable(service, qr)
        assert "has not published code 2 version 60000" in never_qr
        assert len(definitions) <= len(OTHERS) and len(files) <= 20
        read = len(definitions), len(files)
        for i in range(REQUESTS):
            assert _type_unavailable(service, made_up) == first
            assert _type_unavailable(service, unpublished) == never
            assert _qr_type_unavailable(service, qr) == never_qr
            _type_unavailable(service, raw | {"type": f"made-up-{i}"})
        assert (len(definitions), len(files)) == read


def test_a_version_refused_before_its_publication_verifies_on_the_next_request(service, governor):
    batch = wrap_batch(
        FOOD_V2,
        [food_business_licence(2)],
        chain_id=service.registry.chain.chain_id,
        registry=service.registry.address,
    )
    raw = batch.documents[0].to_json()
    for _ in range(3):
        refused = _type_unavailable(service, raw)
        assert "has not published code 2 version 2" in refused
    service.registry.publish_licence_type(governor, FOOD_V2)
    service.registry.anchor(service.agency, batch.root, FOOD_V2.code, 1, type_version=2)
    answer = service.post("/v1/verifications", {"document": raw})
    assert answer.status_code == 200, answer.json()
    assert answer.json()["status"] == "VALID"
