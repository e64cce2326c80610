"""What a correct receiver does with what arrives: a pure bookkeeper, no I/O and no clock.

`Reception` is the reference client's logic (`clients.receiver` runs it over MQTT;
`docs/clients.md` describes it for client developers):

- **De-duplication** by identifier: a second copy of anything is `ignored`, `duplicate`.
- **References**: an Update or Cancel none of whose `references` is known yet (its Alert
  has not arrived: reordering) is held, and handled right after the first message it
  refers to; one held longer than `hold_s` is shown anyway (better late than never).
  A message some shown message already refers to is superseded: `ignored`, so a late
  Alert never puts a prefecture back into shelter after its Update or Cancel.
- **Late join**: a *retained* state (delivered on subscribe, so the receiver was away)
  names each open event's latest identifier; one the receiver has not seen is taken as
  shown `via` the state, so its Updates and Cancels apply and the people see the stage.
  A live state update changes nothing: while connected, the alerts are authoritative.

Each handled message gives a `Handled`: what to acknowledge (a `Receipt`'s fields) and
whether to show it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from alertsim.domain.messages import Alert, Outcome, PlaceEvent, PrefectureState, Via
from alertsim.domain.vocabulary import Stage

__all__ = ["HOLD_S", "Handled", "Reception", "belief_of"]

HOLD_S = 30.0  # an Update whose Alert never comes is shown after this long
SHELTERING: frozenset[Stage] = frozenset({"shelter", "imminent"})


@dataclass(frozen=True)
class Handled:
    """One message handled: acknowledge it with these fields; show it when `shown`."""

    identifier: str
    prefecture: str | None
    stage: Stage
    received_at: datetime
    outcome: Outcome
    duplicate: bool
    via: Via
    belief: PlaceEvent | None
    alert: Alert | None = None  # None when learned from a retained state

    @property
    def shown(self) -> bool:
        return self.outcome == "shown"


@dataclass
class _Held:
    alert: Alert
    received_at: datetime
    copies: list[datetime] = field(default_factory=list)


def belief_of(alert: Alert) -> PlaceEvent:
    """The state a prefecture is in right after `alert` is shown (its event only)."""
    return PlaceEvent(event_id=alert.alertsim.event_id, stage=alert.stage,
                      identifier=alert.identifier, sheltering=alert.stage in SHELTERING)


class Reception:
    """The receiver's memory: identifiers known, held messages, beliefs per place and event."""

    def __init__(self, hold_s: float = HOLD_S) -> None:
        self.hold = timedelta(seconds=hold_s)
        self.known: set[str] = set()
        self.superseded: set[str] = set()
        self.held: dict[str, _Held] = {}
        self.beliefs: dict[tuple[str | None, str], PlaceEvent] = {}

    def believed(self, place: str | None, event_id: str) -> PlaceEvent | None:
        return self.beliefs.get((place, event_id))

    def on_alert(self, alert: Alert, received_at: datetime) -> list[Handled]:
        """Handle one alert; returns what to acknowledge, in order (empty: it is held)."""
        ident = alert.identifier
        if ident in self.held:
            self.held[ident].copies.append(received_at)
            return []
        if ident in self.known:
            return [self._ignored(alert, received_at, duplicate=True)]
        if self._waits(alert):
            self.held[ident] = _Held(alert, received_at)
            return []
        return self._apply(alert, received_at)

    def on_state(self, code: str, state: PrefectureState | None, *, retained: bool,
                 received_at: datetime) -> list[Handled]:
        """A state message; a retained one teaches what was missed while away."""
        if not retained or state is None:
            return []
        learned: list[Handled] = []
        for event in state.events:
            if event.identifier in self.known or event.identifier in self.held:
                continue
            self.known.add(event.identifier)
            self.beliefs[(code, event.event_id)] = event
            learned.append(Handled(identifier=event.identifier, prefecture=code,
                                   stage=event.stage, received_at=received_at,
                                   outcome="shown", duplicate=False, via="state",
                                   belief=event))
        released = [h for item in learned for h in self._release(item.identifier)]
        return learned + released

    def next_due(self) -> datetime | None:
        """When the earliest held message falls overdue; None when nothing is held."""
        first = min((h.received_at for h in self.held.values()), default=None)
        return None if first is None else first + self.hold

    def overdue(self, now: datetime) -> list[Handled]:
        """Held messages waited on for longer than `hold_s`: shown now, in arrival order."""
        late = sorted((h for h in self.held.values() if now - h.received_at >= self.hold),
                      key=lambda h: h.received_at)
        found: list[Handled] = []
        for held in late:
            if held.alert.identifier in self.held:
                found += self._unhold(held.alert.identifier)
        return found

    def _waits(self, alert: Alert) -> bool:
        refs = alert.referenced_identifiers()
        return alert.msgType != "Alert" and bool(refs) and not any(
            ref in self.known for ref in refs)

    def _apply(self, alert: Alert, received_at: datetime) -> list[Handled]:
        self.known.add(alert.identifier)
        if alert.identifier in self.superseded:
            return [self._ignored(alert, received_at, duplicate=False),
                    *self._release(alert.identifier)]
        self.superseded.update(alert.referenced_identifiers())
        belief = belief_of(alert)
        self.beliefs[(alert.prefecture, alert.alertsim.event_id)] = belief
        shown = Handled(identifier=alert.identifier, prefecture=alert.prefecture,
                        stage=alert.stage, received_at=received_at, outcome="shown",
                        duplicate=False, via="alert", belief=belief, alert=alert)
        return [shown, *self._release(alert.identifier)]

    def _release(self, identifier: str) -> list[Handled]:
        """Held messages that refer to `identifier`, handled now (and what they release)."""
        waiting = sorted((h for h in self.held.values()
                          if identifier in h.alert.referenced_identifiers()),
                         key=lambda h: h.received_at)
        found: list[Handled] = []
        for held in waiting:
            if held.alert.identifier in self.held:
                found += self._unhold(held.alert.identifier)
        return found

    def _unhold(self, identifier: str) -> list[Handled]:
        held = self.held.pop(identifier)
        found = self._apply(held.alert, held.received_at)
        found += [self._ignored(held.alert, at, duplicate=True) for at in held.copies]
        return found

    def _ignored(self, alert: Alert, received_at: datetime, *, duplicate: bool) -> Handled:
        return Handled(identifier=alert.identifier, prefecture=alert.prefecture,
                       stage=alert.stage, received_at=received_at, outcome="ignored",
                       duplicate=duplicate, via="alert",
                       belief=self.believed(alert.prefecture, alert.alertsim.event_id),
                       alert=alert)
