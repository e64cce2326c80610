"""Run a timeline of inputs through decide + lifecycle on a virtual clock, purely.

This is the service's logic without its I/O: the same transitions in the same order,
with the ticks (window ends, automatic closes) the service would schedule. Tests and
`alertsim drill --dry-run` use it to know what a scenario should produce.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta

from alertsim.domain import lifecycle
from alertsim.domain.detection import Detection, EventId
from alertsim.domain.lifecycle import EventState, Transition
from alertsim.domain.messages import Alert
from alertsim.domain.model import Frozen
from alertsim.domain.prefectures import Atlas
from alertsim.domain.vocabulary import Action, AlertStatus, Policy
from alertsim.domain.warnings import decide


class OperatorAction(Frozen):
    """An operator's command for one event: the payload of the operator topic."""

    action: Action
    event_id: EventId


TimelineInput = Detection | OperatorAction


@dataclass(frozen=True)
class Sent:
    at: datetime
    alert: Alert


@dataclass
class Engine:
    """Events by id and the pure transitions between them; the service wraps one."""

    atlas: Atlas
    policy: Policy
    status: AlertStatus
    sender: str
    close_after: timedelta
    events: dict[str, EventState]

    def detection(self, detection: Detection, *, now: datetime, nonce: str,
                  secret: str = "") -> Transition:
        state = self.events.get(detection.event_id) or lifecycle.new_event(
            detection, nonce=nonce, secret=secret, status=self.status, sender=self.sender)
        decision = decide(detection, self.atlas, policy=self.policy, now=now)
        return self._keep(lifecycle.on_detection(state, detection, decision, now=now))

    def action(self, action: OperatorAction, *, now: datetime) -> Transition | None:
        state = self.events.get(action.event_id)
        if state is None:
            return None
        if action.action == "cancel":
            return self._keep(lifecycle.on_cancel(state, now=now))
        return self._keep(lifecycle.on_close(state))

    def tick(self, *, now: datetime) -> list[Transition]:
        """Everything due by `now`: passed messages, then automatic closes."""
        done = []
        for event_id in sorted(self.events):
            state = self.events[event_id]
            moved = lifecycle.on_tick(state, now=now)
            if lifecycle.due_to_close(moved.state, now=now, close_after=self.close_after):
                moved = Transition(lifecycle.on_close(moved.state).state, moved.alerts)
            if moved.state != state:
                done.append(self._keep(moved))
        return done

    def next_deadline(self) -> datetime | None:
        times = [t for s in self.events.values()
                 if (t := lifecycle.next_deadline(s, close_after=self.close_after)) is not None]
        return min(times, default=None)

    def _keep(self, transition: Transition) -> Transition:
        self.events[transition.state.event_id] = transition.state
        return transition


def simulate(inputs: Iterable[tuple[datetime, TimelineInput]], engine: Engine, *,
             until: datetime | None = None, nonce: str = "sim") -> Iterator[Sent]:
    """Feed timed inputs to the engine, ticking at every deadline in between."""

    def ticks_until(limit: datetime) -> Iterator[Sent]:
        while (deadline := engine.next_deadline()) is not None and deadline <= limit:
            for transition in engine.tick(now=deadline):
                yield from (Sent(deadline, a) for a in transition.alerts)

    last: datetime | None = None
    for at, item in inputs:
        yield from ticks_until(at)
        if isinstance(item, Detection):
            transition: Transition | None = engine.detection(item, now=at, nonce=nonce)
        else:
            transition = engine.action(item, now=at)
        if transition is not None:
            yield from (Sent(at, a) for a in transition.alerts)
        last = at
    if until is not None or last is not None:
        yield from ticks_until(until or (last or datetime.max) + engine.close_after)
