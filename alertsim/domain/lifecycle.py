"""The alert lifecycle of one event, per prefecture: J-Alert's published flow, purely.

Every prefecture warned of an event gets the launch message (shelter), then exactly one
closing message, chosen from what happened (docs/jalert.md, "The published flow"):

    shelter --flew over Japan, passage confirmed------------------> passed
            --fell short, outside the territorial sea (outcome)---> fell_sea
            --predicted on land / territorial sea--> imminent --outcome--> fell_land | fell_sea
            --no longer expected to reach it / operator cancel---> cancel

`passed` goes to every prefecture still sheltering once the missile is past the last
window on its track *and* the passage is confirmed: by a later detection observed after
that window, by an outcome, or, with neither, `FlowRules.confirm_after` after the window.
Under the 2023 rule (`prefecture+adjacent`) the passed message also lifts the call to
shelter, in one message.
A prediction alone never sends a fall message: only an outcome does.

Nothing after the fact: no shelter for a prefecture whose window is over, none at all
for a first detection after the predicted fall, nothing for a prefecture after its
closing message, no evacuate-now after the predicted fall. What is withheld comes back
in `Transition.withheld` with its reason; the service records it and publishes it on the
errors topic. Closing an event still sheltering somewhere cancels it there first.

Every transition takes the current state, the input and "now", and returns the new state
(domain/event_state.py) and the alerts to publish, in order. Nothing is sent twice: a
duplicate or stale detection sequence, or an event already closed, returns the state
unchanged and no alerts. Identifiers: domain/identifiers.py.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from alertsim.domain import texts
from alertsim.domain.detection import Detection
from alertsim.domain.event_state import (
    CLOSING,
    EventState,
    PlaceState,
    Transition,
    Withheld,
)
from alertsim.domain.identifiers import identifier
from alertsim.domain.messages import Alert, build_alert
from alertsim.domain.vocabulary import MsgType, Stage
from alertsim.domain.warnings import Decision, WarnedPrefecture

# With no detection to confirm a passage, the passed message waits this long after the
# last window. J-Alert's delays from the passage to its closing message (docs/jalert.md):
# 2016-02-07 ~1 min, 2017-09-15 1 min, 2017-08-29 7 min, 2022-10-04 13 min, 2023-11-21
# 20 min; the 2023-05-31 call was lifted 34 min after the launch (our track puts the
# predicted passage near 06:40, so ~24 min after it: an estimate). The default is longer
# than all of them, so a replay's own confirming detection (at the record's time) comes first.
DEFAULT_CONFIRM_AFTER = timedelta(minutes=30)


@dataclass(frozen=True)
class FlowRules:
    """The parts of the flow that an era or a drill sets."""

    confirm_after: timedelta = DEFAULT_CONFIRM_AFTER
    national: bool = False  # alertsim's own national message when nobody is warned (opt-in)


def _hm(moment: datetime) -> str:
    return texts.hm_en(moment)


class _Draft:
    """Collects alerts, withheld messages and state changes during one transition."""

    def __init__(self, state: EventState, now: datetime, sequence: int) -> None:
        self.state = state
        self.places = dict(state.places)
        self.national = state.national
        self.counter = state.counter
        self.now = now
        self.sequence = sequence
        self.alerts: list[Alert] = []
        self.withheld: list[Withheld] = []

    def withhold(self, code: str | None, reason: str) -> None:
        self.withheld.append(Withheld(self.state.event_id, code, reason))

    def sheltering(self) -> list[PlaceState]:
        return [p for _, p in sorted(self.places.items()) if p.status == "sheltering"]

    def emit(self, stage: Stage, place: PlaceState | None, body: texts.Bilingual) -> None:
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
            "status": CLOSING.get(stage, place.status),
            "since_sequence": since,
        })

    def close_all(self, stage: Stage, body: texts.Bilingual) -> Stage | None:
        """The event's closing message to every place still sheltering; the stage sent."""
        open_places = self.sheltering()
        for place in open_places:
            self.emit(stage, place, body)
        return stage if open_places else None

    def done(self, **changes: object) -> Transition:
        state = self.state.model_copy(update={
            "places": self.places, "national": self.national, "counter": self.counter,
            **changes})
        return Transition(state, tuple(self.alerts), tuple(self.withheld))


def _place(w: WarnedPrefecture) -> PlaceState:
    return PlaceState(code=w.code, name_ja=w.name_ja, name_en=w.name_en, reason=w.reason,
                      window_start=w.window.start, window_end=w.window.end,
                      status="sheltering")


def _toward(decision: Decision) -> tuple[str, str]:
    impact = decision.impact
    if impact.sea is not None and impact.classification in ("eez", "outside"):
        return impact.sea.name_ja, impact.sea.name_en
    if impact.prefecture_ja and impact.prefecture_en:
        return impact.prefecture_ja, impact.prefecture_en
    return "日本の周辺", "the waters around Japan"


def _passed_text(places: list[PlaceState], decision: Decision | None,
                 lifts: bool) -> texts.Bilingual:
    """One text for every recipient: over which prefectures, toward where, between when."""
    over = [p for p in (decision.prefectures if decision else ()) if p.overflown]
    names_ja = [p.name_ja for p in over] or [p.name_ja for p in places]
    names_en = [p.name_en for p in over] or [p.name_en for p in places]
    starts = [p.window.start for p in over] or [p.window_start or p.window_end for p in places]
    ends = [p.window.end for p in over] or [p.window_end for p in places]
    toward_ja, toward_en = _toward(decision) if decision else ("太平洋", "the Pacific Ocean")
    return texts.passed(min(starts), max(ends), names_ja, names_en, toward_ja, toward_en,
                        lifts_call=lifts)


def _last_window(draft: _Draft) -> datetime | None:
    return max((p.window_end for p in draft.sheltering()), default=None)


def _had_imminent(draft: _Draft) -> bool:
    return any("imminent" in p.stages for p in draft.places.values())


def on_detection(state: EventState, detection: Detection, decision: Decision, *,
                 now: datetime, rules: FlowRules | None = None) -> Transition:
    """Act on one detection update: new shelters, narrowing cancels, evacuate-now, the
    confirmation of a passage, and on an outcome the event's closing message."""
    rules = rules or FlowRules()
    if state.closed or detection.sequence <= state.last_sequence:
        return Transition(state, ())
    draft = _Draft(state, now, detection.sequence)
    seq = f"sequence {detection.sequence}"
    if not state.places and not state.national and now >= decision.impact.time:
        if decision.prefectures:
            draft.withhold(None, f"{seq} arrives at {_hm(now)}, after the predicted fall at "
                                 f"{_hm(decision.impact.time)}: nobody is warned after the fact")
        return draft.done(last_sequence=detection.sequence, decision=decision)

    if state.ended is None:
        _warn(draft, decision, detection, rules)
    else:
        for w in decision.prefectures:
            if w.code not in state.places:
                draft.withhold(w.code, f"{seq}: the event already had its closing message "
                                       f"({state.ended}); no shelter call for {w.name_en}")
        if detection.outcome is not None and state.ended != _closing_stage(
                decision, detection.outcome, _had_imminent(draft)):
            draft.withhold(None, f"{seq} (outcome {detection.outcome}): the event already had "
                                 f"its closing message ({state.ended}); nothing more is sent")
    ended, passed_due = state.ended, state.passed_due
    final_at = state.final_at
    if ended is None and detection.outcome is not None:
        ended, passed_due = _outcome(draft, detection, decision, rules)
        final_at = now
    elif ended is None:
        ended, passed_due = _confirmation(draft, detection, decision, rules)
    elif detection.outcome is not None and final_at is None:
        final_at = now
    return draft.done(last_sequence=detection.sequence, decision=decision, ended=ended,
                      passed_due=passed_due, final_at=final_at)


def _warn(draft: _Draft, decision: Decision, detection: Detection, rules: FlowRules) -> None:
    """Shelter for newly warned places (never after the fact), cancel for places no longer
    warned (before any outcome), evacuate-now around a predicted fall in Japan."""
    now, state = draft.now, draft.state
    seq = f"sequence {detection.sequence}"
    warned = {w.code: w for w in decision.prefectures}
    confirming = (detection.outcome is None and decision.course == "flies_over"
                  and _confirms(draft, detection))
    if detection.outcome is None and not confirming:
        for place in draft.sheltering():
            if place.code not in warned:
                body = (texts.cancel(place.name_ja, place.name_en) if warned else texts.cancel())
                draft.emit("cancel", place, body)
    for code, w in sorted(warned.items()):
        known = draft.places.get(code)
        if known is not None and known.status == "sheltering":
            draft.places[code] = known.model_copy(update={
                "reason": w.reason, "window_end": w.window.end, "window_start": w.window.start})
        elif known is not None:
            draft.withhold(code, f"{seq}: {w.name_en} already had its closing message "
                                 f"({known.stages[-1]}); nothing more is sent there")
        elif w.window.end <= now:
            draft.withhold(code, f"{seq}: {w.name_en}'s window ended at "
                                 f"{_hm(w.window.end)}, before {_hm(now)}: no shelter call "
                                 "after the fact")
        else:
            draft.emit("shelter", _place(w), texts.shelter())

    impact = decision.impact
    if decision.course == "falls_in_japan" and detection.outcome is None:
        around = {c for c, w in warned.items() if w.reason == "impact_area"}
        around |= {impact.prefecture} if impact.prefecture else set()
        for place in draft.sheltering():
            if place.code not in around or "imminent" in place.stages:
                continue
            if now >= impact.time:
                draft.withhold(place.code, f"{seq}: the predicted fall at {_hm(impact.time)} "
                                           "is past: no evacuate-now message")
                continue
            draft.emit("imminent", place, texts.imminent(
                impact.time, impact.prefecture_ja or place.name_ja,
                impact.prefecture_en or place.name_en))

    if (rules.national and not warned and not state.places and not state.national
            and impact.sea is not None):
        draft.emit("national", None, texts.national(impact.time, impact.sea.name_ja,
                                                    impact.sea.name_en,
                                                    impact.classification == "eez"))


def _confirms(draft: _Draft, detection: Detection) -> bool:
    """A detection observed after the last window still open confirms the passage."""
    last = _last_window(draft)
    return last is not None and detection.observed_at >= last and not _had_imminent(draft)


def _confirmation(draft: _Draft, detection: Detection, decision: Decision,
                  rules: FlowRules) -> tuple[Stage | None, datetime | None]:
    """(ended, passed_due) after an update without an outcome."""
    if decision.course != "flies_over" or _had_imminent(draft):
        return None, None
    last = _last_window(draft)
    if last is None:
        return None, None
    if detection.observed_at < last:
        return None, last + rules.confirm_after
    if draft.now < last:  # confirmed, but the alert cannot go out before the window's end
        return None, last
    return _send_passed(draft, decision), None


def _send_passed(draft: _Draft, decision: Decision | None) -> Stage | None:
    """"Passed" to every place still sheltering, named from `decision` when it flies over;
    under the 2023 rule it also lifts the call to shelter."""
    over = decision if decision is not None and decision.course == "flies_over" else None
    lifts = decision is not None and decision.policy == "prefecture+adjacent"
    return draft.close_all("passed", _passed_text(draft.sheltering(), over, lifts))


def _closing_stage(decision: Decision, outcome: str, had_imminent: bool) -> Stage:
    """The closing message an outcome calls for (jalert.md, "The published flow")."""
    impact = decision.impact
    if outcome in ("breakup", "lost"):
        return "cancel"
    if outcome == "impact" and impact.classification in ("land", "territorial_sea"):
        return "fell_land"
    flew_over = outcome == "orbit" or decision.course == "flies_over"
    if impact.sea is not None and (had_imminent or not flew_over):
        return "fell_sea"
    return "passed"


def _outcome(draft: _Draft, detection: Detection, decision: Decision,
             rules: FlowRules) -> tuple[Stage | None, datetime | None]:
    """(ended, passed_due) on the final update: the event's one closing message."""
    if not draft.sheltering() or detection.outcome is None:
        return None, None
    impact = decision.impact
    stage = _closing_stage(decision, detection.outcome, _had_imminent(draft))
    if stage == "cancel":
        return draft.close_all("cancel", texts.cancel()), None
    if stage == "fell_land":
        return draft.close_all("fell_land", texts.fell_land(
            impact.time, impact.prefecture_ja or "", impact.prefecture_en or "")), None
    if stage == "fell_sea" and impact.sea is not None:
        return draft.close_all("fell_sea", texts.fell_sea(
            impact.time, impact.sea.name_ja, impact.sea.name_en,
            impact.classification == "eez")), None
    last = _last_window(draft)
    if last is not None and draft.now < last:  # confirmed, but not past the last window yet
        return None, last
    return _send_passed(draft, decision), None


def on_tick(state: EventState, *, now: datetime, rules: FlowRules | None = None) -> Transition:
    """Time passes: a passage due by now (unconfirmed after `confirm_after`, or confirmed
    before its last window ended) gets its passed message."""
    rules = rules or FlowRules()
    if state.closed or state.ended is not None or state.passed_due is None:
        return Transition(state, ())
    if now < state.passed_due:
        return Transition(state, ())
    draft = _Draft(state, now, state.last_sequence)
    ended = _send_passed(draft, state.decision)
    return draft.done(ended=ended, passed_due=None)


def on_cancel(state: EventState, *, now: datetime) -> Transition:
    """Operator cancel: the call to take shelter is lifted where it still stands."""
    if state.closed:
        return Transition(state, ())
    draft = _Draft(state, now, state.last_sequence)
    ended = draft.close_all("cancel", texts.cancel())
    if ended is None:
        draft.withhold(None, "cancel: no prefecture is still told to shelter for this event; "
                             "nothing is sent")
        return draft.done()
    return draft.done(ended=ended, passed_due=None)


def on_close(state: EventState, *, now: datetime) -> Transition:
    """Close the event: where a shelter call still stands it is lifted first (cancel), so
    no receiver is left sheltering; then nothing more is sent and retained state clears."""
    if state.closed:
        return Transition(state, ())
    draft = _Draft(state, now, state.last_sequence)
    ended = draft.close_all("cancel", texts.cancel()) or state.ended
    return draft.done(closed=True, ended=ended, passed_due=None)


def next_deadline(state: EventState, *, close_after: timedelta) -> datetime | None:
    """When this event next needs a tick: a passage due, or the automatic close."""
    if state.closed:
        return None
    times = []
    if state.ended is None and state.passed_due is not None:
        times.append(state.passed_due)
    if state.final_at is not None:
        times.append(state.final_at + close_after)
    return min(times, default=None)


def due_to_close(state: EventState, *, now: datetime, close_after: timedelta) -> bool:
    return (not state.closed and state.final_at is not None
            and now >= state.final_at + close_after)
