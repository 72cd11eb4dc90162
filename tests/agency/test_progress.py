"""Issuing reports its progress stage by stage, batch by batch, through a callback."""

from __future__ import annotations

import pytest

from issuer.issuing import IssueOptions, Stage, issue_file
from issuer.spreadsheet import read_input
from licence.catalogue import catalogue
from tests.agency.conftest import write_csv
from tests.samples import business_licence

BUSINESS = catalogue().get("business-licence")


@pytest.mark.parametrize("workers", [1, 2])
def test_every_stage_reports_growing_counts_up_to_its_total(agency, tmp_path, workers):
    source = read_input(
        write_csv(tmp_path / "in.csv", [business_licence(i) for i in range(7)]), BUSINESS
    )
    calls: list[tuple[Stage, int, int]] = []

    issue_file(
        agency,
        BUSINESS,
        source,
        tmp_path / "out",
        options=IssueOptions(batch_size=3, qr=False, workers=workers),
        progress=lambda stage, done, total: calls.append((stage, done, total)),
    )

    for stage in Stage:
        counts = [done for s, done, _ in calls if s is stage]
        assert counts == sorted(set(counts)), stage  # strictly growing
        assert len(counts) >= 3, stage  # three batches: the bar moves three times at least
        assert counts[-1] == 7 and {total for s, _, total in calls if s is stage} == {7}
    first = [next(k for k, call in enumerate(calls) if call[0] is stage) for stage in Stage]
    assert first == sorted(first)  # rows are checked, then staged, anchored, published


def test_a_run_with_nothing_new_to_issue_reports_only_checking(agency, tmp_path):
    rows = [business_licence(i) for i in range(2)]
    source = read_input(write_csv(tmp_path / "in.csv", rows), BUSINESS)
    options = IssueOptions(qr=False)
    issue_file(agency, BUSINESS, source, tmp_path / "out", options=options)
    calls: list[tuple[Stage, int, int]] = []

    issue_file(
        agency,
        BUSINESS,
        source,
        tmp_path / "out",
        options=options,
        progress=lambda stage, done, total: calls.append((stage, done, total)),
    )

    assert {stage for stage, _, _ in calls} == {Stage.CHECKING}
    assert calls[-1] == (Stage.CHECKING, 2, 2)
