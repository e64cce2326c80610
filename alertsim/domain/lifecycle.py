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

The two stages live apart: domain/warning_stage.py (shelter, narrowing cancels,
evacuate-now, national) and domain/closing_stage.py (passed on confirmation, the
fall messages, cancel on an outcome); domain/draft.py builds each transition. This
module holds the flow rules and the transitions callers use.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from alertsim.domain import texts
from alertsim.domain.closing_stage import closing_stage, confirmation, on_outcome, send_passed
from alertsim.domain.detection import Detection
from alertsim.domain.draft import Draft
from alertsim.domain.event_state import EventState, Transition
from alertsim.domain.vocabulary import Stage
from alertsim.domain.warning_stage import warn
from alertsim.domain.warnings import Decision

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


def on_detection(state: EventState, detection: Detection, decision: Decision, *,
                 now: datetime, rules: FlowRules | None = None) -> Transition:
    """Act on one detection update: new shelters, narrowing cancels, evacuate-now, the
    confirmation of a passage, and on an outcome the event's closing message."""
    rules = rules or FlowRules()
    if state.closed or detection.sequence <= state.last_sequence:
        return Transition(state, ())
    draft = Draft(state, now, detection.sequence)
    seq = f"sequence {detection.sequence}"
    if not state.places and not state.national and now >= decision.impact.time:
        if decision.prefectures:
            draft.withhold(None, f"{seq} arrives at {texts.hm_en(now)}, after the predicted "
                                 f"fall at {texts.hm_en(decision.impact.time)}: nobody is "
                                 "warned after the fact")
        return draft.done(last_sequence=detection.sequence, decision=decision)

    if state.ended is None:
        warn(draft, decision, detection, national=rules.national)
    else:
        _withhold_after_closing(draft, decision, detection, state.ended)
    ended, passed_due = state.ended, state.passed_due
    final_at = state.final_at
    if ended is None and detection.outcome is not None:
        ended, passed_due = on_outcome(draft, detection, decision)
        final_at = now
    elif ended is None:
        ended, passed_due = confirmation(draft, detection, decision,
                                         confirm_after=rules.confirm_after)
    elif detection.outcome is not None and final_at is None:
        final_at = now
    return draft.done(last_sequence=detection.sequence, decision=decision, ended=ended,
                      passed_due=passed_due, final_at=final_at)


def _withhold_after_closing(draft: Draft, decision: Decision, detection: Detection,
                            ended: Stage) -> None:
    """After the event's closing message: no shelter for newly warned places, and an
    outcome calling for another closing message is withheld."""
    seq = f"sequence {detection.sequence}"
    for w in decision.prefectures:
        if w.code not in draft.state.places:
            draft.withhold(w.code, f"{seq}: the event already had its closing message "
                                   f"({ended}); no shelter call for {w.name_en}")
    if detection.outcome is not None and ended != closing_stage(
            decision, detection.outcome, draft.had_imminent()):
        draft.withhold(None, f"{seq} (outcome {detection.outcome}): the event already had "
                             f"its closing message ({ended}); nothing more is sent")


def on_tick(state: EventState, *, now: datetime, rules: FlowRules | None = None) -> Transition:
    """Time passes: a passage due by now (unconfirmed after `confirm_after`, or confirmed
    before its last window ended) gets its passed message."""
    rules = rules or FlowRules()
    if state.closed or state.ended is not None or state.passed_due is None:
        return Transition(state, ())
    if now < state.passed_due:
        return Transition(state, ())
    draft = Draft(state, now, state.last_sequence)
    ended = send_passed(draft, state.decision)
    return draft.done(ended=ended, passed_due=None)


def on_cancel(state: EventState, *, now: datetime) -> Transition:
    """Operator cancel: the call to take shelter is lifted where it still stands."""
    if state.closed:
        return Transition(state, ())
    draft = Draft(state, now, state.last_sequence)
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
    draft = Draft(state, now, state.last_sequence)
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
