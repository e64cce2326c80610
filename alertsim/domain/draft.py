"""One lifecycle transition while it is being built: the alerts it sends, what it
withholds, and the places' new state, folded into a `Transition` at the end.

Both stages of the flow write into it (domain/warning_stage.py, domain/closing_stage.py);
domain/lifecycle.py opens one per transition and closes it with `done`.
"""

from __future__ import annotations

from datetime import datetime

from alertsim.domain import texts
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


class Draft:
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

    def last_window(self) -> datetime | None:
        """The end of the last window among the places still sheltering."""
        return max((p.window_end for p in self.sheltering()), default=None)

    def had_imminent(self) -> bool:
        """Whether any place got the evacuate-now message."""
        return any("imminent" in p.stages for p in self.places.values())

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
