"""The `elicence` command, run as a user runs it: a real process against a real anvil node."""

from __future__ import annotations

import json

import pytest
from typer.main import get_command
from typer.testing import CliRunner

from cli.app import app
from issuer.status import revoke
from ledger.chain import connect
from ledger.registry import Registry
from licence.catalogue import catalogue
from licence.reasons import Reason
from tests.conftest import (
    AGENCY_CODE,
    AGENCY_NAME,
    ANVIL_FAUCET_KEY,
    free_port,
    key_for,
    publish_types,
)
from tests.conftest import run_elicence as run
from tests.samples import business_licence
from verifier.demo import issue_demo


def test_help_lists_the_subcommands():
    result = run("--help")
    assert result.returncode == 0
    for command in ("verify", "demo", "catalogue"):
        assert command in result.stdout


def _command_paths(group, prefix=()):
    # The commands people type; hidden ones are started by other commands.
    for name, command in sorted(group.commands.items()):
        if command.hidden:
            continue
        if hasattr(command, "commands"):
            yield from _command_paths(command, (*prefix, name))
        else:
            yield (*prefix, name)


@pytest.mark.parametrize("path", list(_command_paths(get_command(app))), ids=" ".join)
def test_every_command_has_help_with_an_example(path):
    result = CliRunner().invoke(app, [*path, "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    assert "Example:" in result.output


def test_catalogue_lists_the_types_with_chinese_labels():
    result = CliRunner().invoke(app, ["catalogue"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    assert "营业执照" in result.output and "市场监督管理局" in result.output


@pytest.fixture(scope="module")
def on_anvil(anvil_url, tmp_path_factory):
    """Two business licences issued on anvil, one of them revoked."""
    chain = connect(anvil_url, faucet_key=ANVIL_FAUCET_KEY)
    governor, agency = key_for("cli-governor"), key_for("cli-agency")
    for account in (governor, agency):
        chain.fund(account.address, 10**20)
    registry = Registry.deploy(chain, governor)
    publish_types(registry, governor, [1])
    registry.register_agency(governor, AGENCY_CODE, AGENCY_NAME, agency.address, [1])
    out = tmp_path_factory.mktemp("licences")
    batch = issue_demo(
        registry,
        agency,
        catalogue().get("business-licence"),
        [business_licence(i) for i in range(2)],
        out,
    )
    revoke(registry, agency, batch.documents[1], Reason.COURT_ORDER)
    return anvil_url, registry.address, batch


def test_valid_licence_exits_0(on_anvil):
    url, address, batch = on_anvil
    result = run("verify", str(batch.paths[0]), "--chain", url, "--registry", address)
    assert result.returncode == 0, result.stderr
    assert "VALID" in result.stdout and "深圳福田第0号科技有限公司" in result.stdout


def test_revoked_licence_exits_1_with_its_reason(on_anvil):
    url, address, batch = on_anvil
    result = run("verify", str(batch.paths[1]), "--chain", url, "--registry", address)
    assert result.returncode == 1
    assert "REVOKED" in result.stdout and "人民法院裁判" in result.stdout


def test_json_verdict_from_standard_input(on_anvil):
    url, address, batch = on_anvil
    result = run(
        "verify",
        "-",
        "--chain",
        url,
        "--registry",
        address,
        "--json",
        stdin=batch.paths[0].read_bytes(),
    )
    assert result.returncode == 0, result.stderr
    body = json.loads(result.stdout)
    assert body["status"] == "VALID"
    assert body["anchor"]["registry"] == address


def test_without_a_trusted_registry_verify_refuses_instead_of_trusting_the_document(on_anvil):
    url, _, batch = on_anvil
    result = run("verify", str(batch.paths[0]), "--chain", url)
    assert result.returncode == 2
    assert "no trusted registry configured" in result.stderr


def test_tampered_file_exits_1(on_anvil, tmp_path):
    url, address, batch = on_anvil
    raw = json.loads(batch.paths[0].read_text())
    raw["fields"]["registeredCapital"] = "9999万元人民币"
    forged = tmp_path / "forged.json"
    forged.write_text(json.dumps(raw, ensure_ascii=False))
    result = run("verify", str(forged), "--chain", url, "--registry", address)
    assert result.returncode == 1
    assert "TAMPERED" in result.stdout
    assert "9999万元" not in result.stdout  # an altered licence's fields are not shown


@pytest.mark.parametrize(
    ("content", "words"),
    [
        (b"{oops", "not JSON"),
        (b'{"format": "elicence/1"}', "anchor: is missing"),
        (b"[]", "must be a JSON object"),
    ],
)
def test_malformed_document_exits_2_naming_the_problem(on_anvil, tmp_path, content, words):
    url, address, _ = on_anvil
    bad = tmp_path / "bad.json"
    bad.write_bytes(content)
    result = run("verify", str(bad), "--chain", url, "--registry", address)
    assert result.returncode == 2
    assert words in result.stderr
    assert "Traceback" not in result.stderr


def test_missing_file_exits_2(on_anvil, tmp_path):
    url, address, _ = on_anvil
    result = run("verify", str(tmp_path / "nowhere.json"), "--chain", url, "--registry", address)
    assert result.returncode == 2
    assert "cannot read" in result.stderr


def test_unreachable_chain_exits_3_could_not_check(on_anvil):
    _, address, batch = on_anvil
    dead = f"http://127.0.0.1:{free_port()}"
    result = run("verify", str(batch.paths[0]), "--chain", dead, "--registry", address)
    assert result.returncode == 3
    assert "could not check" in result.stderr
    assert "Traceback" not in result.stderr


def test_address_without_registry_exits_2(on_anvil):
    url, _, batch = on_anvil
    nobody = "0x000000000000000000000000000000000000dEaD"
    result = run("verify", str(batch.paths[0]), "--chain", url, "--registry", nobody)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr


def test_document_from_another_chain_exits_2(on_anvil, tmp_path):
    url, address, batch = on_anvil
    raw = json.loads(batch.paths[0].read_text())
    raw["anchor"]["chainId"] = 1
    moved = tmp_path / "moved.json"
    moved.write_text(json.dumps(raw))
    result = run("verify", str(moved), "--chain", url, "--registry", address)
    assert result.returncode == 2
    assert "names registry" in result.stderr and "on chain 1," in result.stderr


def test_demo_prints_the_three_verdicts_and_where_the_documents_are(tmp_path):
    result = run("demo", "--out", str(tmp_path / "demo"))
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert out.index("VALID") < out.index("TAMPERED") < out.index("REVOKED")
    assert str(tmp_path / "demo") in out
    written = sorted(p.name for p in (tmp_path / "demo").glob("*.json"))
    assert len([n for n in written if not n.startswith("batch-")]) == 5
    assert (tmp_path / "demo" / "tampered").is_dir()
