"""Every test here runs on both of issuing's paths, compiled and Python (tests/issuing_paths.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.issuing_paths import PATHS, issuing_path


@pytest.fixture(scope="module", autouse=True, params=PATHS)
def each_issuing_path(request: pytest.FixtureRequest) -> Iterator[str]:
    with issuing_path(request.param):
        yield request.param
