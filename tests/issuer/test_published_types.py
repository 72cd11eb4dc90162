"""An agency issues only under a type version the registry published, with the very
definition it holds: otherwise verifiers would hash its licences under another field list."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from issuer.anchoring import authorised_agency
from issuer.errors import IssuingError
from licence.catalogue import catalogue
from licence.catalogue_rules import parse_definition
from tests.conftest import AGENCY_ID

TYPES = Path(__file__).parents[2] / "licence" / "licence_types"
FOOD_V1 = json.loads((TYPES / "food-business-licence.json").read_text("utf-8"))


def test_an_agency_may_issue_a_published_version_it_holds_as_published(registry, agency_key):
    food = catalogue().get("food-business-licence")
    assert authorised_agency(registry, agency_key, food) == AGENCY_ID


def test_an_agency_cannot_issue_a_type_whose_local_definition_differs_from_the_published(
    chain, registry, agency_key
):
    raw = copy.deepcopy(FOOD_V1)
    raw["fields"][-1]["label"]["zh"] = "其他说明"  # a local edit, same code and version
    local = parse_definition(raw)
    published = catalogue().get("food-business-licence")
    height = chain.block_number()
    with pytest.raises(IssuingError) as refused:
        authorised_agency(registry, agency_key, local)
    message = str(refused.value)
    assert "0x" + local.definition_hash.hex() in message
    assert "0x" + published.definition_hash.hex() in message
    assert "food-business-licence" in message and "version 1" in message
    assert "nothing was issued" in message
    assert chain.block_number() == height  # no transaction


def test_an_agency_cannot_issue_a_version_the_registry_never_published(registry, agency_key):
    raw = copy.deepcopy(FOOD_V1)
    raw["version"] = 2
    with pytest.raises(IssuingError, match="version 2 is not published"):
        authorised_agency(registry, agency_key, parse_definition(raw))
