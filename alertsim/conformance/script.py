"""The messages `alertsim conformance` plays: CAP-shaped alerts built by the domain's own
builder, status `Test`, one fresh event per check, for one prefecture.

Identifiers are `alertsim.conformance.{run}.{event}.{n}.{stage}.{code}`: a new run token
each time, so a client that remembers identifiers across runs is never confused.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from alertsim.domain import texts
from alertsim.domain.messages import Alert, PlaceEvent, PrefectureState, build_alert
from alertsim.domain.model import JST
from alertsim.domain.texts import Bilingual
from alertsim.domain.vocabulary import MsgType, Stage

__all__ = ["SENDER", "Script"]

SENDER = "alertsim-conformance@simulator.invalid"
_SEA = ("日本海", "the Sea of Japan")


class Script:
    """Builds the run's alerts: `alert(event, stage, refs)` for a prefecture or national."""

    def __init__(self, code: str, name_ja: str, name_en: str, *, now: datetime,
                 run: str | None = None) -> None:
        self.code, self.name_ja, self.name_en = code, name_ja, name_en
        self.now = now.astimezone(JST).replace(microsecond=0)
        self.run = run or uuid.uuid4().hex[:8]
        self._count = 0

    def event_id(self, name: str) -> str:
        return f"conformance-{self.run}-{name}"

    def _texts(self, stage: Stage) -> Bilingual:
        when = self.now + timedelta(minutes=5)
        match stage:
            case "shelter":
                return texts.shelter()
            case "imminent":
                return texts.imminent(when, self.name_ja, self.name_en)
            case "fell_land":
                return texts.fell_land(when, self.name_ja, self.name_en)
            case "passed":
                return texts.passed(when, when, [self.name_ja], [self.name_en], *_SEA)
            case "fell_sea":
                return texts.fell_sea(when, *_SEA, True)
            case "cancel":
                return texts.cancel(self.name_ja, self.name_en)
            case "national":
                return texts.national(when, *_SEA, True)

    def alert(self, event: str, stage: Stage, refs: tuple[Alert, ...] = ()) -> Alert:
        """The next alert of `event`: Alert for shelter/national, Cancel, else Update."""
        self._count += 1
        msg_type: MsgType = ("Alert" if stage in ("shelter", "national") else
                             "Cancel" if stage == "cancel" else "Update")
        code = None if stage == "national" else self.code
        return build_alert(
            identifier=f"alertsim.conformance.{self.run}.{event}.{self._count}.{stage}."
                       f"{code or 'national'}",
            sender=SENDER, status="Test", sent=self.now, msg_type=msg_type, stage=stage,
            texts=self._texts(stage), event_id=self.event_id(event), sequence=self._count,
            object_kind="ballistic_missile", code=code, name_ja=self.name_ja,
            name_en=self.name_en, references=tuple(a.reference() for a in refs))

    def state(self, *latest: Alert) -> PrefectureState:
        """The retained state naming each alert's event at that alert's stage."""
        return PrefectureState(code=self.code, status="Test", updated=self.now, events=tuple(
            PlaceEvent(event_id=a.alertsim.event_id, stage=a.stage, identifier=a.identifier,
                       sheltering=a.stage in ("shelter", "imminent")) for a in latest))
