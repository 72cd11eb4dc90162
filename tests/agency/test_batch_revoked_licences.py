"""An agency revoking licences of a batch the governor revoked as a whole: the batch's
revocation does not follow its licences into another batch, so `revoke` must still
record them one by one, not take the batch's status for theirs (issue 15.4)."""

from __future__ import annotations

from issuer.issuing import IssueOptions, issue_file
from issuer.spreadsheet import read_input
from issuer.status import change_status
from licence.catalogue import catalogue
from licence.reasons import Reason
from licence.statuses import LeafStatus
from tests.agency.conftest import write_csv
from tests.samples import business_licence

BUSINESS = catalogue().get("business-licence")


def test_revoking_licences_of_a_revoked_batch_revokes_each_for_good(agency, tmp_path, governor):
    source = read_input(
        write_csv(tmp_path / "in.csv", [business_licence(1), business_licence(2)]), BUSINESS
    )
    issue_file(agency, BUSINESS, source, tmp_path / "out", options=IssueOptions(qr=False))
    record = agency.records.licences()[0]
    agency.registry.revoke_batch(governor, record.root, int(Reason.ISSUED_IN_ERROR))
    [change] = change_status(agency, [record.number], LeafStatus.REVOKED, Reason.FRAUD)
    assert change.tx_hash is not None  # sent, although the batch already reads as revoked
    # Anchored again alone, the licence id is still revoked: its own status is final.
    agency.registry.anchor(agency.key, record.licence_id, BUSINESS.code, 1)
    state = agency.registry.status_of(record.licence_id, record.licence_id)
    assert (state.status, state.reason) == (LeafStatus.REVOKED, int(Reason.FRAUD))
