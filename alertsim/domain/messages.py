"""Alert messages: CAP 1.2-shaped models and the builder that fills them for a stage.

Element names follow OASIS CAP 1.2 (`identifier`, `sender`, `sent`, `status`, `msgType`,
`scope`, `references`, `code`, `info` with `area`/`geocode`), so a CAP XML rendering is a
mechanical mapping. One `info` block per language, `ja-JP` first, then `en-US`. The
`alertsim` block is our extension for clients: event id, stage, prefecture, sequence.

`status` is `Exercise` (drills) or `Test` (self-tests); `Actual` is refused everywhere.
`sent` carries an explicit +09:00 offset (never `Z`), as CAP and JMA practice expect.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Literal

from pydantic import AwareDatetime, Field, field_validator

from alertsim.domain.detection import ObjectKind
from alertsim.domain.model import JST, Frozen
from alertsim.domain.notices import JstTime
from alertsim.domain.texts import Bilingual, Texts
from alertsim.domain.vocabulary import (
    AlertStatus,
    MsgType,
    PrefectureCode,
    Reference,
    Stage,
    refuse_actual,
)

Urgency = Literal["Immediate", "Expected", "Future", "Past", "Unknown"]
Severity = Literal["Extreme", "Severe", "Moderate", "Minor", "Unknown"]
Certainty = Literal["Observed", "Likely", "Possible", "Unlikely", "Unknown"]
# CAP forbids spaces, commas and < & in identifiers.
Identifier = Annotated[str, Field(pattern=r"^[^\s,<&]{1,200}$")]

EVENT_JA = "ミサイル発射情報"
EVENT_EN = "Missile launch information"


class Geocode(Frozen):
    valueName: str
    value: str


class Area(Frozen):
    areaDesc: str
    geocode: tuple[Geocode, ...] = ()


class Parameter(Frozen):
    valueName: str
    value: str


class Info(Frozen):
    language: Literal["ja-JP", "en-US"]
    category: tuple[Literal["Security", "Safety"], ...] = ("Security",)
    event: str
    urgency: Urgency
    severity: Severity
    certainty: Certainty
    expires: AwareDatetime
    headline: str
    description: str
    instruction: str
    parameter: tuple[Parameter, ...] = ()
    area: tuple[Area, ...]


class AlertSimExtension(Frozen):
    """alertsim's own fields: which event, stage and prefecture this message is about."""

    event_id: str
    stage: Stage
    prefecture: PrefectureCode | None  # None: the national topic
    sequence: int
    object: ObjectKind


class Alert(Frozen):
    identifier: Identifier
    sender: str
    sent: AwareDatetime
    status: AlertStatus
    msgType: MsgType
    scope: Literal["Public"] = "Public"
    references: tuple[str, ...] = ()  # CAP form: "sender,identifier,sent"
    code: tuple[str, ...] = ()
    info: tuple[Info, ...]
    alertsim: AlertSimExtension

    @field_validator("status", mode="before")
    @classmethod
    def _not_actual(cls, value: object) -> object:
        return refuse_actual(value)

    @property
    def stage(self) -> Stage:
        return self.alertsim.stage

    @property
    def prefecture(self) -> str | None:
        return self.alertsim.prefecture

    def reference(self) -> str:
        """This alert as a CAP reference triplet, for later Updates and Cancels."""
        return str(Reference(self.sender, self.identifier, self.sent.isoformat()))

    def referenced_identifiers(self) -> tuple[str, ...]:
        return tuple(Reference.parse(ref).identifier for ref in self.references)


# Per stage: msgType when it is the first message for that place, urgency, severity,
# certainty, and how long the message stays current.
_STAGE_META: dict[Stage, tuple[Urgency, Severity, Certainty, timedelta]] = {
    "shelter": ("Immediate", "Extreme", "Likely", timedelta(hours=1)),
    "imminent": ("Immediate", "Extreme", "Likely", timedelta(hours=1)),
    "fell_land": ("Immediate", "Severe", "Observed", timedelta(hours=2)),
    "passed": ("Past", "Minor", "Observed", timedelta(minutes=30)),
    "fell_sea": ("Past", "Minor", "Observed", timedelta(minutes=30)),
    "cancel": ("Past", "Minor", "Observed", timedelta(minutes=30)),
    "national": ("Past", "Minor", "Likely", timedelta(minutes=30)),
}


def jst_seconds(moment: datetime) -> datetime:
    return moment.astimezone(JST).replace(microsecond=0)


def area_of(code: str | None, name_ja: str, name_en: str, language: str) -> Area:
    if code is None:
        return Area(areaDesc="日本全国" if language == "ja-JP" else "All of Japan")
    return Area(areaDesc=name_ja if language == "ja-JP" else name_en,
                geocode=(Geocode(valueName="JIS X 0401", value=code),
                         Geocode(valueName="ISO 3166-2", value=f"JP-{code}")))


def build_alert(*, identifier: str, sender: str, status: AlertStatus, sent: datetime,
                msg_type: MsgType, stage: Stage, texts: Bilingual, event_id: str,
                sequence: int, object_kind: ObjectKind, code: str | None,
                name_ja: str = "", name_en: str = "",
                references: tuple[str, ...] = ()) -> Alert:
    """Fill a CAP-shaped alert for one stage and one place (a prefecture or national)."""
    sent = jst_seconds(sent)
    urgency, severity, certainty, lasts = _STAGE_META[stage]
    params = (Parameter(valueName="alertsim:stage", value=stage),
              Parameter(valueName="alertsim:event_id", value=event_id))

    def info(language: Literal["ja-JP", "en-US"], t: Texts) -> Info:
        return Info(language=language, event=EVENT_JA if language == "ja-JP" else EVENT_EN,
                    urgency=urgency, severity=severity, certainty=certainty,
                    expires=sent + lasts, headline=t.headline, description=t.description,
                    instruction=t.instruction, parameter=params,
                    area=(area_of(code, name_ja, name_en, language),))

    return Alert(
        identifier=identifier, sender=sender, sent=sent, status=status, msgType=msg_type,
        references=references, code=(f"alertsim:stage:{stage}",),
        info=(info("ja-JP", texts.ja), info("en-US", texts.en)),
        alertsim=AlertSimExtension(event_id=event_id, stage=stage, prefecture=code,
                                   sequence=sequence, object=object_kind),
    )


Outcome = Literal["shown", "ignored"]
Via = Literal["alert", "state"]


class Receipt(Frozen):
    """A receiver's acknowledgement of one delivery (duplicates are acknowledged too).

    The receipt contract for client developers (`docs/clients.md`); every field after
    `duplicate` is optional, so receipts of older receivers stay valid:

    - `outcome`: `shown` (presented to people) or `ignored` (received and deliberately not
      shown: a duplicate, or an alert already superseded by one that refers to it).
    - `via`: `alert` (the alert itself arrived) or `state` (a receiver that joined late
      learned the identifier from the retained state topic and shows that stage).
    - `belief`: the prefecture's state for this message's event as the receiver believes
      it after handling the message, in the form of a retained state's event entry.
    """

    client_id: str = Field(pattern=r"^[A-Za-z0-9._-]{1,64}$")
    identifier: Identifier
    received_at: JstTime
    prefecture: PrefectureCode | None = None
    stage: Stage | None = None
    duplicate: bool = False
    outcome: Outcome | None = None
    via: Via = "alert"
    belief: PlaceEvent | None = None


class PlaceEvent(Frozen):
    event_id: str
    stage: Stage
    identifier: str
    sheltering: bool


STATE_EVENTS_MAX = 10  # a state lists at most this many events, so it stays small


class PrefectureState(Frozen):
    """Retained on the state topic: what a receiver connecting late must know.

    Bounded however many events are open: `events` lists at most STATE_EVENTS_MAX of the
    prefecture's open events, sheltering ones first, then the most recently updated;
    `open_events` counts them all (absent in states from before the bound: 0, and then
    `events` is complete).
    """

    code: PrefectureCode
    status: AlertStatus
    updated: JstTime
    events: tuple[PlaceEvent, ...] = Field(max_length=STATE_EVENTS_MAX)
    open_events: int = Field(default=0, ge=0)

    @property
    def sheltering(self) -> bool:
        return any(e.sheltering for e in self.events)
