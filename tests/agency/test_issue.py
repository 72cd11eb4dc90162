"""Issuing from input files and changing statuses by number, in process on eth-tester."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from issuer.checking import InputDigest, input_digest
from issuer.errors import LicenceValidationError
from issuer.issuing import IssueOptions, issue_file
from issuer.manifest import manifest_bytes
from issuer.spreadsheet import read_input
from issuer.status import StatusRefused, change_status, supersede
from licence.catalogue import catalogue
from licence.document import loads_document
from licence.reasons import Reason
from licence.statuses import LeafStatus
from tests.agency.conftest import write_csv
from tests.issuing_paths import PATHS, issuing_path
from tests.samples import business_licence

BUSINESS = catalogue().get("business-licence")


def _issue(agency, tmp_path, rows, **options):
    source = read_input(write_csv(tmp_path / "in.csv", rows), BUSINESS)
    options.setdefault("qr", False)
    return issue_file(agency, BUSINESS, source, tmp_path / "out", options=IssueOptions(**options))


def _documents(folder):
    return sorted(p.name for p in folder.glob("*.json") if not p.name.startswith("batch-"))


def test_any_invalid_row_issues_nothing_and_every_bad_row_is_reported(agency, tmp_path):
    rows = [
        business_licence(1),
        business_licence(2, unifiedSocialCreditCode="91110108700000002X"),
        business_licence(3),
        business_licence(4, validFrom="2020-13-01"),
    ]
    with pytest.raises(LicenceValidationError) as raised:
        _issue(agency, tmp_path, rows)
    assert [(p.row, p.path) for p in raised.value.problems] == [
        (3, "unifiedSocialCreditCode"),
        (5, "validFrom"),
    ]
    assert agency.records.batches() == []
    assert not (tmp_path / "out").exists() or _documents(tmp_path / "out") == []


def test_skip_invalid_issues_the_valid_rows_and_reports_the_others(agency, tmp_path):
    rows = [business_licence(1), business_licence(2, validFrom="yesterday"), business_licence(3)]
    report = _issue(agency, tmp_path, rows, skip_invalid=True)
    assert report.count == 2
    assert [p.row for p in report.skipped] == [3]
    assert _documents(tmp_path / "out") == [f"{r['licenceNumber']}.json" for r in rows[::2]]


def test_repeated_licence_number_is_reported_with_both_rows(agency, tmp_path):
    rows = [business_licence(1), business_licence(2, licenceNumber="110108000000000001")]
    with pytest.raises(LicenceValidationError, match="row 3: licenceNumber: repeats row 2"):
        _issue(agency, tmp_path, rows)


def test_batches_are_split_at_the_batch_size_one_anchor_each(agency, tmp_path):
    report = _issue(agency, tmp_path, [business_licence(i) for i in range(7)], batch_size=3)
    assert [b.count for b in report.batches] == [3, 3, 1]
    for batch in report.batches:
        anchor = agency.registry.anchor_of(batch.root)
        assert anchor is not None and anchor.count == batch.count
        assert anchor.block_number == batch.block_number
    assert len(_documents(tmp_path / "out")) == 7


def test_running_the_same_input_again_anchors_nothing_and_writes_the_same_documents(
    agency, tmp_path
):
    rows = [business_licence(i) for i in range(5)]
    first = _issue(agency, tmp_path, rows, qr=True)
    before = {p.name: p.read_bytes() for p in (tmp_path / "out").iterdir()}
    block = agency.registry.chain.block_number()
    (tmp_path / "out" / "110108000000000002.json").unlink()  # a reprint is needed
    (tmp_path / "out" / first.batches[0].manifest.name).unlink()
    second = _issue(agency, tmp_path, rows, qr=True)
    assert agency.registry.chain.block_number() == block
    assert second.batches[0].tx_hash == first.batches[0].tx_hash
    assert {p.name: p.read_bytes() for p in (tmp_path / "out").iterdir()} == before


def test_an_issued_number_with_changed_fields_is_refused(agency, tmp_path):
    _issue(agency, tmp_path, [business_licence(1)])
    with pytest.raises(LicenceValidationError, match="already issued in batch"):
        _issue(agency, tmp_path, [business_licence(1, registeredCapital="200万元人民币")])


def test_documents_lead_to_the_anchored_root(agency, tmp_path):
    report = _issue(agency, tmp_path, [business_licence(i) for i in range(3)])
    for name in _documents(tmp_path / "out"):
        document = loads_document((tmp_path / "out" / name).read_bytes())
        assert document.computed_root() == report.batches[0].root


def test_worker_processes_write_what_one_process_writes(agency, tmp_path):
    rows = [business_licence(i) for i in range(6)]
    report = _issue(agency, tmp_path, rows, batch_size=2, workers=2)
    assert [b.count for b in report.batches] == [2, 2, 2]
    for record in agency.records.licences():
        document = loads_document((tmp_path / "out" / f"{record.number}.json").read_bytes())
        assert document.licence_id == record.licence_id
        assert document.anchor.root == record.root


def test_status_change_sends_one_transaction_per_batch_and_updates_records(agency, tmp_path):
    _issue(agency, tmp_path, [business_licence(i) for i in range(4)], batch_size=2)
    numbers = ["110108000000000000", "110108000000000001", "110108000000000002"]
    changes = change_status(agency, numbers, LeafStatus.SUSPENDED, Reason.UNDER_INVESTIGATION)
    assert [len(c.numbers) for c in changes] == [2, 1]
    assert all(c.tx_hash for c in changes)
    for record in agency.records.licences():
        on_chain = agency.registry.status_of(record.root, record.licence_id).status
        assert record.status == on_chain.name
    assert [r.number for r in agency.records.licences(status="SUSPENDED")] == numbers


def test_repeating_a_status_change_sends_nothing(agency, tmp_path):
    _issue(agency, tmp_path, [business_licence(1)])
    change_status(agency, ["110108000000000001"], LeafStatus.REVOKED, Reason.FRAUD)
    again = change_status(agency, ["110108000000000001"], LeafStatus.REVOKED, Reason.FRAUD)
    assert again[0].tx_hash is None


def test_refused_transition_names_the_licence_number(agency, tmp_path):
    _issue(agency, tmp_path, [business_licence(1)])
    change_status(agency, ["110108000000000001"], LeafStatus.REVOKED, Reason.FRAUD)
    with pytest.raises(StatusRefused) as raised:
        change_status(agency, ["110108000000000001"], LeafStatus.ACTIVE, Reason.RECTIFIED)
    assert raised.value.rejection.error_name == "LicenceRegistryInvalidTransition"
    assert set(raised.value.numbers.values()) == {"110108000000000001"}


def test_supersede_records_the_successor_by_number(agency, tmp_path):
    _issue(agency, tmp_path, [business_licence(1), business_licence(2)])
    supersede(agency, "110108000000000001", "110108000000000002", Reason.RENEWAL)
    old, new = agency.records.licences()
    assert old.status == "SUPERSEDED" and old.successor == new.licence_id
    state = agency.registry.status_of(old.root, old.licence_id)
    assert state.status is LeafStatus.SUPERSEDED and state.successor == new.licence_id


@pytest.mark.parametrize(
    "licences",
    [
        [],
        [("110108000000000001", "0x" + "ab" * 16, "110108000000000001.json")],
        [('a"b\\c', "0x00", "名称 é.json"), ("\u2028x", "0x01", "tab\t.json")],
    ],
)
def test_manifest_bytes_are_what_json_dumps_writes(licences):
    summary = {
        "root": "0x" + "12" * 16,
        "licenceType": "business-licence",
        "count": len(licences),
        "chainId": 31337,
        "registry": "0x5FbDB2315678afecb367f032d93F642f64180aa3",
        "transaction": "0x" + "34" * 32,
        "block": 7,
    }
    entries = [{"licenceNumber": n, "licenceId": i, "file": f} for n, i, f in licences]
    expected = json.dumps({**summary, "licences": entries}, ensure_ascii=False, indent=2)
    assert manifest_bytes(summary, licences) == expected.encode("utf-8")


def test_worker_processes_report_every_bad_row_with_its_file_row(agency, tmp_path):
    rows = [business_licence(i) for i in range(7)]
    rows[1]["validFrom"] = "2020-13-01"
    rows[5]["holderName"] = " 某公司"
    rows[6]["licenceNumber"] = rows[0]["licenceNumber"]
    with pytest.raises(LicenceValidationError) as raised:
        _issue(agency, tmp_path, rows, batch_size=2, workers=2)
    assert [(p.row, p.path) for p in raised.value.problems] == [
        (3, "validFrom"),
        (7, "holderName"),
        (8, "licenceNumber"),
    ]
    assert agency.records.batches() == []
    assert not (tmp_path / "out").exists()


def test_worker_processes_skip_invalid_rows(agency, tmp_path):
    rows = [business_licence(i) for i in range(7)]
    rows[2]["unifiedSocialCreditCode"] = "91110108700000002X"
    report = _issue(agency, tmp_path, rows, batch_size=3, workers=2, skip_invalid=True)
    assert [p.row for p in report.skipped] == [4]
    assert [b.count for b in report.batches] == [3, 3]
    for record in agency.records.licences():
        document = loads_document((tmp_path / "out" / f"{record.number}.json").read_bytes())
        assert document.licence_id == record.licence_id
        assert document.computed_root() == record.root


_REGISTRY = "0x5FbDB2315678afecb367f032d93F642f64180aa3"


@pytest.mark.parametrize("path", PATHS)
@given(
    st.lists(
        st.dictionaries(
            st.sampled_from([*BUSINESS.field_names, "notAField"]),
            st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=12),
            max_size=len(BUSINESS.field_names),
        ),
        max_size=4,
    ),
    st.integers(min_value=1, max_value=2**64),
)
def test_the_fast_input_digest_is_the_definition(path, rows, chain_id):
    # issuer/_wrap.c or orjson against input_digest, on any text: quotes, controls, Chinese,
    # astral characters, absent fields, keys that are no field (left out of both).
    with issuing_path(path):
        fast = InputDigest(BUSINESS, chain_id, _REGISTRY).of(rows)
    assert fast == input_digest(BUSINESS, chain_id, _REGISTRY, rows)


@pytest.mark.parametrize(
    "odd_value", [7, ["a"], None, "a\ud800"], ids=["number", "list", "null", "lone-surrogate"]
)
@pytest.mark.parametrize("path", PATHS)
def test_rows_the_fast_digest_cannot_take_get_the_definition(path, odd_value):
    rows = [business_licence(1), {**business_licence(2), "holderName": odd_value}]
    with issuing_path(path):
        digest = InputDigest(BUSINESS, 1, _REGISTRY).of(rows)
        other = InputDigest(BUSINESS, 1, _REGISTRY).of([business_licence(1)] * 2)
    assert digest == input_digest(BUSINESS, 1, _REGISTRY, rows)
    assert digest != other


def test_json_lines_with_a_lone_surrogate_or_a_number_reports_those_rows(agency, tmp_path):
    lines = [business_licence(1), business_licence(2), business_licence(3)]
    text = [json.dumps(fields, ensure_ascii=False) for fields in lines]
    text[0] = text[0].replace('"holderName": "', '"holderName": "\\ud800', 1)
    text[2] = text[2].replace('"registeredCapital": "100万元人民币"', '"registeredCapital": 100')
    path = tmp_path / "in.jsonl"
    path.write_text("\n".join(text) + "\n", encoding="utf-8")
    source = read_input(path, BUSINESS)
    with pytest.raises(LicenceValidationError) as raised:
        issue_file(agency, BUSINESS, source, tmp_path / "out", options=IssueOptions(qr=False))
    assert [(p.row, p.path) for p in raised.value.problems] == [
        (1, "holderName"),
        (3, "registeredCapital"),
    ]
    assert "surrogate" in raised.value.problems[0].reason
    assert agency.records.batches() == []
