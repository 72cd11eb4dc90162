"""`elicence apikey ...` and `elicence audit`, as the operator runs them."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from cli.app import app
from tests.samples import business_licence
from verifier.service.apikeys import ApiKeyStore

ENV = {"COLUMNS": "200", "NO_COLOR": "1"}


def run(*args):
    return CliRunner().invoke(app, list(args), env=ENV)


def test_key_is_shown_once_listed_by_name_and_revoked(tmp_path):
    home = str(tmp_path / "home")
    created = run(
        "apikey",
        "create",
        "--home",
        home,
        "--name",
        "hz-approvals",
        "--types",
        "business-licence",
        "--fields",
        "licenceNumber,holderName",
    )
    assert created.exit_code == 0, created.output
    key = created.stdout.strip().splitlines()[-1]
    assert key.startswith("elk_") and len(key) > 40
    listed = run("apikey", "list", "--home", home)
    assert "hz-approvals" in listed.output and "business-licence" in listed.output
    assert key not in listed.output
    assert key not in (tmp_path / "home" / "service" / "apikeys.sqlite").read_bytes().decode(
        "latin-1"
    )
    assert run("apikey", "revoke", "hz-approvals", "--home", home).exit_code == 0
    store = ApiKeyStore(tmp_path / "home" / "service" / "apikeys.sqlite")
    assert store.authenticate(key) is None
    assert store.list()[0].revoked is not None
    store.close()


def test_key_for_an_unknown_type_is_refused_naming_it(tmp_path):
    result = run("apikey", "create", "--home", str(tmp_path), "--name", "x", "--types", "passport")
    assert result.exit_code == 2
    assert "passport" in result.output


def test_audit_exports_csv_and_jsonl_filtered_by_client(service):
    batch = service.issue([business_licence(0)])
    service.verify(batch.documents[0], key=service.key("hz"), purpose="case-1")
    service.verify(batch.documents[0])
    home = str(service.home)
    csv_out = run("audit", "--home", home, "--client", "hz", "--format", "csv")
    assert csv_out.exit_code == 0, csv_out.output
    lines = csv_out.stdout.strip().splitlines()
    assert lines[0].startswith("time,client,purpose,licence_id")
    assert len(lines) == 2 and ",hz,case-1," in lines[1]
    jsonl = run(
        "audit",
        "--home",
        home,
        "--licence",
        "0x" + batch.documents[0].licence_id.hex(),
        "--format",
        "jsonl",
        "--since",
        "2000-01-01",
    )
    rows = [json.loads(line) for line in jsonl.stdout.splitlines()]
    assert [r["client"] for r in rows] == ["hz", "anonymous"]
    assert run("audit", "--home", home, "--since", "yesterday").exit_code == 2
