"""Request and response models of the verify API (v1): the OpenAPI schema is made from
these, and requests are validated against them. Members are camelCase on the wire."""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from licence.payload import MAX_PAYLOAD_CHARS
from verifier.service.settings import MAX_BATCH_ITEMS
from verifier.verdict import CheckName, Outcome, Status

PURPOSE_MAX = 200
# C0 and C1 controls and surrogates (a lone surrogate is no UTF-8 text: the audit log
# could not store it); and line and paragraph separators and the bidi embeddings,
# overrides and isolates, which would let a purpose forge or disguise lines of a log or
# an export.
_NOT_PLAIN_TEXT = re.compile(
    "[\x00-\x1f\x7f-\x9f\ud800-\udfff\u2028\u2029\u202a-\u202e\u2066-\u2069]"
)


def check_purpose(value: str) -> str:
    """`value` as a purpose: at most PURPOSE_MAX characters of plain text; ValueError
    saying why not."""
    if len(value) > PURPOSE_MAX:
        raise ValueError(f"at most {PURPOSE_MAX} characters")
    found = _NOT_PLAIN_TEXT.search(value)
    if found is not None:
        raise ValueError(
            f"character {found.start()} (U+{ord(found.group()):04X}) is not plain text: "
            "a control character, a surrogate, a line separator or a bidi control"
        )
    return value


PurposeText = Annotated[str, Field(max_length=PURPOSE_MAX), AfterValidator(check_purpose)]
_PURPOSE = Field(
    None,
    description="The matter or case number this verification serves (recorded in the audit "
    "log; must not hold personal data): plain text, no control characters.",
    examples=["审批-2026-000123"],
)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class LicenceInput(_Strict):
    """One licence: exactly one of `qr` (the text of its QR code) or `document` (the JSON
    licence document or presentation of docs/format.md)."""

    qr: str | None = Field(
        None,
        max_length=MAX_PAYLOAD_CHARS,
        description="An EL2: payload (or an EL1: one printed before EL2), as read from the QR "
        "code; an EL2: payload is read with the service's own chain id and registry.",
        examples=["EL2:..."],
    )
    document: dict[str, Any] | None = Field(
        None, description="A licence document or presentation (elicence/1 JSON)."
    )

    @model_validator(mode="after")
    def _exactly_one(self) -> LicenceInput:
        if (self.qr is None) == (self.document is None):
            raise ValueError("give exactly one of qr and document")
        return self


class VerificationRequest(LicenceInput):
    """A licence to verify, and why."""

    purpose: PurposeText | None = _PURPOSE


class BatchVerificationRequest(_Strict):
    """Several licences for one matter (一件事一次办), checked together."""

    items: list[LicenceInput] = Field(
        min_length=1,
        max_length=MAX_BATCH_ITEMS,
        description=f"The licences, 1 to {MAX_BATCH_ITEMS}.",
    )
    required_types: list[str] | None = Field(
        None,
        alias="requiredTypes",
        max_length=64,
        description="Licence type ids the matter needs: each must be among the items with "
        "the verdict VALID.",
        examples=[["business-licence", "food-business-licence"]],
    )
    same_holder: bool = Field(
        True,
        alias="sameHolder",
        description="Require every licence to name the same unified social credit code.",
    )
    purpose: PurposeText | None = _PURPOSE


class CheckOut(BaseModel):
    """One check: what ran, how it went, why."""

    name: CheckName
    outcome: Outcome
    reason: str = Field(description="The reason, in English words.")
    code: str | None = Field(
        description="The reason's stable code (e.g. integrity.mismatch, status.revoked): "
        "word it in any language from `params` (docs/api.md lists the codes).",
        examples=["status.revoked"],
    )
    params: dict[str, str | int] = Field(
        description="The values the reason quotes, by name (block numbers, roots, dates).",
        examples=[{"block": 42, "reason": 3}],
    )


class IssuerOut(BaseModel):
    """The agency that anchored the licence's batch."""

    agencyId: int
    name: str = Field(description="The agency's name (发证机关).")
    code: str = Field(description="The agency's unified social credit code.")
    address: str = Field(description="The agency's signing address.")


class AnchorOut(BaseModel):
    """Where and when the licence's batch root was anchored."""

    chainId: int
    registry: str
    root: str
    blockNumber: int
    time: str = Field(description="The anchoring block's time (ISO 8601, UTC).")
    transaction: str | None = Field(description="The anchoring transaction's hash.")


class VerdictOut(BaseModel):
    """The answer about one licence. `status` is VALID only when every check passed."""

    status: Status
    licenceId: str = Field(description="The licence id (its leaf hash), 0x + 32 hex digits.")
    licenceType: str
    licenceTypeName: str
    checks: list[CheckOut]
    fields: dict[str, str] = Field(description="The disclosed fields this caller may see.")
    hidden: list[str] = Field(description="Fields the holder did not disclose.")
    withheld: list[str] = Field(
        description="Disclosed fields this caller is not entitled to see (least privilege)."
    )
    issuer: IssuerOut | None
    anchor: AnchorOut | None
    statusReason: str | None = Field(description="Why the licence is not in force, in words.")
    successor: str | None = Field(description="The licence id that superseded this one.")
    blockHeight: int = Field(description="The block height this answer reflects.")
    checkedAt: str = Field(description="When the answer was given (ISO 8601, UTC+8).")


class ProblemField(BaseModel):
    """One thing wrong with a request."""

    path: str = Field(description="Where: a dotted path into the request, e.g. items.3.qr.")
    message: str


class Problem(BaseModel):
    """An RFC 9457 problem: why the request got no answer."""

    type: str = Field(description="A URI naming the kind of problem.")
    title: str
    status: int
    detail: str
    instance: str | None = None
    errors: list[ProblemField] | None = None
    reason: str | None = Field(None, description="For unusable licences: the reason code.")


class BatchItemOut(BaseModel):
    """One item of a batch: a verdict, or the problem that left it unchecked."""

    index: int
    verdict: VerdictOut | None
    problem: Problem | None


class UnmetReason(BaseModel):
    """One reason a batch does not satisfy the matter."""

    code: Literal["missing-type", "holder-mismatch", "holder-unknown", "invalid-item"]
    detail: str
    licenceType: str | None = None
    items: list[int] = Field(default_factory=list, description="Item indexes concerned.")


class BatchVerdictOut(BaseModel):
    """Per-item verdicts and one overall answer."""

    satisfied: bool = Field(
        description="True when every item is VALID, every required type is among them and "
        "(when asked) they all name the same holder."
    )
    reasons: list[UnmetReason]
    items: list[BatchItemOut]
    blockHeight: int
    checkedAt: str


class HolderLogEntry(BaseModel):
    """One verification of the holder's licence."""

    time: str
    client: str
    purpose: str | None
    verdict: str
    blockHeight: int | None
    operation: str


class HolderLogOut(BaseModel):
    """Who verified a licence, and when."""

    licenceId: str
    verifications: list[HolderLogEntry]


class LabelOut(BaseModel):
    """A name in Chinese and English."""

    zh: str
    en: str


class FieldOut(BaseModel):
    """One field of a licence type."""

    name: str
    label: LabelOut
    kind: str
    required: bool
    personal: bool
    mandatoryDisclosure: bool
    absentMeans: LabelOut | None
    maxLength: int | None
    pattern: str | None


class LicenceTypeOut(BaseModel):
    """One version of a licence type of the catalogue, and its state in the registry."""

    id: str
    code: int
    version: int
    name: LabelOut
    owners: list[LabelOut]
    fields: list[FieldOut]
    mandatoryDisclosure: list[str]
    definitionHash: str = Field(
        description="SHA-256 of the definition's RFC 8785 canonical JSON (64 hex digits), "
        "what the registry records for this version"
    )
    published: bool | None = Field(
        description="Whether the registry published this version with this very hash; "
        "null while the service has not read the chain yet"
    )
    publishedAt: int | None = Field(description="The block it was published in, if it was")
    publishedHash: str | None = Field(
        description="The hash the registry recorded for this code and version (differs "
        "from definitionHash when the registry published another definition)"
    )


class CatalogueOut(BaseModel):
    """Every licence type the service knows."""

    licenceTypes: list[LicenceTypeOut]


class HealthOut(BaseModel):
    """Liveness."""

    status: Literal["ok"]


class ReadyOut(BaseModel):
    """Readiness: the index has caught up with the chain."""

    status: Literal["ready"]
    blockHeight: int
    chainId: int
    registry: str


class Channel(StrEnum):
    """How a licence reached the service (the audit log's operation)."""

    SINGLE = "verify"
    BATCH = "batch"
    IMAGE = "image"
    HOLDER = "holder-log"
