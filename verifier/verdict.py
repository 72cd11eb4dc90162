"""The answer to "is this licence genuine and in force?": a status and the checks behind it.

Every check's reason is a stable code with parameters (`Wording`), worded in Chinese and
English by one table (`REASON_TEXTS`): the API answers with the English words plus the
code and parameters, and the web page words the same code in the page's language from a
copy of the table (`reason_table()`, written to verifier/web/static/reasons.json by
scripts/vendor_web; tests/web/test_assets.py holds the copy to this table).

A template names parameters in braces: `{block}`; `{name|filter}` words a parameter
through a filter: `type` (a licence type id, as the type's name), `statusReason` (a
status-change reason code, licence/reasons.py), `fields` (comma-separated field names,
as their labels), `time` (an ISO 8601 time; the page writes it in its own way).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from functools import cache, lru_cache
from typing import Any, Literal

from licence.catalogue import Label, catalogue
from licence.reasons import Reason, describe

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
    SEAL = "seal"
    STATUS = "status"
    VALIDITY = "validity"


Language = Literal["zh", "en"]
Param = str | int

# Codes are published (API clients and the page key on them): add, never reuse or rename.
REASON_TEXTS: dict[str, Label] = {
    "integrity.ok": Label(
        "字段和证明可推导出所声明的批次根 {root}",
        "fields and proof lead to the stated root {root}",
    ),
    "integrity.mismatch": Label(
        "字段和证明推导出 {computed}，而非所声明的批次根 {root}：字段、盐值或证明已被改动",
        "fields and proof lead to {computed}, not to the stated root {root}: a field, salt "
        "or proof was changed",
    ),
    "integrity.mismatch-fields": Label(
        "字段和证明推导出 {computed}，而非所声明的批次根 {root}：字段、盐值或证明已被改动；"
        "以下字段的内容不符合规则：{fields|fields}",
        "fields and proof lead to {computed}, not to the stated root {root}: a field, salt "
        "or proof was changed; {problems}",
    ),
    "integrity.unreadable": Label(
        "无法重新计算哈希值：证照内容有误（{error}）",
        "cannot recompute the hashes: {error}",
    ),
    "integrity.unreadable-redacted": Label(
        "无法重新计算哈希值：证照内容有误", "cannot recompute the hashes"
    ),
    "anchor.ok": Label(
        "批次根已于 {time|time} 在区块 {block} 上链存证（该批共 {count} 份证照）",
        "root anchored in block {block} at {time|time} (a batch of {count} licences)",
    ),
    "anchor.other-registry": Label(
        "证照指向链 {chainId} 上的登记合约 {registry}；本核验服务只信任链 {trustedChainId} "
        "上的登记合约 {trustedRegistry}",
        "the document names registry {registry} on chain {chainId}; this verifier trusts "
        "registry {trustedRegistry} on chain {trustedChainId}",
    ),
    "anchor.not-found": Label(
        "登记合约 {registry} 中没有批次根 {root} 的存证：证照系伪造或已被改动，"
        "或属于另一登记合约",
        "root {root} is not anchored in registry {registry}: the licence was forged or "
        "altered, or belongs to another registry",
    ),
    "anchor.key-compromised": Label(
        "批次根于区块 {block} 由机构 {agencyId} 的第 {key} 号密钥上链，而该签名密钥已报告"
        "自区块 {since} 起泄露：此后用它上链的存证一律无效",
        "root anchored in block {block} with key {key} of agency {agencyId}, whose signing "
        "key was reported compromised from block {since}: anchors it made from then on do "
        "not count",
    ),
    "issuer.other-type": Label(
        "该批次是为证照类型代码 {anchoredType} 上链的，而此证照是{licenceType|type}"
        "（代码 {typeCode}）",
        "the batch was anchored for licence type code {anchoredType}, but this licence is a "
        "{licenceType|type} (code {typeCode})",
    ),
    "issuer.other-type-version": Label(
        "该批次是按{licenceType|type}第 {anchoredVersion} 版上链的，而此证照自称第 "
        "{typeVersion} 版：证照已被改动",
        "the batch was anchored under version {anchoredVersion} of {licenceType|type}, but "
        "this licence names version {typeVersion}: it was changed",
    ),
    "issuer.other-authority": Label(
        "证照所写发证机关为“{named}”，但其批次由“{agency}”（{agencyCode}）上链",
        "the licence names issuing authority '{named}', but its batch was anchored by "
        "'{agency}' ({agencyCode})",
    ),
    "issuer.other-authority-redacted": Label(
        "证照所写发证机关不是为其批次上链的机构（{agencyCode}）",
        "the issuing authority the licence names is not the agency that anchored its "
        "batch ({agencyCode})",
    ),
    "issuer.ok": Label(
        "由{agency}（{agencyCode}）上链，该机构在区块 {block} 时有权签发{licenceType|type}",
        "anchored by {agency} ({agencyCode}), authorised for {licenceType|type} at block {block}",
    ),
    "issuer.ok-redacted": Label(
        "由机构 {agencyCode} 上链，该机构在区块 {block} 时有权签发{licenceType|type}",
        "anchored by agency {agencyCode}, authorised for {licenceType|type} at block {block}",
    ),
    "seal.ok": Label(
        "批次根带有发证机关的 SM2 电子印章，经其第 {keyNumber} 号印章密钥验证无误",
        "the batch root carries the agency's SM2 seal, verified with its seal key {keyNumber}",
    ),
    "seal.not-required": Label(
        "该批次上链时发证机关尚未登记 SM2 印章密钥，无需印章",
        "the agency had no SM2 seal key when the batch was anchored: no seal is required",
    ),
    "seal.unexpected": Label(
        "证照带有印章，但该批次上链时发证机关没有登记 SM2 印章密钥：印章是伪造的",
        "the document carries a seal, but the agency had no SM2 seal key when the batch was "
        "anchored: the seal is forged",
    ),
    "seal.missing": Label(
        "该批次上链时发证机关已登记 SM2 印章密钥，但证照不带印章：印章已被去除",
        "the agency sealed its batches when this one was anchored, but the document carries "
        "no seal: it was removed",
    ),
    "seal.key-malformed": Label(
        "登记合约中发证机关的 SM2 印章密钥不是 SM2 曲线上的点，无法验证印章",
        "the agency's registered SM2 seal key is not a point on the SM2 curve: no seal can "
        "be verified with it",
    ),
    "seal.key-compromised": Label(
        "发证机关的 SM2 印章密钥已报告自区块 {block} 起泄露，而该批次在此之后上链",
        "the agency's SM2 seal key was reported compromised from block {block}, and the "
        "batch was anchored from then on",
    ),
    "seal.mismatch": Label(
        "印章与发证机关登记的 SM2 印章密钥不符：印章或批次根已被改动",
        "the seal does not verify with the agency's registered SM2 seal key: the seal or "
        "the root was changed",
    ),
    "status.ok": Label(
        "现行有效：未被吊销、暂扣或替代", "in force: not revoked, suspended or superseded"
    ),
    "status.suspended": Label(
        "已于区块 {block} 被暂扣：{reason|statusReason}",
        "suspended (暂扣) in block {block}: {reason|statusReason}",
    ),
    "status.revoked": Label(
        "已于区块 {block} 被吊销：{reason|statusReason}",
        "revoked (吊销) in block {block}: {reason|statusReason}",
    ),
    "status.batch-revoked": Label(
        "已于区块 {block} 由登记合约管理者连同整批证照一并吊销：{reason|statusReason}",
        "revoked (吊销) with its whole batch by the registry's governor in block {block}: "
        "{reason|statusReason}",
    ),
    "status.superseded": Label(
        "已于区块 {block} 被新证照替代：{reason|statusReason}；新证照标识为 {successor}",
        "superseded by a newer licence in block {block}: {reason|statusReason}; the new "
        "licence is {successor}",
    ),
    "status.cancelled": Label(
        "已于区块 {block} 应持证主体申请注销：{reason|statusReason}",
        "cancelled at the holder's request (注销) in block {block}: {reason|statusReason}",
    ),
    "status.unknown": Label(
        "已于区块 {block} 变为未知状态 {status}：{reason|statusReason}",
        "in an unknown status {status} in block {block}: {reason|statusReason}",
    ),
    "validity.not-dates": Label("有效期日期不是有效日期", "validity dates are not dates"),
    "validity.not-yet": Label(
        "自 {validFrom} 起生效；今天是 {today}", "valid from {validFrom}; today is {today}"
    ),
    "validity.not-yet-redacted": Label("{today} 尚未生效", "not yet in force on {today}"),
    "validity.expired": Label(
        "已于 {validUntil} 到期；今天是 {today}", "expired on {validUntil}; today is {today}"
    ),
    "validity.expired-redacted": Label("{today} 已不在有效期内", "no longer in force on {today}"),
    "validity.ok": Label(
        "有效期自 {validFrom} 至 {validUntil}；今天是 {today}",
        "valid from {validFrom} until {validUntil}; today is {today}",
    ),
    "validity.ok-no-end": Label(
        "有效期自 {validFrom} 起，长期有效；今天是 {today}",
        "valid from {validFrom} until no end date (长期); today is {today}",
    ),
    "validity.ok-redacted": Label("{today} 在有效期内", "in force on {today}"),
    "type.unavailable": Label(
        "无法核验：无法加载证照类型 {licenceType} 第 {typeVersion} 版（{detail}）；"
        "证照可能是真实的",
        "could not check: licence type {licenceType} version {typeVersion} cannot be loaded "
        "({detail}); the licence may be genuine",
    ),
    "skipped": Label("未检查：前一项核验未通过", "not checked: an earlier check failed"),
}

_PLACEHOLDER = re.compile(r"\{(\w+)(?:\|(\w+))?\}")


def _field_labels(names: str, language: Language) -> str:
    labels = []
    for name in names.split(","):
        spec = next((f for t in catalogue() for f in t.fields if f.name == name), None)
        labels.append(getattr(spec.label, language) if spec else name)
    return ("、" if language == "zh" else ", ").join(labels)


def _filtered(value: Param, how: str | None, language: Language) -> str:
    if how == "type":
        return str(getattr(catalogue().get(str(value)).name, language))
    if how == "statusReason":
        return str(getattr(describe(int(value)).label, language))
    if how == "fields":
        return _field_labels(str(value), language)
    return str(value)  # plain, and `time`: ISO 8601 reads the same in both languages


def word(code: str, params: Mapping[str, Param], language: Language = "en") -> str:
    """The words for a reason code and its parameters (KeyError: no such code or parameter)."""
    form, slots = _template(code, language)
    return form.format(
        *[
            str(params[name]) if how is None else _filtered(params[name], how, language)
            for name, how in slots
        ]
    )


@cache
def _template(code: str, language: Language) -> tuple[str, tuple[tuple[str, str | None], ...]]:
    """A reason's template as a str.format form with numbered slots, and each slot's
    parameter and filter, made once: every verification words several reasons, and a
    regular expression per reason was a third of `verify`'s time (issue 17)."""
    template: str = getattr(REASON_TEXTS[code], language)
    form = []
    slots: list[tuple[str, str | None]] = []
    start = 0
    for match in _PLACEHOLDER.finditer(template):
        form.append(_braced(template[start : match.start()]) + f"{{{len(slots)}}}")
        slots.append((match[1], match[2]))
        start = match.end()
    form.append(_braced(template[start:]))
    return "".join(form), tuple(slots)


def _braced(text: str) -> str:
    return text.replace("{", "{{").replace("}", "}}")


@dataclass(frozen=True)
class Wording:
    """A reason as a stable code and its parameters; `text` is its English words."""

    code: str
    params: Mapping[str, Param] = field(default_factory=dict)

    @property
    def text(self) -> str:
        """The English words (what the API's `reason` member says)."""
        return _english(self.code, tuple(self.params.items()))


# Most reasons a verifier words repeat: a batch's root and anchor block, an agency's name,
# common validity dates. Worded once each, a verification's five or more reasons cost a
# look-up each (issue 17); bounded, so distinct parameters cannot grow it.
@lru_cache(maxsize=8192)
def _english(code: str, params: tuple[tuple[str, Param], ...]) -> str:
    return word(code, dict(params))


@lru_cache(maxsize=1)
def reason_table() -> dict[str, Any]:
    """The wording table as the web page reads it (verifier/web/static/reasons.json)."""
    return {
        "checks": {code: {"zh": t.zh, "en": t.en} for code, t in REASON_TEXTS.items()},
        "statusReasons": {
            str(int(r)): {"key": r.name, "zh": describe(r).label.zh, "en": describe(r).label.en}
            for r in Reason
        },
    }


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
    wording: Wording | None = None  # `reason` as a code and parameters
    redacted_wording: Wording | None = None  # `redacted` as a code and parameters

    def __post_init__(self) -> None:
        if self.reveals and self.redacted is None:
            raise ValueError(f"the {self.name} check reveals {sorted(self.reveals)} unredacted")

    @classmethod
    def worded(
        cls,
        name: CheckName,
        outcome: Outcome,
        wording: Wording,
        status: Status | None = None,
        *,
        reveals: frozenset[str] = frozenset(),
        redacted: Wording | None = None,
    ) -> Check:
        """A check whose reason (and redacted reason) are worded from REASON_TEXTS."""
        return cls(
            name,
            outcome,
            wording.text,
            status,
            reveals,
            None if redacted is None else redacted.text,
            wording,
            redacted,
        )

    def _shows_all(self, visible: Collection[str] | None) -> bool:
        return visible is None or self.redacted is None or self.reveals.issubset(visible)

    def reason_for(self, visible: Collection[str] | None) -> str:
        """The reason as a caller who may see only the fields `visible` (None: all) reads it."""
        return self.reason if self._shows_all(visible) else str(self.redacted)

    def to_json(self, visible: Collection[str] | None = None) -> dict[str, Any]:
        """The check as the API answers it: name, outcome, English reason, code, params."""
        shown = self.wording if self._shows_all(visible) else self.redacted_wording
        return {
            "name": self.name.value,
            "outcome": self.outcome.value,
            "reason": self.reason_for(visible),
            "code": None if shown is None else shown.code,
            "params": {} if shown is None else dict(shown.params),
        }


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
            "checks": [c.to_json(visible) for c in self.checks],
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
