"""docs/api.md's table of settings says what verifier/service/settings.py does."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest

from cli.service import serve
from verifier.service.settings import Settings

REPO = Path(__file__).resolve().parents[2]
API_DOC = REPO / "docs" / "api.md"
# Rows for variables the service reads outside Settings, and where they are read.
ELSEWHERE = {
    "ELICENCE_CHAIN_ID": REPO / "ledger" / "config.py",
    "ELICENCE_WORKERS": REPO / "cli" / "service.py",
}


def _table() -> dict[str, tuple[str, str]]:
    """variable -> (default cell, meaning cell) of the table under `## Settings`."""
    section = API_DOC.read_text("utf-8").split("\n## Settings\n", 1)[1].split("\n## ", 1)[0]
    rows: dict[str, tuple[str, str]] = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 4 and cells[1].startswith("`ELICENCE_"):
            rows[cells[1].strip("`")] = (cells[2].strip("`"), cells[3])
    return rows


def _written(value: object) -> str:
    if value is None:
        return "none"
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)


def _default(name: str, monkeypatch: pytest.MonkeyPatch) -> str:
    spec = Settings.model_fields[name]
    if spec.default_factory is None:
        return _written(spec.default)
    monkeypatch.delenv(f"ELICENCE_{name.upper()}", raising=False)
    made = spec.default_factory()  # type: ignore[call-arg]
    return str(made).replace(str(Path.home()), "~", 1)


def test_every_setting_has_a_row_with_its_variable_and_default(monkeypatch):
    assert Settings.model_config.get("env_prefix") == "ELICENCE_"
    table = _table()
    for name in Settings.model_fields:
        variable = f"ELICENCE_{name.upper()}"
        assert variable in table, f"docs/api.md's settings table has no row for {variable}"
        default, meaning = table[variable]
        assert default == _default(name, monkeypatch), variable
        assert meaning, variable


def test_every_row_names_a_variable_the_service_reads():
    table = _table()
    settings = {f"ELICENCE_{name.upper()}" for name in Settings.model_fields}
    for variable in table.keys() - settings:
        assert variable in ELSEWHERE, f"{variable} is in docs/api.md but read nowhere known"
        assert re.search(rf"\b{variable}\b", ELSEWHERE[variable].read_text("utf-8")), variable


def test_the_workers_row_gives_serves_own_default():
    default = inspect.signature(serve).parameters["workers"].default
    assert _table()["ELICENCE_WORKERS"][0] == str(default)


def test_confirmation_depth_is_documented():
    default, meaning = _table()["ELICENCE_CONFIRMATIONS"]
    assert default == "0" and "blocks" in meaning
