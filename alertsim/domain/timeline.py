"""Run a timeline of inputs through decide + lifecycle on a virtual clock, purely.

This is the service's logic without its I/O: the same admission rules (duplicate, stale,
ahead, closed, old, conflicting), the same transitions in the same order, with the ticks
(passages due, automatic closes) the service would schedule. Tests and
`alertsim drill --dry-run` use it to know what a scenario should produce; what the
service would refuse or withhold comes back as `Note`s, one per row the service records.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from alertsim.domain import lifecycle
from alertsim.domain.admission import Limits, Refused, admit_action, admit_detection
from alertsim.domain.detection import Detection
from alertsim.domain.event_state import EventState, Transition, new_event
from alertsim.domain.identifiers import shared_identity
from alertsim.domain.lifecycle import FlowRules
from alertsim.domain.messages import Alert
from alertsim.domain.operator import OperatorAction
from alertsim.domain.policies import resolve_policy
from alertsim.domain.prefectures import Atlas
from alertsim.domain.vocabulary import AlertStatus, PolicyChoice
from alertsim.domain.warnings import decide

TimelineInput = Detection | OperatorAction


@dataclass(frozen=True)
class Sent:
    at: datetime
    alert: Alert


@dataclass(frozen=True)
class Note:
    """An input refused, or a message withheld, at `at`: one row the service records."""

    at: datetime
    reason: str


# (not sheltering, minus the POSIX time of the latest message, event id): smaller first
StateRank = tuple[bool, float, str]


def state_rank(state: EventState, code: str) -> StateRank | None:
    """Where the event stands in prefecture `code`'s retained state: sheltering events
    first, then the most recently updated, then by id; None when it is not listed there
    (closed, or nothing sent to that place)."""
    place = state.places.get(code)
    if place is None or state.closed or not place.references:
        return None
    sent = datetime.fromisoformat(place.references[-1].rsplit(",", 1)[1])
    return (place.status != "sheltering", -sent.timestamp(), state.event_id)


@dataclass
class Engine:
    """Events by id and the pure transitions between them; the service wraps one.

    Two indexes keep the work per input small however many events are open: a heap of
    (deadline, event id) so the next deadline and the events due are found without
    visiting every event, and the open events of each prefecture with their `state_rank`,
    so a prefecture's state is built from its own top-ranked events only. Both follow
    `events` through `_keep` / `restore` (change events through the engine); a heap entry
    whose event changed or left `events` is checked against the event itself.
    """

    atlas: Atlas
    policy: PolicyChoice  # auto: the rule in force on each detection's launch date
    status: AlertStatus
    sender: str
    close_after: timedelta
    events: dict[str, EventState]
    rules: FlowRules = field(default_factory=FlowRules)
    # Redundant services share this secret: new events then take their nonce and secret
    # from it (identifiers.shared_identity), so every such service mints the same identifiers.
    identity_secret: bytes | None = field(default=None, repr=False)
    _deadlines: list[tuple[datetime, str]] = field(default_factory=list, init=False,
                                                   repr=False)
    _ranks: dict[str, dict[str, StateRank]] = field(default_factory=dict, init=False,
                                                    repr=False)

    def __post_init__(self) -> None:
        for state in list(self.events.values()):
            self.restore(state)

    def detection(self, detection: Detection, *, now: datetime, nonce: str,
                  secret: str = "") -> Transition:
        state = self.events.get(detection.event_id) or self._new_event(detection, nonce, secret)
        policy = resolve_policy(self.policy, detection.launch.time)
        decision = decide(detection, self.atlas, policy=policy, now=now)
        return self._keep(lifecycle.on_detection(state, detection, decision, now=now,
                                                 rules=self.rules))

    def _new_event(self, detection: Detection, nonce: str, secret: str) -> EventState:
        """A new event under `nonce` and `secret`, or under the shared identity if set."""
        shared = self.identity_secret is not None
        if self.identity_secret is not None:
            nonce, secret = shared_identity(detection, self.identity_secret)
        return new_event(detection, nonce=nonce, secret=secret, status=self.status,
                         sender=self.sender, shared_identity=shared)

    def action(self, action: OperatorAction, *, now: datetime) -> Transition | None:
        state = self.events.get(action.event_id)
        if state is None:
            return None
        if action.action == "cancel":
            return self._keep(lifecycle.on_cancel(state, now=now))
        return self._keep(lifecycle.on_close(state, now=now))

    def tick(self, *, now: datetime) -> list[Transition]:
        """Everything due by `now`: passed messages, then automatic closes (by event id)."""
        done = []
        for event_id in sorted(self._due(now)):
            state = self.events[event_id]
            moved = lifecycle.on_tick(state, now=now, rules=self.rules)
            if lifecycle.due_to_close(moved.state, now=now, close_after=self.close_after):
                closing = lifecycle.on_close(moved.state, now=now)
                moved = Transition(closing.state, moved.alerts + closing.alerts,
                                   moved.withheld + closing.withheld)
            if moved.state != state:
                done.append(self._keep(moved))
        return done

    def next_deadline(self) -> datetime | None:
        """The earliest deadline of any open event (from the heap, stale entries dropped)."""
        while self._deadlines:
            at, event_id = self._deadlines[0]
            if self._deadline_of(event_id) == at:
                return at
            heapq.heappop(self._deadlines)
        return None

    def open_at(self, code: str) -> dict[str, EventState]:
        """The open events that have a place in prefecture `code`, by id."""
        return {e: self.events[e] for e in self._ranks.get(code, {}) if e in self.events}

    def ranked_at(self, code: str, limit: int) -> tuple[int, list[EventState]]:
        """How many open events prefecture `code` is in, and the first `limit` of them in
        `state_rank` order (what its retained state lists)."""
        ranks = self._ranks.get(code, {})
        top = heapq.nsmallest(limit, ranks.items(), key=lambda item: item[1])
        return len(ranks), [self.events[e] for e, _ in top if e in self.events]

    def restore(self, state: EventState) -> None:
        """Put a saved event back (a service resuming its record)."""
        self._keep(Transition(state, ()))

    def _due(self, now: datetime) -> set[str]:
        """Ids of events whose deadline is at or before `now`, taken off the heap."""
        due = set()
        while self._deadlines and self._deadlines[0][0] <= now:
            at, event_id = heapq.heappop(self._deadlines)
            if self._deadline_of(event_id) == at:
                due.add(event_id)
        return due

    def _deadline_of(self, event_id: str) -> datetime | None:
        state = self.events.get(event_id)
        return None if state is None else lifecycle.next_deadline(
            state, close_after=self.close_after)

    def _schedule(self, state: EventState) -> None:
        deadline = lifecycle.next_deadline(state, close_after=self.close_after)
        if deadline is not None:
            heapq.heappush(self._deadlines, (deadline, state.event_id))

    def _keep(self, transition: Transition) -> Transition:
        state = transition.state
        self.events[state.event_id] = state
        self._schedule(state)
        for code in state.places:
            ranks = self._ranks.setdefault(code, {})
            rank = state_rank(state, code)
            if rank is None:
                ranks.pop(state.event_id, None)
            else:
                ranks[state.event_id] = rank
        return transition


def simulate(inputs: Iterable[tuple[datetime, TimelineInput]], engine: Engine, *,
             until: datetime | None = None, nonce: str = "sim",
             limits: Limits | None = None, notes: list[Note] | None = None) -> Iterator[Sent]:
    """Feed timed inputs to the engine, ticking at every deadline in between.

    Each input is admitted as the service admits it (`limits`: the service's default);
    refusals and withheld messages are appended to `notes` when given."""
    limits = limits or Limits()
    recorded: dict[tuple[str, int], Detection] = {}
    told = notes if notes is not None else []

    def results(at: datetime, transition: Transition | None) -> Iterator[Sent]:
        if transition is not None:
            told.extend(Note(at, w.reason) for w in transition.withheld)
            yield from (Sent(at, a) for a in transition.alerts)

    def ticks_until(limit: datetime) -> Iterator[Sent]:
        while (deadline := engine.next_deadline()) is not None and deadline <= limit:
            for transition in engine.tick(now=deadline):
                yield from results(deadline, transition)

    last: datetime | None = None
    for at, item in inputs:
        yield from ticks_until(at)
        last = at
        applied = _admit_and_apply(engine, item, at, nonce=nonce, limits=limits,
                                   recorded=recorded)
        if isinstance(applied, Refused):
            told.append(Note(at, applied.reason))
        else:
            yield from results(at, applied)
    if until is not None or last is not None:
        yield from ticks_until(until or (last or datetime.max) + engine.close_after)


def _admit_and_apply(engine: Engine, item: TimelineInput, at: datetime, *, nonce: str,
                     limits: Limits, recorded: dict[tuple[str, int], Detection],
                     ) -> Transition | Refused | None:
    """Admit one input as the service does and, when new, apply it to the engine: its
    transition, the refusal, or None (a duplicate, or an action on an unknown event).
    `recorded` is the detections admitted so far, by (event id, sequence)."""
    state = engine.events.get(item.event_id)
    if isinstance(item, Detection):
        key = (item.event_id, item.sequence)
        verdict = admit_detection(item, state, closed=False, recorded=recorded.get(key),
                                  now=at, limits=limits)
        if verdict == "new":
            recorded[key] = item
            return engine.detection(item, now=at, nonce=nonce)
    else:
        verdict = admit_action(item, state, closed=False)
        if verdict == "new":
            return engine.action(item, now=at)
    return verdict if isinstance(verdict, Refused) else None
