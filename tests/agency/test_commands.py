"""The agency commands as an official runs them: real `elicence` processes, a real node."""

from __future__ import annotations

import json
import shlex
import stat

import pytest

from ledger.config import HomeConfig
from licence.catalogue import catalogue
from tests.agency.conftest import PASSPHRASE, write_csv
from tests.samples import business_licence, food_business_licence

pytestmark = pytest.mark.slow

BUSINESS = catalogue().get("business-licence")


def test_issue_revoke_records_and_verify_by_licence_number(node_agency, tmp_path):
    rows = [
        {BUSINESS.field(n).label.zh: v for n, v in business_licence(i).items()}  # type: ignore[union-attr]
        for i in range(3)
    ]
    source = write_csv(tmp_path / "营业执照.csv", rows)
    out = tmp_path / "out"
    issued = node_agency.run("issue", str(source), "--type", "business-licence", "--out", str(out))
    assert issued.returncode == 0, issued.stderr
    assert "3 营业执照 in 1 batch(es)" in issued.stdout
    assert (out / "110108000000000001.png").exists()
    assert stat.S_IMODE((out / "110108000000000001.json").stat().st_mode) == 0o600

    revoked = node_agency.run("revoke", "110108000000000001", "--reason", "ADMINISTRATIVE_PENALTY")
    assert revoked.returncode == 0, revoked.stderr

    listed = node_agency.run("records", "--status", "revoked", "--json")
    assert [json.loads(line)["licenceNumber"] for line in listed.stdout.splitlines()] == [
        "110108000000000001"
    ]
    verdict = node_agency.run(
        "verify", str(out / "110108000000000001.json"), "--chain", node_agency.node.url, "--json"
    )
    assert verdict.returncode == 1 and "REVOKED" in verdict.stdout


def test_invalid_rows_exit_1_listing_row_field_and_reason(node_agency, tmp_path):
    rows = [business_licence(1), business_licence(2, validFrom="2020/01/01")]
    source = write_csv(tmp_path / "in.csv", rows)
    result = node_agency.run(
        "issue", str(source), "--type", "business-licence", "--out", str(tmp_path / "out")
    )
    assert result.returncode == 1
    assert "row 3: validFrom: is not a date written YYYY-MM-DD" in result.stderr
    assert "nothing was issued" in result.stderr
    assert not list((tmp_path / "out").glob("*.json"))


def test_licence_type_the_agency_may_not_issue_is_explained_in_its_words(node_agency, tmp_path):
    source = write_csv(tmp_path / "food.csv", [food_business_licence(1)])
    result = node_agency.run(
        "issue", str(source), "--type", "food-business-licence", "--out", str(tmp_path / "out")
    )
    assert result.returncode == 1
    assert "is not authorised to issue 食品经营许可证" in result.stderr
    assert "Traceback" not in result.stderr


def test_wrong_passphrase_exits_2_with_one_line(node_agency):
    result = node_agency.run("records", "--status", "active")  # reads no key: succeeds
    assert result.returncode == 0
    result = node_agency.run(
        "revoke", "110108000000000001", "--reason", "1", ELICENCE_PASSPHRASE="not it at all"
    )
    assert result.returncode == 2
    assert result.stderr.strip().startswith("error: wrong passphrase for the agency key")


def test_new_agency_key_is_private_and_the_governor_command_authorises_it(node_agency, tmp_path):
    home = tmp_path / "new-agency"
    config = HomeConfig.load(node_agency.home)
    created = node_agency.run(
        "agency",
        "new",
        "--name",
        "上海市浦东新区市场监督管理局",
        "--code",
        "91310115000000001U",
        "--registry",
        str(config.registry),
        "--chain",
        config.chain_url,
        ELICENCE_HOME=str(home),
    )
    assert created.returncode == 0, created.stderr
    keystore = home / "keys" / "agency.json"
    assert stat.S_IMODE(keystore.stat().st_mode) == 0o600
    command = next(shlex.split(line) for line in created.stdout.splitlines() if "authorise" in line)
    assert command[:3] == ["elicence", "agency", "authorise"]
    authorised = node_agency.run(*command[1:], ELICENCE_HOME=str(node_agency.governor_home))
    assert authorised.returncode == 0, authorised.stderr
    assert "agency 2" in authorised.stdout
    assert PASSPHRASE not in created.stdout + created.stderr
