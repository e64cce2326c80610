"""The drill report built from a Store: every read the report needs, then `assemble`.

`build_report(store)` reports the latest drill (or the one named), optionally restricted
to one event; everything after the reads is pure (`alertsim.drills.report.assemble`).
"""

from __future__ import annotations

from collections.abc import Sequence

from alertsim.adapters.sqlite.rows import DrillRow
from alertsim.adapters.sqlite.store import Store
from alertsim.drills.report.assemble import assemble
from alertsim.drills.report.model import DrillReport
from alertsim.drills.report.recorded import RecordedDrill
from alertsim.errors import InputError
from alertsim.service.records import OutboxRow

__all__ = ["build_report"]


async def _check_event(store: Store, event_id: str, alerts: Sequence[OutboxRow]) -> None:
    """InputError unless the record knows the event (an alert or an event row names it)."""
    saved = {e.event_id for e in await store.views.events()}
    known = {r.event_id for r in alerts if r.event_id} | saved
    if event_id not in known:
        listed = ", ".join(sorted(known)) or "none"
        raise InputError(store.path, [f"event: no event {event_id!r} in this record "
                                      f"(recorded: {listed})"])


def _chosen(drills: Sequence[DrillRow], drill_id: str | None, source: str) -> DrillRow | None:
    """The drill row reported: the latest, or the one named (InputError when unknown)."""
    if drill_id is None:
        return drills[-1] if drills else None
    row = next((d for d in drills if d.drill_id == drill_id), None)
    if row is None:
        known = ", ".join(d.drill_id for d in drills) or "none"
        raise InputError(source, [f"drill_id: no drill {drill_id!r} (recorded: {known})"])
    return row


async def build_report(store: Store, drill_id: str | None = None,
                       event_id: str | None = None) -> DrillReport:
    """The report of one drill (the latest when `drill_id` is None), optionally restricted
    to one event; InputError when `drill_id` names no recorded drill or the drill's
    recorded settings cannot be read."""
    drills = await store.drills.drills()
    row = _chosen(drills, drill_id, store.path)
    drill = RecordedDrill.read(row, store.path) if row is not None else None
    alerts = await store.views.outbox(kind="alert")
    if event_id is not None:
        await _check_event(store, event_id, alerts)
    return assemble(drill, drills, alerts, await store.views.receipts(),
                    rejected=await store.views.rejected(),
                    counted=await store.views.refusal_counts(),
                    audit=await store.views.audit(), event_id=event_id)
