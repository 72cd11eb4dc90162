"""The answer to "is this licence genuine and in force?": a status and the checks behind it."""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

# The licence field that names the issuing agency (发证机关), as the licence writes it.
AUTHORITY_FIELD = "issuingAuthority"


class Status(StrEnum):
    """The overall verdict, most serious first (the first failed check decides)."""

    VALID = "VALID"
    TAMPERED = "TAMPERED"
    NOT_ANCHORED = "NOT_ANCHORED"
    ISSUER_NOT_AUTHORISED = "ISSUER_NOT_AUTHORISED"
    REVOKED = "REVOKED"
    CANCELLED = "CANCELLED"
    SUPERSEDED = "SUPERSEDED"
    SUSPENDED = "SUSPENDED"
    EXPIRED = "EXPIRED"
    NOT_YET_VALID = "NOT_YET_VALID"


class Outcome(StrEnum):
    """What became of one check."""

    PASSED = "passed"
    FAILED = "failed"
    SKIPPED = "skipped"


class CheckName(StrEnum):
    """The checks, in the order they run."""

    INTEGRITY = "integrity"
    ANCHOR = "anchor"
    ISSUER = "issuer"
    STATUS = "status"
    VALIDITY = "validity"


@dataclass(frozen=True)
class Check:
    """One check's outcome and the reason for it, in words.

    A reason that quotes licence fields names them in `reveals` and comes with a
    `redacted` wording that quotes none of them; a caller who may not see one of those
    fields gets the redacted wording (the outcome and status are the same). Refused at
    construction otherwise, so no check can reveal a field without saying so.
    """

    name: CheckName
    outcome: Outcome
    reason: str
    status: Status | None = None  # the verdict this check gives when it fails
    reveals: frozenset[str] = frozenset()  # the licence fields `reason` quotes
    redacted: str | None = None  # `reason` without them

    def __post_init__(self) -> None:
        if self.reveals and self.redacted is None:
            raise ValueError(f"the {self.name} check reveals {sorted(self.reveals)} unredacted")

    def reason_for(self, visible: Collection[str] | None) -> str:
        """The reason as a caller who may see only the fields `visible` (None: all) reads it."""
        if visible is None or self.redacted is None or self.reveals.issubset(visible):
            return self.reason
        return self.redacted


@dataclass(frozen=True)
class IssuerInfo:
    """The agency that anchored the batch."""

    agency_id: int
    name: str
    code: str
    signer: str


@dataclass(frozen=True)
class AnchorInfo:
    """Where and when the batch root was anchored."""

    chain_id: int
    registry: str
    root: str
    block_number: int
    timestamp: int
    transaction: str | None = None  # the anchoring transaction, when the source knows it


@dataclass(frozen=True)
class Verdict:
    """Everything a verification found; `status` is VALID only when every check passed."""

    status: Status
    checks: tuple[Check, ...]
    licence_id: str
    licence_type: str
    licence_type_name: str
    fields: dict[str, str]
    hidden: tuple[str, ...]
    block_height: int
    checked_at: dt.datetime
    issuer: IssuerInfo | None = None
    anchor: AnchorInfo | None = None
    status_reason: str | None = None
    successor: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def is_valid(self) -> bool:
        """True only for VALID."""
        return self.status is Status.VALID

    def to_json(self, *, visible: Collection[str] | None = None) -> dict[str, Any]:
        """The verdict as a JSON object (camelCase members, as the API answers).

        `visible` limits the disclosed fields shown to those named (least privilege: a
        caller entitled to fewer fields); the others are listed under `withheld`, and no
        other member quotes them: a check whose reason does gives its redacted reason,
        and the issuing agency's name (which, for a genuine licence, is the licence's
        `issuingAuthority` as written) is left out unless that field may be seen. The
        status, the outcome of every check, and the agency's id, code and address
        (public registry data) are the same either way.
        """
        if visible is None:
            fields, withheld = self.fields, []
        else:
            fields = {k: v for k, v in self.fields.items() if k in visible}
            withheld = [k for k in self.fields if k not in visible]
        agency_named = visible is None or AUTHORITY_FIELD in visible
        return {
            "status": self.status.value,
            "licenceId": self.licence_id,
            "licenceType": self.licence_type,
            "licenceTypeName": self.licence_type_name,
            "checks": [
                {"name": c.name.value, "outcome": c.outcome.value, "reason": c.reason_for(visible)}
                for c in self.checks
            ],
            "fields": fields,
            "hidden": list(self.hidden),
            "withheld": withheld,
            "issuer": None
            if self.issuer is None
            else {
                "agencyId": self.issuer.agency_id,
                "name": self.issuer.name if agency_named else None,
                "code": self.issuer.code,
                "address": self.issuer.signer,
            },
            "anchor": None
            if self.anchor is None
            else {
                "chainId": self.anchor.chain_id,
                "registry": self.anchor.registry,
                "root": self.anchor.root,
                "blockNumber": self.anchor.block_number,
                "time": dt.datetime.fromtimestamp(self.anchor.timestamp, dt.UTC).isoformat(),
                "transaction": self.anchor.transaction,
            },
            "statusReason": self.status_reason,
            "successor": self.successor,
            "blockHeight": self.block_height,
            "checkedAt": self.checked_at.isoformat(),
        }
