"""API key names: an approval system's display name, in Chinese as it is called."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from cli.app import app
from verifier.service.apikeys import NAME_RULE, ApiKeyStore, name_problem
from verifier.service.errors import InvalidRequest

ENV = {"COLUMNS": "200", "NO_COLOR": "1"}
CHINESE = "广州市市场监督管理局审批系统"


def run(*args: str):
    return CliRunner().invoke(app, list(args), env=ENV)


def test_chinese_display_name_is_created_listed_and_revoked_from_the_command_line(tmp_path):
    home = str(tmp_path / "home")
    created = run("apikey", "create", "--home", home, "--name", CHINESE)
    assert created.exit_code == 0, created.output
    assert created.stdout.strip().splitlines()[-1].startswith("elk_")
    assert CHINESE in run("apikey", "list", "--home", home).output
    assert run("apikey", "revoke", CHINESE, "--home", home).exit_code == 0


@pytest.mark.parametrize(
    "name",
    [
        CHINESE,
        "hz-approvals",
        "深圳 一网通办 v2.1",
        "阿卜杜·热合曼审批",
        "a",
        "x" * 64,
        "Ｇｕａｎｇｚｈｏｕ",  # full-width letters are letters
    ],
)
def test_display_names_of_letters_digits_spaces_and_marks_are_allowed(name):
    assert name_problem(name) is None


@pytest.mark.parametrize(
    ("name", "why"),
    [
        ("", "empty"),
        ("x" * 65, "over 64 characters"),
        (" leading", "starts with a space"),
        ("trailing-", "ends with a mark"),
        ("tab\there", "a control character"),
        ("line\nbreak", "a line break"),
        ("审批\u202e系统", "a bidi override that reverses how the name reads"),
        ("zero\u200bwidth", "an invisible zero-width space"),
        ("a;DROP TABLE", "punctuation that is not in the rule"),
        ("审批系统🙂", "an emoji"),
    ],
)
def test_names_outside_the_rule_are_refused_saying_the_rule(tmp_path, name, why):
    store = ApiKeyStore(tmp_path / "apikeys.sqlite")
    try:
        with pytest.raises(InvalidRequest) as refused:
            store.create(name)
    finally:
        store.close()
    assert [(e.path, e.message) for e in refused.value.errors] == [("name", NAME_RULE)], why


def test_the_command_line_refusal_says_what_is_allowed(tmp_path):
    result = run("apikey", "create", "--home", str(tmp_path), "--name", "审批\u202e系统")
    assert result.exit_code == 2
    assert "Chinese too" in result.output and "- _ . ·" in result.output
