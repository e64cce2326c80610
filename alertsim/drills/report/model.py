"""The drill report's data: the report models, written out as the report's JSON, and
`DrillSettings`, what the drill runner records about a drill for the report to read back.

All models are frozen and refuse unknown fields, so a report or a settings record read
back from JSON is exactly what was written.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from alertsim.domain.latency import Latency
from alertsim.domain.topics import DEFAULT_ROOT
from alertsim.domain.vocabulary import Policy, PrefectureCode, Status
from alertsim.drills.scenario import Scenario
from alertsim.mqtt.protocol import Protocol

__all__ = [
    "NATIONAL",
    "AlertWording",
    "AuditEntry",
    "Check",
    "DrillReport",
    "DrillSettings",
    "ExpectationResults",
    "FaultApplied",
    "Latency",
    "MessageText",
    "PlaceSummary",
    "ReceiverSummary",
    "RecordAreas",
    "RecordComparison",
    "RecordRow",
    "RecordVerdict",
    "Refusal",
    "RefusalCount",
    "RefusalResults",
    "ScenarioInfo",
    "TimelineRow",
    "stages_text",
]

NATIONAL = "national"  # the place name of the national topic, beside "01".."47"


def stages_text(stages: Sequence[str]) -> str:
    """A stage sequence as checks, failures and tables write it ("nothing" when empty)."""
    return ", ".join(stages) if stages else "nothing"


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class DrillSettings(_Model):
    """What the drill runner records about a drill: the drill row's `settings_json`."""

    scenario: Scenario
    scenario_path: str
    receivers: dict[str, tuple[PrefectureCode, ...]]  # client id -> prefectures it listens to
    national_receivers: bool  # every receiver also listens to the national topic
    speed: float = Field(gt=0)
    broker: str  # the broker URL the drill ran on
    # Optional because records written before the protocol was kept lack it; the report
    # does not use it.
    protocol: Protocol | None = None
    status: Status
    policy: Policy
    # The drill's own topic root; records from before drills were isolated used the default.
    topic_root: str = DEFAULT_ROOT
    # `drill --fault` (drills/faults.py): the faults asked for and the seed choosing them.
    faults: tuple[str, ...] = ()
    fault_seed: int | None = None


class FaultApplied(_Model):
    """One fault a drill injected (drills/faults.py): its kind, what it hit, and how."""

    kind: str
    target: str  # an alert identifier, a receiver's client id, or a state topic
    detail: str


class TimelineRow(_Model):
    """One alert the service wrote to its outbox, in outbox order."""

    seq: int
    sim_time: AwareDatetime | None
    created_at: AwareDatetime
    event_id: str | None
    prefecture: str | None  # None: national
    stage: str | None
    msg_type: str | None  # CAP msgType of the outbox row
    identifier: str
    topic: str
    published: bool
    published_at: AwareDatetime | None


class ReceiverSummary(_Model):
    """What one receiver made of one place's alerts."""

    client_id: str
    subscribed: bool  # False: it acknowledged alerts of a place it was not given
    # True: not one of the drill's own receivers (e.g. `alertsim subscribe` on its topic root)
    outside_fleet: bool = False
    stages: tuple[str, ...]  # acknowledged, first receipt per alert, in receipt order
    missed: tuple[str, ...]  # identifiers of alerts it never acknowledged
    duplicates: int
    latency: Latency


class PlaceSummary(_Model):
    """One prefecture ("01".."47") or the national topic ("national")."""

    place: str
    sent: bool
    stages_sent: tuple[str, ...]  # in outbox order
    receivers: tuple[ReceiverSummary, ...]
    deliveries: int  # first receipts, all receivers
    missed: int
    duplicates: int
    latency: Latency


class Check(_Model):
    """One judged expectation."""

    subject: str  # a prefecture code, "silent" or "national"
    expected: str
    actual: str
    basis: str  # what was compared: receivers' acknowledgements or the outbox
    passed: bool


class ExpectationResults(_Model):
    """The scenario's expectations, judged; `judged` is False without a scenario."""

    judged: bool
    note: str = ""
    checks: tuple[Check, ...] = ()
    failures: tuple[str, ...] = ()


RecordVerdict = Literal["within tolerance", "outside tolerance", "missing in drill",
                        "not in record"]


class RecordRow(_Model):
    """One prefecture and stage: when J-Alert sent it, when the drill did (the first alert
    of that stage to the prefecture, its `sent` on the scenario clock), and the verdict."""

    prefecture: str  # a code, or "national" for a national alert (J-Alert sends none)
    stage: str
    record_at: AwareDatetime | None  # None: not in the record
    drill_at: AwareDatetime | None  # None: the drill did not send it
    difference_s: float | None  # drill - record, when both sent it
    verdict: RecordVerdict


class RecordAreas(_Model):
    """The prefectures J-Alert addressed against those the drill warned (sent shelter)."""

    record: tuple[str, ...]
    drill: tuple[str, ...]
    only_in_record: tuple[str, ...]
    only_in_drill: tuple[str, ...]


class RecordComparison(_Model):
    """The drill held against the scenario's record of what J-Alert did."""

    sources: tuple[str, ...]
    notes: str
    tolerance_s: float
    areas: RecordAreas
    rows: tuple[RecordRow, ...]
    matched: bool  # same areas and every row within tolerance


class Refusal(_Model):
    """One refusal note of the drill's record: an input the service refused, or a message
    it withheld (a row of the `rejected` table)."""

    received_at: AwareDatetime  # real time (JST), as recorded
    source: str  # the topic it came in on, or what the service withheld it from
    reason: str


class RefusalCount(_Model):
    """Refusals from one client (its topic; `*`: past the overall rate) that the record
    counted instead of keeping one row each (a `refusal_counts` row)."""

    source: str
    count: int
    bytes: int
    first_at: AwareDatetime
    last_at: AwareDatetime


class RefusalResults(_Model):
    """The drill's refusal notes and, with a scenario, the count judged against
    `expect.refused` (`expected` and `passed` are None without one); `counted` are the
    refusals only counted, shown but not judged (the rows already hold the first ones)."""

    rows: tuple[Refusal, ...] = ()
    counted: tuple[RefusalCount, ...] = ()
    expected: int | None = None
    passed: bool | None = None


class AlertWording(_Model):
    """An alert's texts in one language, as its CAP `info` block carries them."""

    headline: str
    description: str
    instruction: str


class MessageText(_Model):
    """One wording the drill sent, in Japanese and English: alerts of one event and stage
    with the same texts share it, whatever place they went to (a shelter text is the same
    for every prefecture)."""

    event_id: str | None
    stage: str | None
    sent: AwareDatetime  # the first such alert's CAP `sent` (scenario clock, JST)
    places: tuple[str, ...]  # prefecture codes or "national", in outbox order
    ja: AlertWording
    en: AlertWording


class AuditEntry(_Model):
    """One operator action from the record's audit log: who asked for what, when, through
    which door, and what the service answered (None: no answer recorded)."""

    received_at: AwareDatetime  # real time (JST)
    by: str | None  # the signed-in operator, None when not known (e.g. the CLI)
    action: str
    event_id: str
    answer: str | None
    source: str


class ScenarioInfo(_Model):
    """The scenario's metadata as the report shows it (not its timeline)."""

    title: str
    kind: str
    date: date
    sources: tuple[str, ...]
    notes: str
    path: str | None


class DrillReport(_Model):
    """The drill report; `passed` is None when there was no scenario to judge against.

    A drill passes when its expectations hold, its refusal notes number `expect.refused`
    and, with a record, it matches the record (`record_matched`; None without a record);
    `failures` lists every reason it does not.
    """

    drill_id: str | None
    scenario: ScenarioInfo | None
    policy: str | None
    status: str | None
    speed: float | None
    broker: str | None
    started_at: AwareDatetime | None
    finished_at: AwareDatetime | None
    event_id: str | None  # the report is restricted to this event
    topic_root: str | None = None  # the drill's topic root (None: not recorded)
    receivers: dict[str, tuple[str, ...]]  # client id -> places it is subscribed to
    receivers_source: Literal["drill settings", "inferred from receipts"]
    timeline: tuple[TimelineRow, ...]
    per_prefecture: tuple[PlaceSummary, ...]
    national: PlaceSummary
    latency: Latency
    unmatched_receipts: int  # receipts naming no alert in the outbox
    expectations: ExpectationResults
    passed: bool | None
    failures: tuple[str, ...]
    faults: tuple[FaultApplied, ...] = ()  # injected by `drill --fault`, in order
    refusals: RefusalResults = Field(default_factory=RefusalResults)
    record: RecordComparison | None = None  # held against the scenario's record, if any
    record_matched: bool | None = None
    messages: tuple[MessageText, ...] = ()  # the texts sent, in order of first sending
    audit: tuple[AuditEntry, ...] = ()  # operator actions during the drill, in order
