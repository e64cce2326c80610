"""Scenario files: a drill as a timeline of detections and operator actions, plus what
every prefecture must receive. `load_scenario(path)` reads and validates one YAML file.

A scenario names its clock origin (`start`, usually the launch) and lists entries at
offsets from it: a full Detection v1 object, or an operator action (`cancel` lifts the
shelter call for an event, `close` ends the event and clears its retained state).
`expect` says, per prefecture code, the stages it must receive in order, which
prefectures must receive nothing, whether a national information message is due and how
many refusal notes the drill must produce.

A historical scenario replays under the warning rule of its day (`policy: auto`, or the
rule in force on `date` named), never with alertsim's own national information message,
and may carry `record`: what J-Alert actually did (a `JAlertRecord`), which the report
holds the drill against. Detections are checked against their place in the timeline as
the service's admission would (`alertsim.domain.admission.Limits`): an observation the
service would refuse as stale or ahead of its clock is refused here, at load time.

Every problem is reported as a ScenarioError whose lines read
`FILE:LINE: field.path: what is wrong`; the line comes from the YAML node the field
was read from (mapping keys and sequence items keep their position).
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import (
    AwareDatetime,
    Discriminator,
    Field,
    Tag,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from alertsim.domain.admission import Limits
from alertsim.domain.detection import Detection, EventId
from alertsim.domain.model import Frozen
from alertsim.domain.operator import OperatorAction
from alertsim.domain.policies import ERAS, policy_in_force, resolve_policy
from alertsim.domain.timeline import TimelineInput
from alertsim.domain.vocabulary import (
    PREFECTURE_CODES,
    Action,
    Policy,
    PolicyChoice,
    PrefectureStage,
    Status,
    refuse_actual,
)
from alertsim.drills.jalert_record import JAlertRecord
from alertsim.drills.scenario_fields import Code, Located, Offset
from alertsim.drills.scenario_yaml import describe, parse, yaml_problem
from alertsim.errors import ScenarioError

__all__ = [
    "AS_RECORDED",
    "ActionEntry",
    "DetectionEntry",
    "Expectations",
    "Scenario",
    "TimelineEntry",
    "load_scenario",
]


class DetectionEntry(Frozen):
    """At `at` seconds from the start, this detection (update) arrives."""

    at: Offset
    detection: Detection

    @property
    def event_id(self) -> str:
        return self.detection.event_id


class ActionEntry(Frozen):
    """At `at` seconds from the start, the operator cancels or closes an event."""

    at: Offset
    action: Action
    event_id: EventId


def _entry_kind(value: object) -> str | None:
    if isinstance(value, dict):
        if "action" in value:
            return "action-entry"
        if "detection" in value:
            return "detection-entry"
        return None
    if isinstance(value, ActionEntry):
        return "action-entry"
    return "detection-entry" if isinstance(value, DetectionEntry) else None


_ENTRY_TAGS = frozenset({"action-entry", "detection-entry"})
TimelineEntry = Annotated[
    Annotated[DetectionEntry, Tag("detection-entry")] | Annotated[ActionEntry, Tag("action-entry")],
    Discriminator(_entry_kind, custom_error_type="entry_kind",
                  custom_error_message="an entry needs a 'detection' or an 'action' key"),
]


class Expectations(Frozen):
    """What the drill must produce: per-prefecture stages, silence, the national message,
    and how many refusal notes."""

    prefectures: dict[Code, tuple[PrefectureStage, ...]] = Field(default_factory=dict)
    silent: Literal["others"] | tuple[Code, ...] = "others"
    national: bool = False
    # Refusal notes the drill must produce: inputs the service refuses and messages it
    # withholds (rows of the record's `rejected` table).
    refused: int = Field(default=0, ge=0)

    @field_validator("prefectures")
    @classmethod
    def _stages_not_empty(
        cls, value: dict[str, tuple[PrefectureStage, ...]]
    ) -> dict[str, tuple[PrefectureStage, ...]]:
        empty = sorted(code for code, stages in value.items() if not stages)
        if empty:
            raise ValueError(f"no stages listed for {', '.join(empty)}; "
                             "list the prefecture under 'silent' instead")
        return value

    @model_validator(mode="after")
    def _silent_disjoint(self) -> Expectations:
        if self.silent != "others":
            both = sorted(set(self.silent) & set(self.prefectures))
            if both:
                raise Located(("silent",), f"{', '.join(both)} also listed with stages")
        return self

    def silent_codes(self) -> frozenset[str]:
        """The prefectures that must receive nothing at all."""
        if self.silent == "others":
            return frozenset(PREFECTURE_CODES) - set(self.prefectures)
        return frozenset(self.silent)


# Validation context for a scenario read back from a drill's record (the report's
# DrillSettings): the authoring rules (the policy of the day, national_info, observations
# within the service's limits) are not applied again, so a report can still be rebuilt
# from a record an earlier alertsim wrote before they existed.
# Pass `context={AS_RECORDED: True}` to model_validate(_json).
AS_RECORDED = "as_recorded"


def _as_recorded(info: ValidationInfo) -> bool:
    return isinstance(info.context, dict) and info.context.get(AS_RECORDED) is True


# The service's default admission limits: a live service receives each entry at its place
# in the timeline and refuses an observation this far behind or ahead of its clock.
_ADMISSION = Limits()


def _era(policy: Policy) -> str:
    """When `policy` was J-Alert's rule, in words ("2018-01-08 to 2022-12-31")."""
    for n, (first, rule) in enumerate(ERAS):
        if rule == policy:
            last = ERAS[n + 1][0] - timedelta(days=1) if n + 1 < len(ERAS) else None
            since = f"from {first}" if n else ""
            if last is None:
                return since
            return f"{since} to {last}" if since else f"until {last}"
    return ""  # pragma: no cover - every policy has an era


def _duration(seconds: float) -> str:
    """'38 min', '45 s', '12 min 30 s'."""
    whole = round(abs(seconds))
    minutes, rest = divmod(whole, 60)
    if not minutes:
        return f"{rest} s"
    return f"{minutes} min" + (f" {rest} s" if rest else "")


class Scenario(Frozen):
    """One drill: metadata, a clock origin, a timeline and the expected deliveries."""

    title: str = Field(min_length=1)
    kind: Literal["historical", "synthetic"]
    date: date
    sources: tuple[str, ...] = ()
    notes: str = ""
    policy: PolicyChoice = "auto"
    # alertsim's own national information message when no prefecture is concerned (J-Alert
    # sends nothing then): opt-in, synthetic scenarios only.
    national_info: bool = False
    # How long after the last overflight window the passed message waits for a
    # confirmation no later detection gives (None: the service's default).
    confirm_after: Offset | None = None
    status: Status
    start: AwareDatetime
    timeline: tuple[TimelineEntry, ...] = Field(min_length=1)
    expect: Expectations
    record: JAlertRecord | None = None

    @field_validator("status", mode="before")
    @classmethod
    def _refuse_actual(cls, value: object) -> object:
        return refuse_actual(value)

    @model_validator(mode="after")
    def _historical_as_it_was(self, info: ValidationInfo) -> Scenario:
        """A historical scenario names its sources and replays the rule of its day, with
        nothing J-Alert did not send; a record belongs to historical scenarios alone."""
        historical = self.kind == "historical"
        if historical and not self.sources:
            raise Located(("sources",), "a historical scenario must name its sources")
        if not historical and self.record is not None:
            raise Located(("record",), "a record of what J-Alert did belongs to "
                           "historical scenarios only")
        if _as_recorded(info):
            return self
        in_force = policy_in_force(self.date)
        if historical and self.policy not in ("auto", in_force):
            raise Located(("policy",), (
                f"{self.policy} was not J-Alert's rule on {self.date}: {in_force} applied "
                f"that day ({_era(in_force)}); a historical scenario replays under the rule "
                f"of its day: use auto or {in_force}"))
        if historical and self.national_info:
            raise Located(("national_info",), (
                "a historical scenario replays what J-Alert sent, and J-Alert sends no "
                "national message when no prefecture is concerned; national_info is for "
                "synthetic scenarios"))
        if self.expect.national and not self.national_info:
            raise Located(("expect", "national"), (
                "a national information message is sent only with national_info: true "
                "(J-Alert itself sends nothing when no prefecture is concerned)"))
        return self

    @model_validator(mode="after")
    def _timeline_consistent(self, info: ValidationInfo) -> Scenario:
        authored = not _as_recorded(info)
        previous = 0.0
        last_sequence: dict[str, int] = {}
        for i, entry in enumerate(self.timeline):
            if entry.at < previous:
                raise Located(("timeline", i, "at"),
                               f"offset {entry.at:g} s is earlier than the previous "
                               f"entry's {previous:g} s; offsets must not decrease")
            previous = entry.at
            if isinstance(entry, DetectionEntry):
                if authored:
                    self._check_observed_at(i, entry)
                seq = entry.detection.sequence
                before = last_sequence.get(entry.event_id)
                if before is not None and seq <= before:
                    raise Located(("timeline", i, "detection", "sequence"),
                                   f"sequence {seq} does not follow {before} for event "
                                   f"{entry.event_id!r}")
                last_sequence[entry.event_id] = seq
            elif entry.event_id not in last_sequence:
                raise Located(("timeline", i, "event_id"),
                               f"no detection of event {entry.event_id!r} earlier in "
                               "the timeline")
        return self

    def _check_observed_at(self, i: int, entry: DetectionEntry) -> None:
        """An observation after its launch, and one the service would admit when it
        receives the entry at its place in the timeline (not stale, not ahead)."""
        detection, played = entry.detection, self.time_of(entry)
        observed, launched = detection.observed_at, detection.launch.time
        where = ("timeline", i, "detection", "observed_at")
        if observed < launched:
            early = _duration((launched - observed).total_seconds())
            raise Located(where, (
                f"{observed.isoformat()} is {early} before the launch "
                f"({launched.isoformat()}); a sensor observes a launch after it happens"))
        lead = (observed - played).total_seconds()
        place = f"the entry's place in the timeline ({played:%H:%M:%S})"
        ahead, stale = (_ADMISSION.ahead_by.total_seconds(),
                        _ADMISSION.stale_after.total_seconds())
        if lead > ahead:
            raise Located(where, (
                f"{observed.isoformat()} is {_duration(lead)} after {place}; the service "
                f"would refuse it as ahead of its clock (limit {_duration(ahead)})"))
        if -lead > stale:
            raise Located(where, (
                f"{observed.isoformat()} is {_duration(lead)} before {place}; the service "
                f"would refuse it as stale (limit {_duration(stale)})"))

    def resolved_policy(self) -> Policy:
        """The warning rule the drill runs under: `auto` is the rule in force on `date`."""
        return resolve_policy(self.policy, self.date)

    def time_of(self, entry: DetectionEntry | ActionEntry) -> datetime:
        """The entry's moment on the scenario clock."""
        return self.start + timedelta(seconds=entry.at)

    def timeline_inputs(self) -> list[tuple[datetime, TimelineInput]]:
        """The timeline as timed engine inputs: detections and operator actions."""
        return [(self.time_of(e), OperatorAction(action=e.action, event_id=e.event_id)
                 if isinstance(e, ActionEntry) else e.detection) for e in self.timeline]

    def detections(self) -> tuple[DetectionEntry, ...]:
        return tuple(e for e in self.timeline if isinstance(e, DetectionEntry))

    def event_ids(self) -> tuple[str, ...]:
        """Event ids in order of first detection."""
        return tuple(dict.fromkeys(e.event_id for e in self.detections()))

    @property
    def duration_s(self) -> float:
        return self.timeline[-1].at


def load_scenario(path: str | Path) -> Scenario:
    """Read and validate a scenario file; every problem raises ScenarioError naming
    the file, the line and the field."""
    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ScenarioError(f"{source}: cannot read file: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise ScenarioError(f"{source}: not UTF-8 text: {exc.reason}") from exc
    try:
        data, lines = parse(text)
    except yaml.YAMLError as exc:
        raise ScenarioError(yaml_problem(source, text, exc)) from exc
    if not isinstance(data, dict):
        raise ScenarioError(f"{source}:1: (document): expected a mapping of scenario fields, "
                            f"got {type(data).__name__}")
    try:
        return Scenario.model_validate(data)
    except ValidationError as exc:
        raise ScenarioError(describe(source, exc, lines, skip=_ENTRY_TAGS)) from exc
