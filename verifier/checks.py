"""verify(document, ledger) -> Verdict: the checks, in order, each with its reason.

1. integrity  the disclosed fields (with their salts), the hidden commitments and the
              proof lead to the root the document names       else TAMPERED
2. anchor     that root is anchored in the trusted registry     else NOT_ANCHORED
3. issuer     the batch was anchored for this licence type by an agency authorised for
              it at that block (the registry refuses anchors from anyone else), and the
              issuing authority the licence names is that agency else ISSUER_NOT_AUTHORISED
4. status     the licence is not revoked, cancelled, superseded or suspended
5. validity   today (China Standard Time) lies in [validFrom, validUntil]
                                                                else EXPIRED / NOT_YET_VALID

Once integrity or anchor fails the later checks are skipped: nothing the document says
can be trusted, and nothing on chain describes it.
"""

from __future__ import annotations

import datetime as dt
from functools import lru_cache
from zoneinfo import ZoneInfo

from licence.document import LicenceDocument
from licence.errors import LicenceFormatError
from licence.fields import field_problems, parse_date
from licence.reasons import describe
from licence.statuses import LeafStatus
from verifier.source import AgencyView, AnchorView, LedgerSource
from verifier.verdict import (
    AUTHORITY_FIELD,
    AnchorInfo,
    Check,
    CheckName,
    IssuerInfo,
    Outcome,
    Status,
    Verdict,
)

CHINA = ZoneInfo("Asia/Shanghai")

# Keyed by the registry's status values (IntEnum members hash as their ints).
_LEAF_VERDICT: dict[int, tuple[Status, str]] = {
    LeafStatus.SUSPENDED: (Status.SUSPENDED, "suspended (暂扣)"),
    LeafStatus.REVOKED: (Status.REVOKED, "revoked (吊销)"),
    LeafStatus.SUPERSEDED: (Status.SUPERSEDED, "superseded by a newer licence"),
    LeafStatus.CANCELLED: (Status.CANCELLED, "cancelled at the holder's request (注销)"),
}


def today_in_china() -> dt.date:
    """The calendar date validity is judged by."""
    return dt.datetime.now(CHINA).date()


def _hex(value: bytes) -> str:
    return "0x" + value.hex()


def _passed(
    name: CheckName,
    reason: str,
    *,
    reveals: frozenset[str] = frozenset(),
    redacted: str | None = None,
) -> Check:
    # A reason that quotes licence fields names them and gives a wording without them
    # (Check refuses one without the other): see Verdict.to_json(visible=...).
    return Check(name, Outcome.PASSED, reason, None, reveals, redacted)


def _failed(
    name: CheckName,
    status: Status,
    reason: str,
    *,
    reveals: frozenset[str] = frozenset(),
    redacted: str | None = None,
) -> Check:
    return Check(name, Outcome.FAILED, reason, status, reveals, redacted)


def _skipped(*names: CheckName) -> list[Check]:
    return [Check(n, Outcome.SKIPPED, "not checked: an earlier check failed") for n in names]


def verify(
    document: LicenceDocument, ledger: LedgerSource, *, today: dt.date | None = None
) -> Verdict:
    """Check a licence or presentation against the trusted registry; never raises for a
    licence that is merely bad (that is the verdict), only CouldNotCheck when the ledger
    cannot be read."""
    today = today or today_in_china()
    checked_at = dt.datetime.now(CHINA)
    block_height = ledger.block_number()
    checks: list[Check] = [_integrity(document)]
    anchor = None
    issuer = None
    status_reason = None
    successor = None
    if checks[0].outcome is Outcome.PASSED:
        anchor_check, anchor = _anchor(document, ledger)
        checks.append(anchor_check)
    if anchor is None:
        checks += _skipped(*list(CheckName)[len(checks) :])
    else:
        agency = ledger.agency(anchor.agency_id)
        issuer = IssuerInfo(agency.id, agency.name, agency.code, agency.signer)
        checks.append(_issuer(document, anchor, agency))
        status_check, status_reason, successor = _status(document, ledger)
        checks.append(status_check)
        checks.append(_validity(document, today))
    failed = [c.status for c in checks if c.outcome is Outcome.FAILED and c.status]
    return Verdict(
        status=failed[0] if failed else Status.VALID,
        checks=tuple(checks),
        licence_id=_hex(document.licence_id),
        licence_type=document.licence_type.id,
        licence_type_name=document.licence_type.name.zh,
        fields=dict(document.fields),
        hidden=tuple(document.hidden),
        block_height=block_height,
        checked_at=checked_at,
        issuer=issuer,
        anchor=None
        if anchor is None
        else AnchorInfo(
            chain_id=ledger.chain_id,
            registry=ledger.registry_address,
            root=_hex(document.anchor.root),
            block_number=anchor.block_number,
            timestamp=anchor.timestamp,
        ),
        status_reason=status_reason,
        successor=successor,
    )


def _integrity(document: LicenceDocument) -> Check:
    try:
        computed = document.computed_root()
    except (LicenceFormatError, ValueError) as exc:
        # The error may quote any field's value.
        return _failed(
            CheckName.INTEGRITY,
            Status.TAMPERED,
            f"cannot recompute the hashes: {exc}",
            reveals=frozenset(document.fields),
            redacted="cannot recompute the hashes",
        )
    if computed == document.anchor.root:
        return _passed(
            CheckName.INTEGRITY,
            f"fields and proof lead to the stated root {_hex(document.anchor.root)}",
        )
    reason = (
        f"fields and proof lead to {_hex(computed)}, not to the stated root "
        f"{_hex(document.anchor.root)}: a field, salt or proof was changed"
    )
    # Name the field when its content shows the change (e.g. a broken check character).
    problems = field_problems(document.licence_type, document.fields)
    if not problems:
        return _failed(CheckName.INTEGRITY, Status.TAMPERED, reason)
    return _failed(
        CheckName.INTEGRITY,
        Status.TAMPERED,
        reason + "; " + "; ".join(str(p) for p in problems),
        reveals=frozenset(p.path for p in problems),
        redacted=reason,
    )


def _anchor(document: LicenceDocument, ledger: LedgerSource) -> tuple[Check, AnchorView | None]:
    ref = document.anchor
    if ref.chain_id != ledger.chain_id or ref.registry.lower() != ledger.registry_address.lower():
        return _failed(
            CheckName.ANCHOR,
            Status.NOT_ANCHORED,
            f"the document names registry {ref.registry} on chain {ref.chain_id}; this "
            f"verifier trusts registry {ledger.registry_address} on chain {ledger.chain_id}",
        ), None
    anchor = ledger.anchor_of(ref.root)
    if anchor is None:
        return _failed(
            CheckName.ANCHOR,
            Status.NOT_ANCHORED,
            f"root {_hex(ref.root)} is not anchored in registry {ledger.registry_address}",
        ), None
    compromised = _compromised(anchor, ledger)
    if compromised is not None:
        # The anchor is returned with the failed check: the verdict still tells where and
        # when the batch was anchored, and by which agency.
        return compromised, anchor
    return _anchored(anchor.block_number, anchor.timestamp, anchor.count), anchor


def _compromised(anchor: AnchorView, ledger: LedgerSource) -> Check | None:
    """A failed check if the key that anchored the batch was reported compromised from
    the anchor's block or earlier: whoever held the key may have made the anchor."""
    since = ledger.compromised_from(anchor.agency_id, anchor.key_number)
    if since is None or anchor.block_number < since:
        return None
    return _failed(
        CheckName.ANCHOR,
        Status.ISSUER_NOT_AUTHORISED,
        f"root anchored in block {anchor.block_number} with key {anchor.key_number} of "
        f"agency {anchor.agency_id}, whose signing key was reported compromised from block "
        f"{since}: anchors it made from then on do not count",
    )


@lru_cache(maxsize=4096)
def _anchored(block_number: int, timestamp: int, count: int) -> Check:
    # Anchors never change, and formatting a time zone is a large part of a verification.
    when = dt.datetime.fromtimestamp(timestamp, CHINA).isoformat(timespec="seconds")
    return _passed(
        CheckName.ANCHOR,
        f"root anchored in block {block_number} at {when} (a batch of {count} licences)",
    )


def _issuer(document: LicenceDocument, anchor: AnchorView, agency: AgencyView) -> Check:
    licence_type = document.licence_type
    if anchor.licence_type != licence_type.code:
        return _failed(
            CheckName.ISSUER,
            Status.ISSUER_NOT_AUTHORISED,
            f"the batch was anchored for licence type code {anchor.licence_type}, "
            f"but this licence is a {licence_type.name.zh} (code {licence_type.code})",
        )
    # The agency's name is the licence's issuingAuthority as written whenever the two
    # agree, so a reason that quotes it reveals that field.
    authority = frozenset({AUTHORITY_FIELD})
    named = document.fields.get(AUTHORITY_FIELD)
    if named is not None and named != agency.name:
        return _failed(
            CheckName.ISSUER,
            Status.ISSUER_NOT_AUTHORISED,
            f"the licence names issuing authority {named!r}, but its batch was anchored "
            f"by {agency.name!r} ({agency.code})",
            reveals=authority,
            redacted="the issuing authority the licence names is not the agency that "
            f"anchored its batch ({agency.code})",
        )
    authorised = f"authorised for {licence_type.name.zh} at block {anchor.block_number}"
    return _passed(
        CheckName.ISSUER,
        f"anchored by {agency.name} ({agency.code}), {authorised}",
        reveals=authority,
        redacted=f"anchored by agency {agency.code}, {authorised}",
    )


def _status(
    document: LicenceDocument, ledger: LedgerSource
) -> tuple[Check, str | None, str | None]:
    leaf = ledger.status_of(document.anchor.root, document.licence_id)
    if leaf.status == LeafStatus.ACTIVE:
        return (
            _passed(CheckName.STATUS, "in force: not revoked, suspended or superseded"),
            None,
            None,
        )
    status, words = _LEAF_VERDICT.get(
        leaf.status, (Status.REVOKED, f"in an unknown status {leaf.status}")
    )
    reason = describe(leaf.reason)
    successor = _hex(leaf.successor) if leaf.successor else None
    if leaf.batch_revoked:
        words = "revoked (吊销) with its whole batch by the registry's governor"
    text = f"{words} in block {leaf.changed_at_block}: {reason.label.zh} ({reason.label.en})"
    if successor:
        text += f"; the new licence is {successor}"
    return _failed(CheckName.STATUS, status, text), reason.label.zh, successor


def _validity(document: LicenceDocument, today: dt.date) -> Check:
    valid_from = document.fields.get("validFrom")
    valid_until = document.fields.get("validUntil")
    try:
        start = parse_date(valid_from) if valid_from else None
        end = parse_date(valid_until) if valid_until else None
    except ValueError:
        return _failed(CheckName.VALIDITY, Status.TAMPERED, "validity dates are not dates")
    if start is not None and today < start:
        return _failed(
            CheckName.VALIDITY,
            Status.NOT_YET_VALID,
            f"valid from {start}; today is {today}",
            reveals=_VALID_FROM,
            redacted=f"not yet in force on {today}",
        )
    if end is not None and today > end:
        return _failed(
            CheckName.VALIDITY,
            Status.EXPIRED,
            f"expired on {end}; today is {today}",
            reveals=_VALID_UNTIL,
            redacted=f"no longer in force on {today}",
        )
    until = str(end) if end else "no end date (长期)"
    return _passed(
        CheckName.VALIDITY,
        f"valid from {start} until {until}; today is {today}",
        reveals=_VALIDITY_DATES,
        redacted=f"in force on {today}",
    )


_VALID_FROM = frozenset({"validFrom"})
_VALID_UNTIL = frozenset({"validUntil"})
_VALIDITY_DATES = _VALID_FROM | _VALID_UNTIL
