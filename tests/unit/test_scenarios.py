"""Scenario files: the shipped ones load and agree with `decide`; broken ones are refused
with the file, the line and the field named."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

import pytest

import alertsim.drills.scenario
from alertsim.data import load_atlas
from alertsim.domain.warnings import decide
from alertsim.drills.scenario import ActionEntry, DetectionEntry, Scenario, load_scenario
from alertsim.drills.scenario_fields import parse_offset
from alertsim.errors import ScenarioError

SCENARIO_DIR = Path(__file__).resolve().parents[2] / "scenarios"
SCENARIO_FILES = sorted(SCENARIO_DIR.glob("*.yaml"))
MAX_DURATION_S = 40 * 60


@pytest.fixture(scope="module", params=SCENARIO_FILES, ids=lambda p: p.stem)
def scenario(request: pytest.FixtureRequest) -> Scenario:
    path: Path = request.param
    return load_scenario(path)


def _warned_sets(scenario: Scenario) -> list[set[str]]:
    atlas = load_atlas()
    return [set(decide(e.detection, atlas, policy=scenario.resolved_policy(),
                       now=scenario.time_of(e)).shelter)
            for e in scenario.detections()]


def test_the_expected_scenarios_are_shipped() -> None:
    """The nine scenario files named in the brief are all present."""
    assert {p.stem for p in SCENARIO_FILES} >= {
        "2016-02-07-kwangmyongsong-4", "2017-08-29-hwasong-12", "2022-10-04-hwasong-12",
        "2023-04-13-hwasong-18", "2023-11-21-chollima-1", "2017-11-29-hwasong-15-no-alert",
        "salvo-three-launches", "impact-on-land-akita", "false-alarm-cancel-60s"}


def test_scenario_loads_with_sources_and_aware_start(scenario: Scenario) -> None:
    """Every shipped scenario loads, names its sources and starts at an aware time."""
    assert scenario.sources
    assert scenario.start.utcoffset() == timedelta(hours=9)
    assert scenario.status in {"exercise", "test"}


def test_scenario_is_short_and_closes_every_event(scenario: Scenario) -> None:
    """Drills stay under 40 minutes and close every event they open, after its last entry."""
    assert scenario.duration_s <= MAX_DURATION_S
    for event_id in scenario.event_ids():
        entries = [e for e in scenario.timeline if e.event_id == event_id]
        last = entries[-1]
        assert isinstance(last, ActionEntry)
        assert last.action == "close"


def test_detections_observed_at_their_offset(scenario: Scenario) -> None:
    """Each detection's observed_at equals the moment the timeline plays it."""
    for entry in scenario.detections():
        assert entry.detection.observed_at == scenario.time_of(entry)


def test_expected_shelter_prefectures_are_warned(scenario: Scenario) -> None:
    """Every prefecture expected to get `shelter` first is warned by some detection."""
    warned = set().union(*_warned_sets(scenario))
    expected = {code for code, stages in scenario.expect.prefectures.items()
                if stages[0] == "shelter"}
    assert expected <= warned


def test_silent_prefectures_are_never_warned(scenario: Scenario) -> None:
    """No detection in the scenario warns a prefecture the expectations say stays silent."""
    for warned in _warned_sets(scenario):
        assert not warned & scenario.expect.silent_codes()


def test_national_expected_only_when_some_detection_warns_nobody(scenario: Scenario) -> None:
    """A national message is expected exactly when the scenario opts in (`national_info`)
    and some event is decided with no prefecture."""
    atlas = load_atlas()
    silent_events = {
        e.event_id for e in scenario.detections()
        if not decide(e.detection, atlas, policy=scenario.resolved_policy(), now=scenario.time_of(e)).shelter
        and not any(d.event_id == e.event_id and d.detection.sequence < e.detection.sequence
                    for d in scenario.detections())
    }
    assert scenario.expect.national == (scenario.national_info and bool(silent_events))


@pytest.mark.parametrize(("text", "seconds"), [
    ("00:03:00", 180.0), ("03:00", 180.0), ("1:02:03", 3723.0), (90, 90), ("45.5", 45.5),
])
def test_offsets_parse(text: str | int, seconds: float) -> None:
    """Offsets accept HH:MM:SS, MM:SS and plain seconds."""
    assert parse_offset(text) == seconds


def test_offset_and_time_of() -> None:
    """An entry's `at` is its offset in seconds and time_of places it on the scenario clock."""
    scenario = load_scenario(SCENARIO_DIR / "2023-11-21-chollima-1.yaml")
    close = next(e for e in scenario.timeline
                 if isinstance(e, ActionEntry) and e.action == "close")
    assert close.at == 35 * 60
    assert scenario.time_of(close).isoformat() == "2023-11-21T23:18:00+09:00"
    assert isinstance(scenario.timeline[0], DetectionEntry)


def test_all_names_exist() -> None:
    """Every name in `__all__` is defined by the module."""
    for name in alertsim.drills.scenario.__all__:
        assert hasattr(alertsim.drills.scenario, name)


# --- broken files -----------------------------------------------------------------

GOOD = """\
title: "broken-file fixture"
kind: synthetic
date: 2025-01-01
sources: ["test"]
status: exercise
start: "2025-01-01T10:00:00+09:00"
timeline:
  - at: "00:03:00"
    detection:
      event_id: "e1"
      sequence: 1
      observed_at: "2025-01-01T10:03:00+09:00"
      object: ballistic_missile
      launch:
        lat: 40.858
        lon: 129.686
        time: "2025-01-01T10:00:00+09:00"
      predicted:
        impact: {lat: 39.70, lon: 140.40}
        impact_time: "2025-01-01T10:10:00+09:00"
      uncertainty: {cross_track_km: 10, along_track_km: 20}
  - at: "00:04:00"
    action: cancel
    event_id: "e1"
expect:
  prefectures:
    "05": [shelter, cancel]
"""


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "broken.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def _error(path: Path) -> str:
    with pytest.raises(ScenarioError) as info:
        load_scenario(path)
    return str(info.value)


def test_fixture_is_valid(tmp_path: Path) -> None:
    """The base text the broken cases start from is itself a valid scenario."""
    scenario = load_scenario(_write(tmp_path, GOOD))
    assert (scenario.policy, scenario.resolved_policy()) == ("auto", "prefecture+adjacent")
    assert [type(e) for e in scenario.timeline] == [DetectionEntry, ActionEntry]


@pytest.mark.parametrize(("old", "new", "line", "field", "message"), [
    pytest.param("status: exercise", "status: exercise: now", 5, "status",
                 r"invalid YAML .*mapping values are not allowed", id="bad-yaml-syntax"),
    pytest.param('title: "broken-file fixture"', 'title: "broken-file fixture',
                 None, "", r"invalid YAML .*started at line 1", id="unterminated-quote"),
    pytest.param("kind: synthetic\n", "", 1, "kind", "Field required", id="missing-field"),
    pytest.param("        lat: 40.858", "        lat: 140.858", 15,
                 "timeline[0].detection.launch.lat", "less than or equal to 90",
                 id="lat-out-of-range"),
    pytest.param("status: exercise", "status: Actual", 5, "status", "refused",
                 id="status-actual"),
    pytest.param('action: cancel\n    event_id: "e1"', 'action: cancel\n    event_id: "e2"', 24,
                 "timeline[1].event_id", "no detection of event 'e2'", id="unknown-event"),
    pytest.param('- at: "00:04:00"', '- at: "00:02:00"', 22, "timeline[1].at",
                 "must not decrease", id="decreasing-offsets"),
    pytest.param("        lon: 129.686\n", "", 14, "timeline[0].detection.launch.lon",
                 "Field required", id="missing-nested-field"),
    pytest.param('"05": [shelter, cancel]', '"48": [shelter, cancel]', 27,
                 "expect.prefectures.48", "should match pattern", id="bad-code"),
    pytest.param("sources:", "kind: synthetic\nsources:", 4, "kind", "duplicate key",
                 id="duplicate-key"),
])
def test_broken_file_names_file_line_and_field(
    tmp_path: Path, old: str, new: str, line: int | None, field: str, message: str
) -> None:
    """A broken scenario raises ScenarioError naming the file, the line and the field."""
    assert old in GOOD
    path = _write(tmp_path, GOOD.replace(old, new, 1))
    text = _error(path)
    assert text.startswith(f"{path}:")
    assert field in text
    assert re.search(message, text), text
    if line is not None:
        assert text.startswith(f"{path}:{line}:"), text
    else:
        assert re.match(rf"{re.escape(str(path))}:\d+:", text), text


def test_lat_error_reads_like_the_documented_example(tmp_path: Path) -> None:
    """The nested-field message has the documented `file:line: path: message` form."""
    path = _write(tmp_path, GOOD.replace("        lat: 40.858", "        lat: 95", 1))
    assert _error(path) == (
        f"{path}:15: timeline[0].detection.launch.lat: "
        "Input should be less than or equal to 90")


def test_unreadable_and_non_mapping_files_are_refused(tmp_path: Path) -> None:
    """A missing file or a document that is not a mapping raises ScenarioError."""
    assert "cannot read file" in _error(tmp_path / "absent.yaml")
    assert "expected a mapping" in _error(_write(tmp_path, "- just\n- a list\n"))
