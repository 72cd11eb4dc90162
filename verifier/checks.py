"""verify(document, ledger) -> Verdict: the checks, in order, each with its reason.

1. integrity  the disclosed fields (with their salts), the hidden commitments and the
              proof lead to the root the document names       else TAMPERED
2. anchor     that root is anchored in the trusted registry     else NOT_ANCHORED
3. issuer     the batch was anchored for this licence type by an agency authorised for
              it at that block (the registry refuses anchors from anyone else), and the
              issuing authority the licence names is that agency else ISSUER_NOT_AUTHORISED;
              and for the type version the document names           else TAMPERED
4. seal       the batch root carries the agency's SM2 seal (licence.seal), verified with
              the seal key the registry names for the agency at the anchoring block; a
              batch anchored before the agency had a seal key needs none
                                 else TAMPERED / ISSUER_NOT_AUTHORISED (key compromised)
5. status     the licence is not revoked, cancelled, superseded or suspended
6. validity   today (China Standard Time) lies in [validFrom, validUntil]
                                                                else EXPIRED / NOT_YET_VALID

Once integrity or anchor fails the later checks are skipped: nothing the document says
can be trusted, and nothing on chain describes it.
"""

from __future__ import annotations

import datetime as dt
from functools import lru_cache
from zoneinfo import ZoneInfo

from licence import seal as sm2_seal
from licence.digest import hash_function
from licence.document import LicenceDocument
from licence.errors import LicenceFormatError
from licence.fields import field_problems, parse_date
from licence.reasons import describe
from licence.statuses import LeafStatus
from verifier.compiled_ids import seed_licence_id
from verifier.errors import CouldNotCheck, DefinitionMismatch
from verifier.source import AgencyView, AnchorView, LedgerSource, SealKeyView
from verifier.verdict import (
    AUTHORITY_FIELD,
    AnchorInfo,
    Check,
    CheckName,
    IssuerInfo,
    Outcome,
    Status,
    Verdict,
    Wording,
)

CHINA = ZoneInfo("Asia/Shanghai")

# Keyed by the registry's status values (IntEnum members hash as their ints): the verdict
# and the reason code (verifier.verdict.REASON_TEXTS).
_LEAF_VERDICT: dict[int, tuple[Status, str]] = {
    LeafStatus.SUSPENDED: (Status.SUSPENDED, "status.suspended"),
    LeafStatus.REVOKED: (Status.REVOKED, "status.revoked"),
    LeafStatus.SUPERSEDED: (Status.SUPERSEDED, "status.superseded"),
    LeafStatus.CANCELLED: (Status.CANCELLED, "status.cancelled"),
}


def today_in_china() -> dt.date:
    """The calendar date validity is judged by."""
    return dt.datetime.now(CHINA).date()


def _hex(value: bytes) -> str:
    return "0x" + value.hex()


def _passed(
    name: CheckName,
    reason: Wording,
    *,
    reveals: frozenset[str] = frozenset(),
    redacted: Wording | None = None,
) -> Check:
    # A reason that quotes licence fields names them and gives a wording without them
    # (Check refuses one without the other): see Verdict.to_json(visible=...).
    return Check.worded(name, Outcome.PASSED, reason, reveals=reveals, redacted=redacted)


def _failed(
    name: CheckName,
    status: Status,
    reason: Wording,
    *,
    reveals: frozenset[str] = frozenset(),
    redacted: Wording | None = None,
) -> Check:
    return Check.worded(name, Outcome.FAILED, reason, status, reveals=reveals, redacted=redacted)


_SKIPPED = Wording("skipped")


def _skipped(*names: CheckName) -> list[Check]:
    return [Check.worded(n, Outcome.SKIPPED, _SKIPPED) for n in names]


def verify(
    document: LicenceDocument, ledger: LedgerSource, *, today: dt.date | None = None
) -> Verdict:
    """Check a licence or presentation against the trusted registry; never raises for a
    licence that is merely bad (that is the verdict), only CouldNotCheck when the ledger
    cannot be read, and UnsupportedHashSuite for a suite this installation cannot compute
    (the licence may be genuine, so it gets no verdict, never TAMPERED), and
    DefinitionMismatch when the registry published the document's type version with
    another definition than this verifier holds (it would hash the licence otherwise
    than its issuer did: no verdict either)."""
    hash_function(document.suite)
    licence_type = document.licence_type
    published = ledger.licence_type(licence_type.code, licence_type.version)
    if published is not None and published.definition_hash != licence_type.definition_hash:
        raise DefinitionMismatch(
            "this verifier's catalogue",
            licence_type.code,
            licence_type.version,
            published.definition_hash,
            licence_type.definition_hash,
        )
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
        checks.append(_checked_seal(document, anchor, ledger))
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
    seed_licence_id(document)  # the same id, by the compiled encoder when it is built
    try:
        computed = document.computed_root()
    except (LicenceFormatError, ValueError) as exc:
        # The error may quote any field's value.
        return _failed(
            CheckName.INTEGRITY,
            Status.TAMPERED,
            Wording("integrity.unreadable", {"error": str(exc)}),
            reveals=frozenset(document.fields),
            redacted=Wording("integrity.unreadable-redacted"),
        )
    root = _hex(document.anchor.root)
    if computed == document.anchor.root:
        return _passed(CheckName.INTEGRITY, Wording("integrity.ok", {"root": root}))
    mismatch = Wording("integrity.mismatch", {"computed": _hex(computed), "root": root})
    # Name the field when its content shows the change (e.g. a broken check character).
    problems = field_problems(document.licence_type, document.fields)
    if not problems:
        return _failed(CheckName.INTEGRITY, Status.TAMPERED, mismatch)
    named = Wording(
        "integrity.mismatch-fields",
        {
            **mismatch.params,
            "fields": ",".join(dict.fromkeys(p.path for p in problems)),
            "problems": "; ".join(str(p) for p in problems),
        },
    )
    return _failed(
        CheckName.INTEGRITY,
        Status.TAMPERED,
        named,
        reveals=frozenset(p.path for p in problems),
        redacted=mismatch,
    )


def _anchor(document: LicenceDocument, ledger: LedgerSource) -> tuple[Check, AnchorView | None]:
    ref = document.anchor
    if ref.chain_id != ledger.chain_id or ref.registry.lower() != ledger.registry_address.lower():
        return _failed(
            CheckName.ANCHOR,
            Status.NOT_ANCHORED,
            Wording(
                "anchor.other-registry",
                {
                    "registry": ref.registry,
                    "chainId": ref.chain_id,
                    "trustedRegistry": ledger.registry_address,
                    "trustedChainId": ledger.chain_id,
                },
            ),
        ), None
    anchor = ledger.anchor_of(ref.root)
    if anchor is None:
        return _failed(
            CheckName.ANCHOR,
            Status.NOT_ANCHORED,
            Wording(
                "anchor.not-found", {"root": _hex(ref.root), "registry": ledger.registry_address}
            ),
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
        Wording(
            "anchor.key-compromised",
            {
                "block": anchor.block_number,
                "key": anchor.key_number,
                "agencyId": anchor.agency_id,
                "since": since,
            },
        ),
    )


@lru_cache(maxsize=4096)
def _anchored(block_number: int, timestamp: int, count: int) -> Check:
    # Anchors never change, and formatting a time zone is a large part of a verification.
    when = dt.datetime.fromtimestamp(timestamp, CHINA).isoformat(timespec="seconds")
    return _passed(
        CheckName.ANCHOR,
        Wording("anchor.ok", {"block": block_number, "time": when, "count": count}),
    )


def _issuer(document: LicenceDocument, anchor: AnchorView, agency: AgencyView) -> Check:
    licence_type = document.licence_type
    if anchor.licence_type != licence_type.code:
        return _failed(
            CheckName.ISSUER,
            Status.ISSUER_NOT_AUTHORISED,
            Wording(
                "issuer.other-type",
                {
                    "anchoredType": anchor.licence_type,
                    "licenceType": licence_type.id,
                    "typeCode": licence_type.code,
                },
            ),
        )
    if anchor.type_version != licence_type.version:
        # The batch's leaves were hashed under the anchored version's field list; a
        # document naming another version was changed after issuing.
        return _failed(
            CheckName.ISSUER,
            Status.TAMPERED,
            Wording(
                "issuer.other-type-version",
                {
                    "anchoredVersion": anchor.type_version,
                    "licenceType": licence_type.id,
                    "typeVersion": licence_type.version,
                },
            ),
        )
    # The agency's name is the licence's issuingAuthority as written whenever the two
    # agree, so a reason that quotes it reveals that field.
    authority = frozenset({AUTHORITY_FIELD})
    named = document.fields.get(AUTHORITY_FIELD)
    if named is not None and named != agency.name:
        return _failed(
            CheckName.ISSUER,
            Status.ISSUER_NOT_AUTHORISED,
            Wording(
                "issuer.other-authority",
                {"named": named, "agency": agency.name, "agencyCode": agency.code},
            ),
            reveals=authority,
            redacted=Wording("issuer.other-authority-redacted", {"agencyCode": agency.code}),
        )
    authorised: dict[str, str | int] = {
        "agencyCode": agency.code,
        "licenceType": licence_type.id,
        "block": anchor.block_number,
    }
    return _passed(
        CheckName.ISSUER,
        Wording("issuer.ok", {"agency": agency.name, **authorised}),
        reveals=authority,
        redacted=Wording("issuer.ok-redacted", authorised),
    )


def _checked_seal(document: LicenceDocument, anchor: AnchorView, ledger: LedgerSource) -> Check:
    try:
        return _seal(document, anchor, ledger)
    except sm2_seal.SealUnavailable as exc:
        # No SM2 here: the licence may be genuine, so no verdict rather than a wrong one.
        raise CouldNotCheck(f"could not check the agency's seal: {exc}") from exc


def _seal(document: LicenceDocument, anchor: AnchorView, ledger: LedgerSource) -> Check:
    """The seal check (docs/format.md, "Verifying"): the first matching outcome wins."""
    key = ledger.seal_key_at(anchor.agency_id, anchor.block_number)
    seal = document.anchor.seal
    if key is None:
        if seal is None:
            return _passed(CheckName.SEAL, _SEAL_NOT_REQUIRED)
        return _failed(CheckName.SEAL, Status.TAMPERED, _SEAL_UNEXPECTED)
    if seal is None:
        return _failed(CheckName.SEAL, Status.TAMPERED, _SEAL_MISSING)
    if not _is_seal_key(key.public_key):
        return _failed(CheckName.SEAL, Status.ISSUER_NOT_AUTHORISED, _SEAL_KEY_MALFORMED)
    since = key.compromised_from
    if since is not None and anchor.block_number >= since:
        return _failed(
            CheckName.SEAL,
            Status.ISSUER_NOT_AUTHORISED,
            Wording("seal.key-compromised", {"block": since}),
        )
    ref = document.anchor
    if not _seal_verifies(key.public_key, ref.chain_id, ref.registry, ref.root, seal):
        return _failed(CheckName.SEAL, Status.TAMPERED, _SEAL_MISMATCH)
    return _sealed(key)


_SEAL_NOT_REQUIRED = Wording("seal.not-required")
_SEAL_UNEXPECTED = Wording("seal.unexpected")
_SEAL_MISSING = Wording("seal.missing")
_SEAL_KEY_MALFORMED = Wording("seal.key-malformed")
_SEAL_MISMATCH = Wording("seal.mismatch")


def _sealed(key: SealKeyView) -> Check:
    return _passed(CheckName.SEAL, Wording("seal.ok", {"keyNumber": key.number}))


@lru_cache(maxsize=256)
def _is_seal_key(public_key: bytes) -> bool:
    try:
        sm2_seal.check_public_key(public_key)
    except sm2_seal.MalformedSealKey:
        return False
    return True


# Once per root: every licence of a batch carries the same seal, and an SM2 verification
# costs far more than the rest of a verdict. Keyed by everything the answer depends on, so
# a changed seal or key is verified anew. SealUnavailable (no SM2 in this OpenSSL) is
# raised, never cached (`_checked_seal`).
@lru_cache(maxsize=4096)
def _seal_verifies(
    public_key: bytes, chain_id: int, registry: str, root: bytes, seal: bytes
) -> bool:
    try:
        sm2_seal.check_seal(public_key, chain_id, bytes.fromhex(registry[2:]), root, seal)
    except (sm2_seal.MalformedSeal, sm2_seal.SealMismatch):
        return False
    return True


def _status(
    document: LicenceDocument, ledger: LedgerSource
) -> tuple[Check, str | None, str | None]:
    leaf = ledger.status_of(document.anchor.root, document.licence_id)
    if leaf.status == LeafStatus.ACTIVE:
        return _passed(CheckName.STATUS, _IN_FORCE), None, None
    status, code = _LEAF_VERDICT.get(leaf.status, (Status.REVOKED, "status.unknown"))
    successor = _hex(leaf.successor) if leaf.successor else None
    if leaf.batch_revoked:
        code = "status.batch-revoked"
    params: dict[str, str | int] = {"block": leaf.changed_at_block, "reason": leaf.reason}
    if code == "status.unknown":
        params["status"] = int(leaf.status)
    if successor:
        params["successor"] = successor
    elif code == "status.superseded":
        # The registry names a successor with every supersession; without one, the
        # words say what is known.
        code = "status.revoked"
    wording = Wording(code, params)
    return _failed(CheckName.STATUS, status, wording), describe(leaf.reason).label.zh, successor


_IN_FORCE = Wording("status.ok")


def _validity(document: LicenceDocument, today: dt.date) -> Check:
    valid_from = document.fields.get("validFrom")
    valid_until = document.fields.get("validUntil")
    try:
        start = parse_date(valid_from) if valid_from else None
        end = parse_date(valid_until) if valid_until else None
    except ValueError:
        return _failed(CheckName.VALIDITY, Status.TAMPERED, Wording("validity.not-dates"))
    day = {"today": str(today)}
    if start is not None and today < start:
        return _failed(
            CheckName.VALIDITY,
            Status.NOT_YET_VALID,
            Wording("validity.not-yet", {"validFrom": str(start), **day}),
            reveals=_VALID_FROM,
            redacted=Wording("validity.not-yet-redacted", day),
        )
    if end is not None and today > end:
        return _failed(
            CheckName.VALIDITY,
            Status.EXPIRED,
            Wording("validity.expired", {"validUntil": str(end), **day}),
            reveals=_VALID_UNTIL,
            redacted=Wording("validity.expired-redacted", day),
        )
    # validFrom is required by every licence type in the catalogue; its absence is
    # written as it reads.
    since = {"validFrom": str(start), **day}
    return _passed(
        CheckName.VALIDITY,
        Wording("validity.ok", {**since, "validUntil": str(end)})
        if end
        else Wording("validity.ok-no-end", since),
        reveals=_VALIDITY_DATES,
        redacted=Wording("validity.ok-redacted", day),
    )


_VALID_FROM = frozenset({"validFrom"})
_VALID_UNTIL = frozenset({"validUntil"})
_VALIDITY_DATES = _VALID_FROM | _VALID_UNTIL
