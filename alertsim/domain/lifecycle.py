"""The alert lifecycle of one event, per prefecture: a pure state machine.

    (none) --warned--> sheltering --window over--> passed --fell at sea--> (fell_sea)
                          |  \\--predicted to fall here--> imminent (still sheltering)
                          |--no longer warned / operator cancel / breakup--> cancelled
                          \\--fell here--> fell
    cancelled --warned again--> sheltering (a new Alert)

Every transition takes the current state, the input and "now", and returns the new state
and the alerts to publish, in order. Nothing is sent twice: a duplicate or stale
detection sequence, or an event already closed, returns the state unchanged and no
alerts. Identifiers are minted from the event's nonce and a counter, so they are never
reused across runs (a new nonce each time an event is first seen) yet stable within one,
and end in a MAC keyed by the event's unpublished secret, so they cannot be predicted.
With a shared identity (redundant services, docs/redundancy.md) the nonce and secret derive
from a secret the services share, and the counter gives way to the sequence that opened the
place's warning: identifiers then depend only on (event, sequence, stage, prefecture).
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from typing import Literal, NamedTuple

from pydantic import AwareDatetime, Field

from alertsim.domain import texts
from alertsim.domain.detection import Detection, ObjectKind
from alertsim.domain.messages import Alert, build_alert
from alertsim.domain.model import Frozen
from alertsim.domain.vocabulary import AlertStatus, MsgType, Stage
from alertsim.domain.warnings import Decision, Reason, WarnedPrefecture

PlaceStatus = Literal["sheltering", "passed", "fell", "cancelled"]
OPEN: frozenset[PlaceStatus] = frozenset({"sheltering", "passed"})


class PlaceState(Frozen):
    """Where one prefecture stands in one event."""

    code: str
    name_ja: str
    name_en: str
    reason: Reason
    window_end: AwareDatetime
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
    final_at: AwareDatetime | None = None
    closed: bool = False
    decision: Decision | None = None


class Transition(NamedTuple):
    state: EventState
    alerts: tuple[Alert, ...]


def new_event(detection: Detection, *, nonce: str, status: AlertStatus,
              sender: str, secret: str = "", shared_identity: bool = False) -> EventState:
    return EventState(event_id=detection.event_id, nonce=nonce, secret=secret, status=status,
                      sender=sender, object=detection.object, shared_identity=shared_identity)


def shared_identity(detection: Detection, shared_secret: bytes) -> tuple[str, str]:
    """(nonce, secret) of a new event for services sharing `shared_secret`: the same in
    every one of them (from the event id and launch time), unguessable without it."""
    key = hashlib.blake2b(shared_secret, digest_size=64).digest()  # any length -> one key
    launch = detection.launch.time.astimezone(UTC).isoformat()
    digest = hashlib.blake2b(f"alertsim.identity.v1|{detection.event_id}|{launch}".encode(),
                             key=key, digest_size=36).hexdigest()
    return digest[:8], digest[8:]


def identifier(state: EventState, counter: int, stage: Stage, code: str | None,
               since_sequence: int = 0) -> str:
    """`alertsim.NONCE.EVENT.COUNTER.STAGE.PLACE.MAC`: readable, never reused (a fresh
    nonce per event, a counter within it), and unguessable (MAC keyed by the event's
    unpublished secret). With a shared identity, `since_sequence` (the sequence that
    opened the place's warning) stands in for the counter: services whose timers and
    inputs interleave differently still mint the same identifier for the same alert."""
    place = code or "national"
    number = since_sequence if state.shared_identity else counter
    mac = hashlib.blake2b(f"{state.event_id}|{number}|{stage}|{place}".encode(),
                          key=state.secret.encode()[:64], digest_size=8).hexdigest()
    return f"alertsim.{state.nonce}.{state.event_id}.{number:04d}.{stage}.{place}.{mac}"


class _Draft:
    """Collects alerts and state changes during one transition."""

    def __init__(self, state: EventState, now: datetime, sequence: int) -> None:
        self.state = state
        self.places = dict(state.places)
        self.national = state.national
        self.counter = state.counter
        self.now = now
        self.sequence = sequence
        self.alerts: list[Alert] = []

    def emit(self, stage: Stage, place: PlaceState | None, body: texts.Bilingual,
             status: PlaceStatus | None = None) -> None:
        previous = place.references if place is not None else self.national
        msg_type: MsgType = "Cancel" if stage == "cancel" else ("Update" if previous else "Alert")
        if stage == "shelter":
            msg_type, previous = "Alert", ()
        self.counter += 1
        code = place.code if place is not None else None
        since = place.since_sequence if place is not None and stage != "shelter" else 0
        since = since or self.sequence
        alert = build_alert(
            identifier=identifier(self.state, self.counter, stage, code, since),
            sender=self.state.sender, status=self.state.status, sent=self.now,
            msg_type=msg_type, stage=stage, texts=body, event_id=self.state.event_id,
            sequence=self.sequence, object_kind=self.state.object, code=code,
            name_ja=place.name_ja if place else "", name_en=place.name_en if place else "",
            references=previous)
        self.alerts.append(alert)
        if place is None:
            self.national = (*self.national, alert.reference())
            return
        self.places[place.code] = place.model_copy(update={
            "stages": (*place.stages, stage),
            "references": (*previous, alert.reference()),
            "status": status or place.status,
            "since_sequence": since,
        })

    def done(self, **changes: object) -> Transition:
        state = self.state.model_copy(update={
            "places": self.places, "national": self.national, "counter": self.counter,
            **changes})
        return Transition(state, tuple(self.alerts))


def _place(w: WarnedPrefecture) -> PlaceState:
    return PlaceState(code=w.code, name_ja=w.name_ja, name_en=w.name_en, reason=w.reason,
                      window_end=w.window.end, status="sheltering")


def _toward(decision: Decision) -> tuple[str, str]:
    impact = decision.impact
    if impact.sea is not None and impact.classification in ("eez", "outside"):
        return impact.sea.name_ja, impact.sea.name_en
    if impact.prefecture_ja and impact.prefecture_en:
        return impact.prefecture_ja, impact.prefecture_en
    return "日本の周辺", "the waters around Japan"


def _passed(draft: _Draft, place: PlaceState, decision: Decision) -> None:
    toward_ja, toward_en = _toward(decision)
    draft.emit("passed", place, texts.passed(place.window_end, place.name_ja, place.name_en,
                                             toward_ja, toward_en), status="passed")


def on_detection(state: EventState, detection: Detection, decision: Decision, *,
                 now: datetime) -> Transition:
    """Re-decide one detection update: new Alerts, Cancels, imminent, national, final."""
    if state.closed or detection.sequence <= state.last_sequence:
        return Transition(state, ())
    draft = _Draft(state, now, detection.sequence)
    warned = {w.code: w for w in decision.prefectures}

    for code, place in sorted(state.places.items()):
        if place.status == "sheltering" and code not in warned:
            body = (texts.cancel(place.name_ja, place.name_en) if warned else texts.cancel())
            draft.emit("cancel", place, body, status="cancelled")

    for code, w in sorted(warned.items()):
        known = draft.places.get(code)
        if known is None or known.status == "cancelled":
            fresh = _place(w)
            if known is not None:
                fresh = fresh.model_copy(update={"stages": known.stages,
                                                 "references": known.references})
            draft.emit("shelter", fresh, texts.shelter())
        elif known.status == "sheltering":
            draft.places[code] = known.model_copy(update={"reason": w.reason,
                                                          "window_end": w.window.end})

    impact = decision.impact
    target = draft.places.get(impact.prefecture or "")
    if (impact.classification in ("land", "territorial_sea") and target is not None
            and target.status == "sheltering" and "imminent" not in _since_shelter(target)):
        draft.emit("imminent", target, texts.imminent(impact.time, target.name_ja,
                                                      target.name_en))

    if not warned and not state.places and not state.national and impact.sea is not None:
        draft.emit("national", None, texts.national(impact.time, impact.sea.name_ja,
                                                    impact.sea.name_en,
                                                    impact.classification == "eez"))

    final_at = state.final_at
    if detection.outcome is not None and final_at is None:
        _final(draft, detection, decision)
        final_at = now
    return draft.done(last_sequence=detection.sequence, decision=decision, final_at=final_at)


def _since_shelter(place: PlaceState) -> tuple[Stage, ...]:
    stages = place.stages
    last = max((i for i, s in enumerate(stages) if s == "shelter"), default=-1)
    return stages[last + 1:]


def _final(draft: _Draft, detection: Detection, decision: Decision) -> None:
    """The last word on an event: fell on land / at sea, passed (orbit), or cancel."""
    impact = decision.impact
    outcome = detection.outcome
    if outcome in ("breakup", "lost"):
        for place in sorted(draft.places.values(), key=lambda p: p.code):
            if place.status == "sheltering":
                draft.emit("cancel", place, texts.cancel(), status="cancelled")
        return
    for place in sorted(draft.places.values(), key=lambda p: p.code):
        overflown = place.code != impact.prefecture and place.window_end <= draft.now
        if place.status == "sheltering" and (outcome == "orbit" or overflown):
            _passed(draft, place, decision)
    if outcome != "impact":
        return
    if impact.classification in ("land", "territorial_sea") and impact.prefecture:
        place = draft.places.get(impact.prefecture) or PlaceState(
            code=impact.prefecture, name_ja=impact.prefecture_ja or "",
            name_en=impact.prefecture_en or "", reason="impact_area",
            window_end=impact.time, status="sheltering")
        draft.emit("fell_land", place, texts.fell_land(impact.time, place.name_ja,
                                                        place.name_en), status="fell")
    elif impact.sea is not None:
        for place in sorted(draft.places.values(), key=lambda p: p.code):
            if place.status in OPEN:
                draft.emit("fell_sea", place, texts.fell_sea(
                    impact.time, impact.sea.name_ja, impact.sea.name_en,
                    impact.classification == "eez"), status="fell")


def on_tick(state: EventState, *, now: datetime) -> Transition:
    """Time passes: prefectures whose overflight window is over get "passed"."""
    if state.closed or state.decision is None:
        return Transition(state, ())
    draft = _Draft(state, now, state.last_sequence)
    for place in sorted(state.places.values(), key=lambda p: p.code):
        if (place.status == "sheltering" and place.reason in ("overflight", "adjacent")
                and place.window_end <= now):
            _passed(draft, place, state.decision)
    return draft.done()


def on_cancel(state: EventState, *, now: datetime) -> Transition:
    """Operator cancel: the call to take shelter is lifted for every open place."""
    if state.closed:
        return Transition(state, ())
    draft = _Draft(state, now, state.last_sequence)
    for place in sorted(state.places.values(), key=lambda p: p.code):
        if place.status in OPEN:
            draft.emit("cancel", place, texts.cancel(), status="cancelled")
    return draft.done()


def on_close(state: EventState) -> Transition:
    """Close the event: nothing more is sent for it; retained state is cleared."""
    return Transition(state.model_copy(update={"closed": True}), ())


def next_deadline(state: EventState, *, close_after: timedelta) -> datetime | None:
    """When this event next needs a tick: a window ending, or the automatic close."""
    if state.closed:
        return None
    times = [p.window_end for p in state.places.values()
             if p.status == "sheltering" and p.reason in ("overflight", "adjacent")]
    if state.final_at is not None:
        times.append(state.final_at + close_after)
    return min(times, default=None)


def due_to_close(state: EventState, *, now: datetime, close_after: timedelta) -> bool:
    return (not state.closed and state.final_at is not None
            and now >= state.final_at + close_after)
