"""The report's annexes, beside the judging: the texts the drill sent (Japanese and
English, from each alert's CAP `info` blocks), the operator actions of the record's audit
log, and the refusals the record only counted. Pure: rows in, report models out.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from pydantic import ValidationError

from alertsim.adapters.sqlite.rows import AuditRow, RefusalCountRow
from alertsim.domain.messages import Alert
from alertsim.domain.model import JST
from alertsim.drills.report.matching import place_of
from alertsim.drills.report.model import (
    AlertWording,
    AuditEntry,
    DrillReport,
    MessageText,
    RefusalCount,
)
from alertsim.service.records import OutboxRow

__all__ = ["audit_entries", "counted_refusals", "message_texts",
           "with_annexes"]


def _wording(alert: Alert, language: str) -> AlertWording | None:
    info = next((i for i in alert.info if i.language == language), None)
    if info is None:
        return None
    return AlertWording(headline=info.headline, description=info.description,
                        instruction=info.instruction)


def _parsed(row: OutboxRow) -> Alert | None:
    try:
        return Alert.model_validate_json(row.payload)
    except ValidationError:  # written by another version of alertsim: no texts to show
        return None


def message_texts(rows: Iterable[OutboxRow]) -> tuple[MessageText, ...]:
    """Every wording sent, once, with the places it went to, in order of first sending."""
    texts: dict[tuple[object, ...], MessageText] = {}
    for row in rows:
        alert = _parsed(row)
        ja, en = (None, None) if alert is None else (_wording(alert, "ja-JP"),
                                                     _wording(alert, "en-US"))
        if alert is None or ja is None or en is None:
            continue
        key, place = (row.event_id, row.stage, ja, en), place_of(row)
        first = texts.get(key)
        if first is None:
            texts[key] = MessageText(event_id=row.event_id, stage=row.stage,
                                     sent=alert.sent.astimezone(JST), places=(place,),
                                     ja=ja, en=en)
        elif place not in first.places:
            texts[key] = first.model_copy(update={"places": (*first.places, place)})
    return tuple(texts.values())


def audit_entries(rows: Iterable[AuditRow]) -> tuple[AuditEntry, ...]:
    """The audit rows as the report keeps them, times in JST, in the order given."""
    return tuple(AuditEntry(received_at=r.received_at.astimezone(JST), by=r.by,
                            action=r.action, event_id=r.event_id, answer=r.answer,
                            source=r.source) for r in rows)


def counted_refusals(rows: Iterable[RefusalCountRow]) -> tuple[RefusalCount, ...]:
    """The refusal counters as the report keeps them, times in JST."""
    return tuple(RefusalCount(source=r.source, count=r.count, bytes=r.bytes,
                              first_at=r.first_at.astimezone(JST),
                              last_at=r.last_at.astimezone(JST)) for r in rows)


def with_annexes(report: DrillReport, alerts: Sequence[OutboxRow],
                 counted: Iterable[RefusalCountRow],
                 audit: Iterable[AuditRow]) -> DrillReport:
    """The report with the texts of the alerts it shows, the counted refusals and the
    audit log (of its event alone when it is restricted to one)."""
    shown = {row.identifier for row in report.timeline}
    actions = [a for a in audit if report.event_id is None or a.event_id == report.event_id]
    refusals = report.refusals.model_copy(update={"counted": counted_refusals(counted)})
    return report.model_copy(update={
        "messages": message_texts(r for r in alerts if r.message_id in shown),
        "audit": audit_entries(actions), "refusals": refusals})
