"""Where an event stands, per prefecture: the lifecycle's state, and what a transition
returns (the new state, the alerts to publish, the messages withheld). Pure data."""

from __future__ import annotations

from typing import Literal, NamedTuple

from pydantic import AwareDatetime, Field

from alertsim.domain.detection import Detection, ObjectKind
from alertsim.domain.messages import Alert
from alertsim.domain.model import Frozen
from alertsim.domain.vocabulary import AlertStatus, Stage
from alertsim.domain.warnings import Decision, Reason

__all__ = ["CLOSING", "EventState", "PlaceState", "PlaceStatus", "Transition",
           "Withheld", "new_event"]

PlaceStatus = Literal["sheltering", "passed", "fell", "cancelled"]
CLOSING: dict[Stage, PlaceStatus] = {"passed": "passed", "fell_land": "fell",
                                     "fell_sea": "fell", "cancel": "cancelled"}


class PlaceState(Frozen):
    """Where one prefecture stands in one event."""

    code: str
    name_ja: str
    name_en: str
    reason: Reason
    window_end: AwareDatetime
    window_start: AwareDatetime | None = None
    status: PlaceStatus
    stages: tuple[Stage, ...] = ()
    references: tuple[str, ...] = ()  # CAP references of everything sent to this place
    # The detection sequence whose shelter opened this place's current warning (0: none
    # yet); a shared identity keys identifiers by it rather than by the event's counter.
    since_sequence: int = 0


class EventState(Frozen):
    event_id: str
    nonce: str
    # Never published: keys the last part of every identifier, so no one can predict the
    # next identifier from earlier public alerts (and pre-empt it with a forgery).
    secret: str = ""
    # True: nonce and secret derive from the services' shared secret (`shared_identity`),
    # and identifiers from (event, sequence, stage, prefecture) rather than the counter.
    shared_identity: bool = False
    status: AlertStatus
    sender: str
    object: ObjectKind
    last_sequence: int = 0
    places: dict[str, PlaceState] = Field(default_factory=dict)
    national: tuple[str, ...] = ()  # references of national messages
    counter: int = 0
    final_at: AwareDatetime | None = None  # when an outcome arrived (automatic close timer)
    passed_due: AwareDatetime | None = None  # when "passed" goes out unless confirmed sooner
    ended: Stage | None = None  # the event's closing message, once sent
    closed: bool = False
    decision: Decision | None = None


class Withheld(NamedTuple):
    """A message the flow did not send, and why (recorded, and told on the errors topic)."""

    event_id: str
    prefecture: str | None
    reason: str


class Transition(NamedTuple):
    state: EventState
    alerts: tuple[Alert, ...]
    withheld: tuple[Withheld, ...] = ()


def new_event(detection: Detection, *, nonce: str, status: AlertStatus,
              sender: str, secret: str = "", shared_identity: bool = False) -> EventState:
    return EventState(event_id=detection.event_id, nonce=nonce, secret=secret, status=status,
                      sender=sender, object=detection.object, shared_identity=shared_identity)
