"""The service's work: verify licences against the fresh index, shape the answers for
the caller (least privilege), record them in the audit log, and judge a batch.

Verification itself (verifier.checks.verify) runs inline on the event loop: it is a few
microseconds of hashing and dictionary look-ups, cheaper than handing it to a thread.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from dataclasses import dataclass
from typing import Any

from issuer.catalogue import catalogue
from issuer.document import LicenceDocument
from verifier.checks import CHINA, verify
from verifier.errors import CouldNotCheck
from verifier.service.access import Caller
from verifier.service.audit import COULD_NOT_CHECK, FLUSH_DELAY_S, AuditLog, AuditRecord, now
from verifier.service.errors import (
    FieldError,
    HoldingNotProven,
    InvalidRequest,
    ServiceError,
)
from verifier.service.live import IndexView, LiveIndex
from verifier.service.metrics import Metrics
from verifier.service.models import Channel
from verifier.service.problems import problem_of
from verifier.verdict import Status, Verdict

log = logging.getLogger("elicence.service")

HOLDER_FIELD = "unifiedSocialCreditCode"
AUDIT_RETRY_S = 1.0
# A document proves holding once its hashes lead to an anchored root: only the holder
# (or someone the holder showed it to) has the salts that make them do so.
_NOT_HELD = frozenset({Status.TAMPERED, Status.NOT_ANCHORED})


@dataclass(frozen=True)
class Item:
    """One licence of a request: parsed, or the error that stopped it."""

    document: LicenceDocument | None
    error: ServiceError | None = None


class VerificationService:
    """Verifies for callers; one per app."""

    def __init__(self, live: LiveIndex, audit: AuditLog, metrics: Metrics) -> None:
        self.live = live
        self.audit = audit
        self.metrics = metrics

    def answer(self, verdict: Verdict, view: IndexView, caller: Caller) -> dict[str, Any]:
        """The verdict as the caller may see it, with the anchoring transaction."""
        licence_type = catalogue().get(verdict.licence_type)
        body = verdict.to_json(visible=caller.visible(licence_type))
        if verdict.anchor is not None:
            anchor = view.anchor_of(bytes.fromhex(verdict.anchor.root[2:]))
            if anchor is not None:
                body["anchor"]["transaction"] = self.live.anchor_transaction(anchor)
        return body

    async def verify_one(
        self, document: LicenceDocument, caller: Caller, purpose: str | None, channel: Channel
    ) -> dict[str, Any]:
        """Verify one licence for a caller: the answer body."""
        caller.check_type(document.licence_type)
        view = await self._fresh([document], caller, purpose, channel)
        verdict = verify(document, view)
        self._record([verdict], caller, purpose, channel)
        return self.answer(verdict, view, caller)

    async def verify_batch(
        self,
        items: list[Item],
        caller: Caller,
        purpose: str | None,
        required_types: list[str] | None,
        same_holder: bool,
    ) -> dict[str, Any]:
        """Verify a matter's licences together: per-item answers and the overall one."""
        known = {t.id for t in catalogue()}
        unknown = [
            FieldError(f"requiredTypes.{i}", f"no licence type {t!r}")
            for i, t in enumerate(required_types or [])
            if t not in known
        ]
        if unknown:
            raise InvalidRequest("requiredTypes names unknown licence types", unknown)
        checked: list[Item] = []
        for item in items:
            try:
                if item.document is not None:
                    caller.check_type(item.document.licence_type)
            except ServiceError as exc:
                checked.append(Item(None, exc))
            else:
                checked.append(item)
        documents = [i.document for i in checked if i.document is not None]
        view = await self._fresh(documents, caller, purpose, Channel.BATCH)
        verdicts: list[Verdict | None] = [
            verify(i.document, view) if i.document is not None else None for i in checked
        ]
        self._record([v for v in verdicts if v is not None], caller, purpose, Channel.BATCH)
        out_items = []
        for index, (item, verdict) in enumerate(zip(checked, verdicts, strict=True)):
            out_items.append(
                {
                    "index": index,
                    "verdict": None if verdict is None else self.answer(verdict, view, caller),
                    "problem": None
                    if item.error is None
                    else problem_of(item.error, f"items.{index}"),
                }
            )
        reasons = _unmet(checked, verdicts, required_types or [], same_holder)
        return {
            "satisfied": not reasons,
            "reasons": reasons,
            "items": out_items,
            "blockHeight": view.height,
            "checkedAt": dt.datetime.now(CHINA).isoformat(),
        }

    async def holder_log(self, document: LicenceDocument) -> dict[str, Any]:
        """Who verified this licence, for its holder (the document is the proof)."""
        view = await self.live.fresh()
        verdict = verify(document, view)
        if verdict.status in _NOT_HELD:
            raise HoldingNotProven(
                f"the document does not verify as an anchored licence ({verdict.status.value})"
            )
        records = self.audit.query(licence_id=verdict.licence_id)
        return {
            "licenceId": verdict.licence_id,
            "verifications": [
                {
                    "time": r.time,
                    "client": r.client,
                    "purpose": r.purpose,
                    "verdict": r.verdict,
                    "blockHeight": r.block_height,
                    "operation": r.operation,
                }
                for r in records
            ],
        }

    async def _fresh(
        self,
        documents: list[LicenceDocument],
        caller: Caller,
        purpose: str | None,
        channel: Channel,
    ) -> IndexView:
        try:
            return await self.live.fresh()
        except CouldNotCheck:
            # Accountability includes the attempts that got no verdict.
            self._audit(
                caller,
                purpose,
                channel,
                [
                    ("0x" + d.licence_id.hex(), d.licence_type.id, COULD_NOT_CHECK, None)
                    for d in documents
                ],
            )
            self.metrics.verdicts.labels(COULD_NOT_CHECK).inc(len(documents))
            raise

    def _audit(
        self,
        caller: Caller,
        purpose: str | None,
        channel: Channel,
        outcomes: list[tuple[str, str, str, int | None]],
    ) -> None:
        """Record (licence id, licence type, verdict, block height) of each licence checked."""
        when = now()
        records = [
            AuditRecord(
                when, caller.name, purpose, licence_id, licence_type, verdict, height, channel.value
            )
            for licence_id, licence_type, verdict, height in outcomes
        ]
        # Gathered and written every FLUSH_DELAY_S in a worker thread: one transaction
        # for all the requests of that interval, and the event loop never waits on disk.
        if self.audit.buffer(records):
            asyncio.get_running_loop().call_later(FLUSH_DELAY_S, self._flush_audit)

    def _flush_audit(self) -> None:
        loop = asyncio.get_running_loop()
        loop.run_in_executor(None, self.audit.flush).add_done_callback(self._audit_flushed)

    def _audit_flushed(self, done: asyncio.Future[None]) -> None:
        exc = None if done.cancelled() else done.exception()
        if exc is not None:
            # The records stay buffered (AuditLog.flush puts them back): try again.
            log.error("audit records could not be written, retrying in 1 s: %s", exc)
            asyncio.get_running_loop().call_later(AUDIT_RETRY_S, self._flush_audit)

    def _record(
        self, verdicts: list[Verdict], caller: Caller, purpose: str | None, channel: Channel
    ) -> None:
        self._audit(
            caller,
            purpose,
            channel,
            [(v.licence_id, v.licence_type, v.status.value, v.block_height) for v in verdicts],
        )
        for verdict in verdicts:
            self.metrics.verdicts.labels(verdict.status.value).inc()
            # Never a field value, a key, or an address: what was checked and the outcome.
            log.info(
                "%s client=%s type=%s verdict=%s height=%d",
                channel.value,
                caller.name,
                verdict.licence_type,
                verdict.status.value,
                verdict.block_height,
            )


def _unmet(
    items: list[Item],
    verdicts: list[Verdict | None],
    required_types: list[str],
    same_holder: bool,
) -> list[dict[str, Any]]:
    reasons: list[dict[str, Any]] = []
    invalid = [i for i, v in enumerate(verdicts) if v is None or v.status is not Status.VALID]
    if invalid:
        reasons.append(
            {
                "code": "invalid-item",
                "detail": f"{len(invalid)} of {len(items)} licences are not VALID "
                "or could not be read",
                "licenceType": None,
                "items": invalid,
            }
        )
    valid_types = {v.licence_type for v in verdicts if v is not None and v.status is Status.VALID}
    for type_id in dict.fromkeys(required_types):
        if type_id not in valid_types:
            name = catalogue().get(type_id).name
            reasons.append(
                {
                    "code": "missing-type",
                    "detail": f"no VALID {name.zh} ({name.en}) among the licences",
                    "licenceType": type_id,
                    "items": [],
                }
            )
    if same_holder:
        reasons += _holder_reasons(verdicts)
    return reasons


def _holder_reasons(verdicts: list[Verdict | None]) -> list[dict[str, Any]]:
    # Compared on the licences' own values; the answer names items, never the codes,
    # since a key may not be entitled to see them.
    codes: dict[str, list[int]] = {}
    unknown: list[int] = []
    for index, verdict in enumerate(verdicts):
        if verdict is None:
            continue
        code = verdict.fields.get(HOLDER_FIELD)
        if code is None:
            unknown.append(index)
        else:
            codes.setdefault(code, []).append(index)
    reasons: list[dict[str, Any]] = []
    if len(codes) > 1:
        # The largest group is taken as the matter's holder; the others differ from it.
        groups = sorted(codes.values(), key=lambda g: (-len(g), g))
        reasons.append(
            {
                "code": "holder-mismatch",
                "detail": f"the licences name {len(groups)} different holders "
                f"(unified social credit codes): items {'; '.join(map(str, groups))}",
                "licenceType": None,
                "items": sorted(i for g in groups[1:] for i in g),
            }
        )
    if unknown:
        reasons.append(
            {
                "code": "holder-unknown",
                "detail": "these licences do not disclose a unified social credit code, so "
                "their holder cannot be compared",
                "licenceType": None,
                "items": unknown,
            }
        )
    return reasons
