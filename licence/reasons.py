"""Reason codes carried by every status change (revoke, suspend, reinstate, supersede, cancel).

The registry stores one byte; this table gives it words. Codes are append-only: a code,
once published, keeps its meaning, because verdicts about old changes read it back.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

from licence.catalogue import Label


class Reason(IntEnum):
    """Why a licence's status changed."""

    UNSPECIFIED = 0
    FRAUD = 1
    COURT_ORDER = 2
    ADMINISTRATIVE_PENALTY = 3
    HOLDER_REQUEST = 4
    CHANGE_OF_PARTICULARS = 5
    RENEWAL = 6
    ISSUED_IN_ERROR = 7
    HOLDER_DISSOLVED = 8
    UNDER_INVESTIGATION = 9
    RECTIFIED = 10


@dataclass(frozen=True)
class ReasonText:
    """A reason code's meaning."""

    code: int
    key: str
    label: Label


_WORDS: dict[Reason, Label] = {
    Reason.UNSPECIFIED: Label("未说明原因", "no reason stated"),
    Reason.FRAUD: Label("以欺骗、贿赂等不正当手段取得", "obtained by fraud or bribery"),
    Reason.COURT_ORDER: Label("人民法院裁判", "court order"),
    Reason.ADMINISTRATIVE_PENALTY: Label("行政处罚", "administrative penalty"),
    Reason.HOLDER_REQUEST: Label("持证主体申请", "at the holder's request"),
    Reason.CHANGE_OF_PARTICULARS: Label("登记事项变更", "change of registered particulars"),
    Reason.RENEWAL: Label("延续换发", "renewed"),
    Reason.ISSUED_IN_ERROR: Label("发证错误", "issued in error"),
    Reason.HOLDER_DISSOLVED: Label("持证主体已注销", "the holder has been dissolved"),
    Reason.UNDER_INVESTIGATION: Label("监督检查中", "under investigation"),
    Reason.RECTIFIED: Label("已整改", "the cause has been rectified"),
}


def describe(code: int) -> ReasonText:
    """The words for a reason code (an unknown code is said to be unknown, not hidden)."""
    try:
        reason = Reason(code)
    except ValueError:
        return ReasonText(
            code, "UNKNOWN", Label(f"未知原因代码 {code}", f"unknown reason code {code}")
        )
    return ReasonText(code, reason.name, _WORDS[reason])
