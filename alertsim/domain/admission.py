"""Whether an input may change an event: new, a harmless duplicate, or refused with a reason.

MQTT delivers at least once, so the same detection may arrive twice (after a reconnect, a
restart, a persistent session's replay): an identical copy is a duplicate and changes
nothing. Anything else that cannot be acted on is refused, and the reason is published:

    stale       observed longer ago than the service's limit (a live service never acts on
                yesterday's launch, e.g. one queued in a persistent session for days)
    ahead       observed further in the future than clocks can disagree
    closed      the event id belongs to an event that has ended
    old         an older sequence than the latest one acted on
    conflict    the latest sequence again, with different content

Pure: the caller passes "now", the event's state and the recorded copy of that sequence.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from alertsim.domain.detection import Detection
from alertsim.domain.event_state import EventState
from alertsim.domain.operator import OperatorAction

__all__ = ["Admission", "Limits", "Refused", "admit_action", "admit_detection"]


@dataclass(frozen=True)
class Refused:
    """An input that must not be acted on, and why (published on the errors topic)."""

    reason: str


Admission = Literal["new", "duplicate"] | Refused


@dataclass(frozen=True)
class Limits:
    """How far an observation may lie behind or ahead of the service's clock."""

    stale_after: timedelta = timedelta(minutes=10)
    ahead_by: timedelta = timedelta(minutes=5)


def _when(moment: datetime) -> str:
    return moment.isoformat(timespec="seconds")


def admit_detection(detection: Detection, state: EventState | None, *, closed: bool,
                    recorded: Detection | None, now: datetime, limits: Limits) -> Admission:
    """New, duplicate or refused; `recorded` is what was kept for this (event, sequence)."""
    if recorded is not None and recorded == detection:
        return "duplicate"
    event, sequence = detection.event_id, detection.sequence
    if closed or (state is not None and state.closed):
        return Refused(f"event_id: event {event!r} is closed; a new launch needs a new "
                       "event_id")
    last = state.last_sequence if state is not None else 0
    if sequence < last:
        return Refused(f"sequence: {sequence} is older than sequence {last} of event "
                       f"{event!r}, already acted on")
    if sequence == last or recorded is not None:
        return Refused(f"sequence: {sequence} of event {event!r} was already received with "
                       "different content")
    if detection.observed_at < now - limits.stale_after:
        return Refused(f"observed_at: {_when(detection.observed_at)} is stale: more than "
                       f"{limits.stale_after.total_seconds():g} s behind the service clock "
                       f"({_when(now)})")
    if detection.observed_at > now + limits.ahead_by:
        return Refused(f"observed_at: {_when(detection.observed_at)} is more than "
                       f"{limits.ahead_by.total_seconds():g} s ahead of the service clock "
                       f"({_when(now)})")
    return "new"


def admit_action(action: OperatorAction, state: EventState | None, *,
                 closed: bool) -> Admission:
    """An operator action applies to a known event that is still open."""
    if closed or (state is not None and state.closed):
        return Refused(f"event_id: event {action.event_id!r} is already closed")
    if state is None:
        return Refused(f"event_id: no event {action.event_id!r} is known")
    return "new"
