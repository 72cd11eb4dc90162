"""`elicence records` says what became of each licence: its status with the reason by
name, the successor of a superseded licence, and the transaction of the status change
beside the batch's anchoring transaction. Issued in process on eth-tester; listed by the
real `elicence records` process (it needs no chain)."""

from __future__ import annotations

import json
import sqlite3

import pytest

from issuer.agency import AgencyContext
from issuer.issuing import IssueOptions, issue_file
from issuer.records import Records
from issuer.spreadsheet import read_input
from issuer.status import change_status, supersede
from licence.catalogue import catalogue
from licence.reasons import Reason
from licence.statuses import LeafStatus
from tests.agency.conftest import write_csv
from tests.conftest import run_elicence
from tests.samples import business_licence

BUSINESS = catalogue().get("business-licence")
OLD, REVOKED, NEW = "110108000000000000", "110108000000000001", "110108000000000002"


@pytest.fixture
def issued(registry, agency_key, tmp_path):
    """Three licences of agency 1: one revoked, one superseded by the third."""
    home = tmp_path / "home"
    with Records.of_home(home) as records:
        agency = AgencyContext(registry, agency_key, records)
        source = read_input(
            write_csv(tmp_path / "in.csv", [business_licence(i) for i in range(3)]), BUSINESS
        )
        issue_file(agency, BUSINESS, source, tmp_path / "out", options=IssueOptions(qr=False))
        (revoked,) = change_status(
            agency, [REVOKED], LeafStatus.REVOKED, Reason.ADMINISTRATIVE_PENALTY
        )
        superseded = supersede(agency, OLD, NEW, Reason.RENEWAL)
    return home, revoked.tx_hash, superseded.tx_hash


def listed(home, *options):
    result = run_elicence("records", "--home", str(home), "--json", *options)
    assert result.returncode == 0, result.stderr
    return {e["licenceNumber"]: e for e in map(json.loads, result.stdout.splitlines())}


def test_json_gives_the_reason_by_name_and_the_status_change_transaction(issued):
    home, revoke_tx, _ = issued
    entry = listed(home)[REVOKED]
    assert entry["status"] == "REVOKED"
    assert entry["reason"] == "ADMINISTRATIVE_PENALTY" and entry["reasonCode"] == 3
    assert entry["reasonText"] == {"zh": "行政处罚", "en": "administrative penalty"}
    assert entry["statusTransaction"] == revoke_tx
    assert entry["anchorTransaction"] != revoke_tx and entry["anchorTransaction"]
    assert entry["statusBlock"] > entry["anchorBlock"]


def test_json_names_the_successor_of_a_superseded_licence(issued):
    home, _, supersede_tx = issued
    entries = listed(home)
    old, new = entries[OLD], entries[NEW]
    assert old["status"] == "SUPERSEDED" and old["reason"] == "RENEWAL"
    assert old["successorNumber"] == NEW and old["successorId"] == new["licenceId"]
    assert old["statusTransaction"] == supersede_tx


def test_a_licence_never_changed_has_no_reason_and_no_status_transaction(issued):
    home, _, _ = issued
    entry = listed(home)[NEW]
    assert entry["status"] == "ACTIVE"
    assert entry["reason"] is None and entry["statusTransaction"] is None
    assert entry["successorNumber"] is None


def test_the_listing_shows_reason_successor_and_both_transactions_in_full(issued):
    home, revoke_tx, supersede_tx = issued
    result = run_elicence("records", "--home", str(home))  # into a pipe
    assert result.returncode == 0, result.stderr
    header, *lines = result.stdout.splitlines()
    assert header.split("\t")[:5] == ["number", "type", "status", "reason", "successor"]
    rows = {line.split("\t")[0]: line.split("\t") for line in lines}
    assert rows[REVOKED][2:4] == ["revoked", "ADMINISTRATIVE_PENALTY (行政处罚)"]
    assert revoke_tx in rows[REVOKED][-1]
    assert rows[OLD][4] == NEW and supersede_tx in rows[OLD][-1]


def test_repeating_a_status_change_keeps_the_transaction_that_made_it(registry, agency_key, issued):
    home, revoke_tx, _ = issued
    with Records.of_home(home) as records:
        agency = AgencyContext(registry, agency_key, records)
        (again,) = change_status(
            agency, [REVOKED], LeafStatus.REVOKED, Reason.ADMINISTRATIVE_PENALTY
        )
    assert again.tx_hash is None  # nothing sent
    assert listed(home)[REVOKED]["statusTransaction"] == revoke_tx


def test_records_written_before_status_transactions_were_kept_still_open(issued, tmp_path):
    home, _, _ = issued
    with sqlite3.connect(home / "records.sqlite") as db:
        db.execute("ALTER TABLE licences DROP COLUMN status_tx")
        db.execute("ALTER TABLE licences DROP COLUMN status_block")
    entry = listed(home)[REVOKED]
    assert entry["reason"] == "ADMINISTRATIVE_PENALTY" and entry["statusTransaction"] is None
