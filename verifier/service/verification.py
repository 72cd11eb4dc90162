"""The service's work: verify licences against the fresh index, shape the answers for
the caller (least privilege), record them in the audit log, and judge a batch.

Verification itself (verifier.checks.verify) runs inline on the event loop: it is a few
microseconds of hashing and dictionary look-ups, cheaper than handing it to a thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prometheus_client import Counter

from licence.catalogue import catalogue
from licence.document import LicenceDocument
from licence.errors import UnknownTypeVersion
from verifier.checks import CHINA, verify
from verifier.errors import CouldNotCheck, TypeUnavailable
from verifier.service.access import Caller
from verifier.service.audit import (
    COULD_NOT_CHECK,
    UNPROVEN,
    AppendingLog,
    AuditRecord,
    now,
)
from verifier.service.errors import (
    CouldNotAudit,
    FieldError,
    HoldingNotProven,
    InvalidRequest,
    ServiceError,
    UnusableLicence,
)
from verifier.service.live import IndexView, LiveIndex
from verifier.service.metrics import Metrics
from verifier.service.models import Channel
from verifier.service.problems import problem_of
from verifier.service.spool import AuditWriter
from verifier.type_loading import TypeLoader, TypeRecords
from verifier.verdict import CheckName, Outcome, Status, Verdict

log = logging.getLogger("elicence.service")

HOLDER_FIELD = "unifiedSocialCreditCode"
# The problem's reason for a licence of a type version this service cannot load.
TYPE_UNAVAILABLE = "type-unavailable"
# The audit log's verdict for a holder-log request whose document did not prove holding.
HOLDING_NOT_PROVEN = "HOLDING_NOT_PROVEN"


@dataclass(frozen=True)
class Item:
    """One licence of a request: parsed, or the error that stopped it."""

    document: LicenceDocument | None
    error: ServiceError | None = None


class VerificationService:
    """Verifies for callers; one per app."""

    def __init__(
        self,
        live: LiveIndex,
        audit: AppendingLog,
        metrics: Metrics,
        *,
        catalogue_folder: Path | None = None,
        catalogue_url: str | None = None,
    ) -> None:
        self.live = live
        # Where a type version the catalogue lacks is read from (None: the index's copy
        # of the registry's event); always checked against the registry's hash.
        self.catalogue_folder = catalogue_folder
        self.catalogue_url = catalogue_url
        # One loader per index: it remembers what it parsed and what it could not load.
        self._type_loader: TypeLoader | None = None
        self.audit = audit
        self.metrics = metrics
        # Here rather than in Metrics: it counts what this class's writer sets aside.
        self.audit_set_aside = Counter(
            "elicence_audit_records_set_aside",
            "Audit records set aside in the dead-letter file: refused by the spool (their "
            "requests were answered 503 could-not-audit) or by the log they moved into.",
            registry=metrics.registry,
        )
        # The backlog the operator page plots: records answered, not yet in the log.
        self.writer = AuditWriter(audit, self.audit_set_aside.inc, metrics.audit_backlog.set)

    def close(self) -> None:
        """Store the audit records handed over, move this process's spool into the log,
        then stop the writer."""
        self.writer.close()

    def answer(self, verdict: Verdict, view: IndexView, caller: Caller) -> dict[str, Any]:
        """The verdict as the caller may see it, with the anchoring transaction."""
        licence_type = catalogue().get(verdict.licence_type)
        body = verdict.to_json(visible=caller.visible(licence_type))
        if verdict.anchor is not None:
            anchor = view.anchor_of(bytes.fromhex(verdict.anchor.root[2:]))
            if anchor is not None:
                body["anchor"]["transaction"] = self.live.anchor_transaction(anchor)
        return body

    def type_loader(self, index: TypeRecords) -> TypeLoader:
        """The loader of type versions checked against `index`'s record of the registry
        (the same one while the index is: a miss is remembered until a new publication)."""
        loader = self._type_loader
        if loader is None or loader.records[0] is not index:
            loader = TypeLoader([index], folder=self.catalogue_folder, url=self.catalogue_url)
            self._type_loader = loader
        return loader

    async def read_licence(self, parse: Callable[[], LicenceDocument]) -> LicenceDocument:
        """`parse()` (a request's licence); when it names a licence type version the
        catalogue lacks, that version is loaded from the index, checked against the hash
        the registry recorded (verifier.type_loading), and `parse()` runs again.

        The index, freshly caught up, holds every version published up to the block this
        service trusts (its confirmations): a version the index has not seen is one it
        would not trust yet, so the chain is not asked again.

        Raises:
            UnusableLicence: reason `type-unavailable`: the version cannot be loaded (the
                licence may be genuine: could not check, never TAMPERED).
            CouldNotCheck: the chain could not be read.
        """
        try:
            return parse()
        except UnknownTypeVersion as exc:
            missing = exc
        view = await self.live.fresh()
        loader = self.type_loader(view.index)
        try:
            # A remembered miss is answered on the loop; a load (milliseconds of parsing
            # and checking) runs in one thread per type version at a time.
            await loader.load_async(missing.type_ref, missing.version)
            return parse()
        except (TypeUnavailable, UnknownTypeVersion) as exc:
            raise UnusableLicence(
                str(exc), reason=TYPE_UNAVAILABLE, path="document.typeVersion"
            ) from None

    async def verify_one(
        self, document: LicenceDocument, caller: Caller, purpose: str | None, channel: Channel
    ) -> dict[str, Any]:
        """Verify one licence for a caller: the answer body."""
        caller.check_type(document.licence_type)
        view = await self._fresh([document], caller, purpose, channel)
        verdict = _verified(document, view)
        await self._record([verdict], caller, purpose, channel)
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
        verdicts: list[Verdict | None] = []
        for index, item in enumerate(checked):
            try:
                verdicts.append(None if item.document is None else _verified(item.document, view))
            except UnusableLicence as exc:
                path = f"items.{index}.{exc.path}"
                checked[index] = Item(None, UnusableLicence(str(exc), reason=exc.reason, path=path))
                verdicts.append(None)
        await self._record([v for v in verdicts if v is not None], caller, purpose, Channel.BATCH)
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

    async def holder_log(self, document: LicenceDocument, caller: Caller) -> dict[str, Any]:
        """Who verified this licence, for its holder: HoldingNotProven unless `document`
        is the full licence (with its secret) and verifies as anchored.

        A presentation is not enough: whoever the holder showed it to has it too. The
        secret, from which every salt derives, is only in the full document the agency
        gave the holder; a document whose derived salts lead to an anchored root proves
        holding it (docs/api.md). The query itself is audited, refused or not.
        """
        caller.check_type(document.licence_type)
        view = await self._fresh([document], caller, None, Channel.HOLDER)
        verdict = _verified(document, view)
        if document.is_presentation or not _proven(verdict):
            await self._audit(caller, None, Channel.HOLDER, [_outcome(verdict, HOLDING_NOT_PROVEN)])
            raise HoldingNotProven(
                "only the full licence document (with its secret) proves holding it, and "
                + (
                    "this is a presentation"
                    if document.is_presentation
                    else f"this one does not verify as anchored ({verdict.status.value})"
                )
            )
        await self._audit(caller, None, Channel.HOLDER, [_outcome(verdict, verdict.status.value)])
        # In a thread: the log's lock may be held by a write waiting on the file.
        records = await asyncio.to_thread(self.audit.query, licence_id=verdict.licence_id)
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
            # Accountability includes the attempts that got no verdict; nothing was
            # checked, so no record is filed under the licence the document claims.
            outcomes: list[tuple[str, str, str, int | None]] = [
                (UNPROVEN + "0x" + d.licence_id.hex(), d.licence_type.id, COULD_NOT_CHECK, None)
                for d in documents
            ]
            self.metrics.verdicts.labels(COULD_NOT_CHECK).inc(len(documents))
            # The answer is 503 could-not-check either way, and no verdict.
            with contextlib.suppress(CouldNotAudit):
                await self._audit(caller, purpose, channel, outcomes)
            raise

    async def _audit(
        self,
        caller: Caller,
        purpose: str | None,
        channel: Channel,
        outcomes: list[tuple[str, str, str, int | None]],
    ) -> None:
        """Store (licence id, licence type, verdict, block height) of each licence
        checked; CouldNotAudit if they cannot be stored (the caller gets no verdict)."""
        when = now()
        await self.writer.write(
            [
                AuditRecord(
                    when,
                    caller.name,
                    purpose,
                    licence_id,
                    licence_type,
                    verdict,
                    height,
                    channel.value,
                )
                for licence_id, licence_type, verdict, height in outcomes
            ]
        )

    async def _record(
        self, verdicts: list[Verdict], caller: Caller, purpose: str | None, channel: Channel
    ) -> None:
        await self._audit(caller, purpose, channel, [_outcome(v, v.status.value) for v in verdicts])
        for verdict in verdicts:
            self.metrics.count_verdict(verdict.status.value)
        if not log.isEnabledFor(logging.INFO):  # once, not the line's arguments per verdict
            return
        for verdict in verdicts:
            # Never a field value, a key, or an address: what was checked and the outcome.
            log.info(
                "%s client=%s type=%s verdict=%s height=%d",
                channel.value,
                caller.name,
                verdict.licence_type,
                verdict.status.value,
                verdict.block_height,
            )


def _verified(document: LicenceDocument, view: IndexView) -> Verdict:
    """The verdict; UnusableLicence (could not check) when the registry published the
    licence's type version with another definition than this service holds."""
    try:
        return verify(document, view)
    except TypeUnavailable as exc:
        raise UnusableLicence(
            str(exc), reason=TYPE_UNAVAILABLE, path="document.typeVersion"
        ) from None


def _proven(verdict: Verdict) -> bool:
    """True when the document is that licence: its hashes lead to an anchored root of
    the trusted registry. Anyone can make a document that claims any licence id and
    fails integrity, or passes it against a root of their own."""
    passed = {c.name for c in verdict.checks if c.outcome is Outcome.PASSED}
    return {CheckName.INTEGRITY, CheckName.ANCHOR} <= passed


def _outcome(verdict: Verdict, result: str) -> tuple[str, str, str, int | None]:
    """An audit outcome: filed under the licence id only when the document proved to be
    that licence (audit.UNPROVEN)."""
    licence_id = verdict.licence_id if _proven(verdict) else UNPROVEN + verdict.licence_id
    return licence_id, verdict.licence_type, result, verdict.block_height


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
