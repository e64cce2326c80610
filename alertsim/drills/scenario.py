"""Scenario files: a drill as a timeline of detections and operator actions, plus what
every prefecture must receive. `load_scenario(path)` reads and validates one YAML file.

A scenario names its clock origin (`start`, usually the launch) and lists entries at
offsets from it: a full Detection v1 object, or an operator action (`cancel` lifts the
shelter call for an event, `close` ends the event and clears its retained state).
`expect` says, per prefecture code, the stages it must receive in order, which
prefectures must receive nothing, and whether a national information message is due.

Every problem is reported as a ScenarioError whose lines read
`FILE:LINE: field.path: what is wrong`; the line comes from the YAML node the field
was read from (mapping keys and sequence items keep their position).
"""

from __future__ import annotations

import re
from collections.abc import Hashable
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    AwareDatetime,
    BeforeValidator,
    Discriminator,
    Field,
    Tag,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import ErrorDetails
from yaml.constructor import ConstructorError

from alertsim.domain.detection import Detection, EventId
from alertsim.domain.model import Frozen
from alertsim.domain.timeline import OperatorAction, TimelineInput
from alertsim.domain.vocabulary import (
    DEFAULT_POLICY,
    PREFECTURE_CODES,
    Action,
    Policy,
    PrefectureCode,
    PrefectureStage,
    Status,
    refuse_actual,
)
from alertsim.errors import Location, ScenarioError, describe_validation_error, dotted

__all__ = [
    "ActionEntry",
    "DetectionEntry",
    "Expectations",
    "Scenario",
    "TimelineEntry",
    "load_scenario",
    "parse_offset",
]


_OFFSET = re.compile(r"^(?:(?P<h>\d+):)?(?P<m>\d{1,2}):(?P<s>\d{1,2}(?:\.\d+)?)$")


def parse_offset(value: object) -> object:
    """'HH:MM:SS', 'MM:SS' or a number of seconds -> seconds; anything else passes through
    for pydantic to reject with its own message."""
    if isinstance(value, str):
        text = value.strip()
        match = _OFFSET.match(text)
        if match is None:
            try:
                return float(text)
            except ValueError:
                raise ValueError(
                    "expected 'HH:MM:SS', 'MM:SS' or a number of seconds") from None
        minutes, seconds = int(match["m"]), float(match["s"])
        if (minutes >= 60 and match["h"] is not None) or seconds >= 60:
            raise ValueError("minutes and seconds must be below 60")
        return int(match["h"] or 0) * 3600 + minutes * 60 + seconds
    return value


def _jis_code(value: object) -> object:
    """Accept an unquoted YAML number (47, or 1 from `01`) as its two-digit code."""
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:02d}"
    return value


Offset = Annotated[float, BeforeValidator(parse_offset), Field(ge=0.0, allow_inf_nan=False)]
Code = Annotated[PrefectureCode, BeforeValidator(_jis_code)]


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
    """What the drill must produce: per-prefecture stages, silence, the national message."""

    prefectures: dict[Code, tuple[PrefectureStage, ...]] = Field(default_factory=dict)
    silent: Literal["others"] | tuple[Code, ...] = "others"
    national: bool = False

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
                raise _Located(("silent",), f"{', '.join(both)} also listed with stages")
        return self

    def silent_codes(self) -> frozenset[str]:
        """The prefectures that must receive nothing at all."""
        if self.silent == "others":
            return frozenset(PREFECTURE_CODES) - set(self.prefectures)
        return frozenset(self.silent)


class _Located(ValueError):
    """A cross-field problem that knows the field path it belongs to (relative to the
    model that raised it), so the report can name the field and its line."""

    def __init__(self, loc: tuple[int | str, ...], message: str) -> None:
        super().__init__(message)
        self.loc = loc


class Scenario(Frozen):
    """One drill: metadata, a clock origin, a timeline and the expected deliveries."""

    title: str = Field(min_length=1)
    kind: Literal["historical", "synthetic"]
    date: date
    sources: tuple[str, ...] = ()
    notes: str = ""
    policy: Policy = DEFAULT_POLICY
    status: Status
    start: AwareDatetime
    timeline: tuple[TimelineEntry, ...] = Field(min_length=1)
    expect: Expectations

    @field_validator("status", mode="before")
    @classmethod
    def _refuse_actual(cls, value: object) -> object:
        return refuse_actual(value)

    @model_validator(mode="after")
    def _timeline_consistent(self) -> Scenario:
        if self.kind == "historical" and not self.sources:
            raise _Located(("sources",), "a historical scenario must name its sources")
        previous = 0.0
        last_sequence: dict[str, int] = {}
        for i, entry in enumerate(self.timeline):
            if entry.at < previous:
                raise _Located(("timeline", i, "at"),
                               f"offset {entry.at:g} s is earlier than the previous "
                               f"entry's {previous:g} s; offsets must not decrease")
            previous = entry.at
            if isinstance(entry, DetectionEntry):
                seq = entry.detection.sequence
                before = last_sequence.get(entry.event_id)
                if before is not None and seq <= before:
                    raise _Located(("timeline", i, "detection", "sequence"),
                                   f"sequence {seq} does not follow {before} for event "
                                   f"{entry.event_id!r}")
                last_sequence[entry.event_id] = seq
            elif entry.event_id not in last_sequence:
                raise _Located(("timeline", i, "event_id"),
                               f"no detection of event {entry.event_id!r} earlier in "
                               "the timeline")
        return self

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


# --- YAML with positions -------------------------------------------------------------

Path_ = tuple[str, ...]


class _Loader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate keys (PyYAML silently keeps the last one)."""

    def construct_mapping(self, node: yaml.MappingNode,
                          deep: bool = False) -> dict[Hashable, Any]:
        seen: set[str] = set()
        for key_node, _ in node.value:
            if isinstance(key_node, yaml.ScalarNode):
                if key_node.value in seen:
                    raise ConstructorError("while constructing a mapping", node.start_mark,
                                           f"found duplicate key {key_node.value!r}",
                                           key_node.start_mark)
                seen.add(key_node.value)
        return super().construct_mapping(node, deep=deep)


def _index_lines(node: yaml.Node, path: Path_, lines: dict[Path_, int]) -> None:
    """Record the 1-based line of every mapping key and sequence item under `node`."""
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            child = (*path, str(key_node.value))
            lines[child] = key_node.start_mark.line + 1
            _index_lines(value_node, child, lines)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            child = (*path, str(i))
            lines[child] = item.start_mark.line + 1
            _index_lines(item, child, lines)


def _parse(text: str) -> tuple[object, dict[Path_, int]]:
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None, {(): 1}
        lines: dict[Path_, int] = {(): node.start_mark.line + 1}
        _index_lines(node, (), lines)
        return loader.construct_document(node), lines
    finally:
        loader.dispose()


_KEY = re.compile(r"^\s*(?:-\s+)?([A-Za-z_][\w-]*)\s*:")


def _nearest_key(text: str, line: int) -> str | None:
    """The last `key:` at or before `line`, to point a reader at a syntax error."""
    for raw in reversed(text.splitlines()[:line]):
        match = _KEY.match(raw)
        if match:
            return match[1]
    return None


def _yaml_problem(source: str, text: str, exc: yaml.YAMLError) -> str:
    if isinstance(exc, yaml.MarkedYAMLError):
        mark = exc.problem_mark or exc.context_mark
        problem = exc.problem or exc.context or "invalid YAML"
        if mark is not None:
            line = mark.line + 1
            key = _nearest_key(text, line)
            near = f" near '{key}'" if key else ""
            context = ""
            if exc.context and exc.context_mark is not None and exc.context_mark is not mark:
                context = f" ({exc.context} started at line {exc.context_mark.line + 1})"
            return (f"{source}:{line}: invalid YAML{near} (column {mark.column + 1}): "
                    f"{problem}{context}")
        return f"{source}: invalid YAML: {problem}"
    return f"{source}: invalid YAML: {exc}"


# --- validation errors, located ------------------------------------------------------

def _line_of(loc: tuple[int | str, ...], lines: dict[Path_, int]) -> int:
    """Line of the deepest part of `loc` found in the document (a missing key's parent)."""
    key = tuple(str(p) for p in loc)
    while key not in lines:
        key = key[:-1]
    return lines[key]


def _describe(source: str, exc: ValidationError, lines: dict[Path_, int],
              limit: int = 10) -> str:
    """`FILE:LINE: field.path: what is wrong` lines, through the one shared formatter."""

    def locate(loc: Location, err: ErrorDetails) -> str:
        loc = tuple(part for part in loc if str(part) not in _ENTRY_TAGS)
        error = (err.get("ctx") or {}).get("error")
        if isinstance(error, _Located):
            loc = (*loc, *error.loc)
        return f"{source}:{_line_of(loc, lines)}: {dotted(loc)}"

    problems = describe_validation_error(exc, limit, locate=locate, echo=False)
    return "\n".join(f"{source}: {line}" if line.startswith("... and") else line
                     for line in problems)


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
        data, lines = _parse(text)
    except yaml.YAMLError as exc:
        raise ScenarioError(_yaml_problem(source, text, exc)) from exc
    if not isinstance(data, dict):
        raise ScenarioError(f"{source}:1: (document): expected a mapping of scenario fields, "
                            f"got {type(data).__name__}")
    try:
        return Scenario.model_validate(data)
    except ValidationError as exc:
        raise ScenarioError(_describe(source, exc, lines)) from exc
