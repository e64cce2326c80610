"""The service's records: inputs kept before they are acted on, event states, and the
outbox of every message it will publish, written before it is sent.

    OutboxMessage  what the service writes (an alert, a retained state, an error report)
    OutboxRow      the same as stored, with its position and, once acknowledged, when
    EventRow       an event's saved state, so open events resume after a restart
    Change         what one input (or tick) changed, written in one transaction
    DetectionRow   an accepted detection as it arrived and as it was parsed
    PendingInput   a recorded input not yet acted on (redone at start-up)
    RefusalCount   refusals from one client counted, not kept one row each

A row carries everything publishing needs (kind, msgType, expiry) so the publisher never
parses a payload back.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Final, Literal, get_args

from alertsim.domain.vocabulary import MsgType, Stage
from alertsim.service.clock import real_now

__all__ = [
    "OUTBOX_KINDS",
    "Change",
    "DecisionRecord",
    "DetectionRow",
    "EventRow",
    "InputKind",
    "OutboxKind",
    "OutboxMessage",
    "OutboxRow",
    "PendingInput",
    "ProcessedInput",
    "RefusalCount",
]

OutboxKind = Literal["alert", "state", "error"]
OUTBOX_KINDS: Final[tuple[OutboxKind, ...]] = get_args(OutboxKind)
InputKind = Literal["detection", "operator"]
# (kind, row id) of a recorded input
ProcessedInput = tuple[InputKind, int]


@dataclass(frozen=True)
class OutboxMessage:
    """One message the service will publish; `message_id` is the CAP identifier for alerts.

    `msg_type` and `expires_at` are set for alerts only; `sim_time` is the alert's
    simulated `sent` time (or the state's `updated`).
    """

    message_id: str
    event_id: str | None
    kind: OutboxKind
    prefecture: str | None  # two-digit code; None = national, or not about a place
    stage: Stage | None
    topic: str
    payload: bytes
    qos: int
    retain: bool
    sim_time: datetime | None
    created_at: datetime
    msg_type: MsgType | None = None
    expires_at: datetime | None = None


@dataclass(frozen=True)
class OutboxRow(OutboxMessage):
    """An outbox message with its position and, once the broker acknowledged it, when."""

    seq: int = 0
    published_at: datetime | None = None


@dataclass(frozen=True)
class EventRow:
    """The saved state of an event."""

    event_id: str
    state_json: str
    closed: bool
    updated_at: datetime


@dataclass(frozen=True)
class DecisionRecord:
    """A decision taken for one sequence of an event, as JSON."""

    event_id: str
    sequence: int
    decision_json: str
    decided_at: datetime


@dataclass(frozen=True)
class Change:
    """Everything one input or tick changed, committed at once or not at all.

    `processed` names the recorded input this change acts on (detection or operator row),
    so an input is either still pending or fully acted on, never half.
    """

    events: tuple[EventRow, ...] = ()
    decisions: tuple[DecisionRecord, ...] = ()
    outbox: tuple[OutboxMessage, ...] = ()
    # Messages the flow withheld (after the fact, after a closing message), kept beside
    # refused inputs: (source, reason, raw excerpt)
    withheld: tuple[tuple[str, str, bytes], ...] = ()
    processed: ProcessedInput | None = None
    processed_at: datetime = field(default_factory=real_now)


@dataclass(frozen=True)
class DetectionRow:
    """An accepted detection as it arrived and as it was parsed."""

    id: int
    event_id: str
    sequence: int
    source: str
    received_at: datetime
    raw: bytes
    parsed_json: str
    processed_at: datetime | None = None


@dataclass(frozen=True)
class PendingInput:
    """A recorded input not yet acted on (the service stopped in between): redone at start."""

    kind: InputKind
    id: int
    raw: bytes
    source: str
    received_at: datetime


@dataclass(frozen=True)
class RefusalCount:
    """`count` refusals totalling `bytes` from one client (its topic), the last at `at`,
    added to that client's counter instead of a row each (`domain.refusal`)."""

    source: str
    count: int
    bytes: int
    at: datetime
