"""Scenario fields of the published flow: the policy of the day, national_info,
confirm_after, expect.refused, detection times against the timeline, and the record of what
J-Alert did; each refusal names the file, the line and the field."""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path

import pytest

from alertsim.drills.jalert_record import JAlertRecord, RecordedStage
from alertsim.drills.scenario import Scenario, load_scenario
from alertsim.errors import ScenarioError

ROOT = Path(__file__).resolve().parents[2]

# A historical scenario (2017-08-29, the block era) with a record; the cases edit it.
HISTORICAL = """\
title: "record fixture"
kind: historical
date: 2017-08-29
sources: ["Ministry of Defense press release 2017-08-29"]
status: exercise
start: "2017-08-29T05:58:00+09:00"
timeline:
  - at: "00:04:00"
    detection:
      event_id: "e1"
      sequence: 1
      observed_at: "2017-08-29T06:02:00+09:00"
      object: ballistic_missile
      launch: {lat: 39.224, lon: 125.670, time: "2017-08-29T05:58:00+09:00"}
      predicted:
        impact: {lat: 41.0, lon: 157.4}
        impact_time: "2017-08-29T06:12:00+09:00"
      uncertainty: {cross_track_km: 25, along_track_km: 100}
  - {at: "00:20:00", action: close, event_id: "e1"}
expect:
  prefectures:
    "01": [shelter, passed]
record:
  sources: ["Cabinet Secretariat", "NHK 2017-08-29"]
  areas: ["01", "02"]
  stages:
    - {stage: shelter, at: "2017-08-29T06:02:00+09:00"}
    - {stage: passed, at: "2017-08-29T06:14:00+09:00", prefectures: ["01"]}
"""

# The same launch as a synthetic scenario, without a record.
SYNTHETIC = HISTORICAL.replace("kind: historical", "kind: synthetic").split("record:\n")[0]


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "scenario.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def _edited(base: str, old: str, new: str) -> str:
    assert old in base, old
    return base.replace(old, new, 1)


def _line(text: str, needle: str) -> int:
    """The 1-based line of the first line of `text` containing `needle`."""
    return next(n for n, line in enumerate(text.splitlines(), 1) if needle in line)


def _refused(tmp_path: Path, text: str) -> tuple[Path, str]:
    path = _write(tmp_path, text)
    with pytest.raises(ScenarioError) as info:
        load_scenario(path)
    return path, str(info.value)


def test_base_texts_are_valid(tmp_path: Path) -> None:
    """The historical and synthetic fixtures load, with every new field at its default."""
    historical = load_scenario(_write(tmp_path, HISTORICAL))
    assert (historical.policy, historical.national_info, historical.confirm_after) == (
        "auto", False, None)
    assert historical.expect.refused == 0
    assert load_scenario(_write(tmp_path, SYNTHETIC)).record is None


# --- policy --------------------------------------------------------------------------

@pytest.mark.parametrize(("day", "policy"), [
    ("2016-02-07", "block-2017"), ("2018-01-07", "block-2017"), ("2018-01-08", "prefecture"),
    ("2022-12-31", "prefecture"), ("2023-01-01", "prefecture+adjacent"),
    ("2023-11-21", "prefecture+adjacent"),
])
def test_auto_resolves_to_the_rule_of_the_day(tmp_path: Path, day: str, policy: str) -> None:
    """`auto` (the default) resolves to the policy in force on the scenario's date."""
    text = SYNTHETIC.replace("2017-08-29", day)
    assert load_scenario(_write(tmp_path, text)).resolved_policy() == policy


def test_named_policy_resolves_to_itself(tmp_path: Path) -> None:
    """A synthetic scenario may name any rule, and runs under it whatever its date."""
    text = _edited(SYNTHETIC, "status: exercise", "policy: prefecture+adjacent\nstatus: exercise")
    scenario = load_scenario(_write(tmp_path, text))
    assert (scenario.policy, scenario.resolved_policy()) == (
        "prefecture+adjacent", "prefecture+adjacent")


def test_historical_may_name_the_rule_of_its_day(tmp_path: Path) -> None:
    """A historical scenario naming the rule in force on its date loads."""
    text = _edited(HISTORICAL, "status: exercise", "policy: block-2017\nstatus: exercise")
    assert load_scenario(_write(tmp_path, text)).resolved_policy() == "block-2017"


def test_historical_with_another_rule_is_refused_naming_the_rule_of_the_day(
        tmp_path: Path) -> None:
    """A historical scenario naming another rule is refused at `policy`, naming the rule
    J-Alert applied that day."""
    text = _edited(HISTORICAL, "status: exercise", "policy: prefecture\nstatus: exercise")
    path, error = _refused(tmp_path, text)
    assert error == (
        f"{path}:{_line(text, 'policy:')}: policy: prefecture was not J-Alert's rule on "
        "2017-08-29: block-2017 applied that day (until 2018-01-07); a historical scenario "
        "replays under the rule of its day: use auto or block-2017")


def test_unknown_policy_is_refused(tmp_path: Path) -> None:
    """A policy outside auto and the three rules is refused at its line."""
    text = _edited(SYNTHETIC, "status: exercise", "policy: blocks\nstatus: exercise")
    path, error = _refused(tmp_path, text)
    assert error.startswith(f"{path}:{_line(text, 'policy:')}: policy: Input should be 'auto'")


# --- national_info -------------------------------------------------------------------

def test_national_info_opts_in_on_a_synthetic_scenario(tmp_path: Path) -> None:
    """A synthetic scenario may opt in to the national message and expect it."""
    text = _edited(SYNTHETIC, "status: exercise", "national_info: true\nstatus: exercise")
    text = _edited(text, '    "01": [shelter, passed]', '    "01": [shelter, passed]\n'
                   "  national: true")
    scenario = load_scenario(_write(tmp_path, text))
    assert scenario.national_info
    assert scenario.expect.national


def test_national_info_is_refused_in_a_historical_scenario(tmp_path: Path) -> None:
    """J-Alert sends no national message: a historical scenario may not ask for one."""
    text = _edited(HISTORICAL, "status: exercise", "national_info: true\nstatus: exercise")
    path, error = _refused(tmp_path, text)
    assert error.startswith(f"{path}:{_line(text, 'national_info')}: national_info: "
                            "a historical scenario replays what J-Alert sent"), error


def test_expecting_national_without_national_info_is_refused(tmp_path: Path) -> None:
    """`expect.national: true` without `national_info: true` is refused at expect.national."""
    text = _edited(SYNTHETIC, '    "01": [shelter, passed]', '    "01": [shelter, passed]\n'
                   "  national: true")
    path, error = _refused(tmp_path, text)
    assert error.startswith(f"{path}:{_line(text, 'national: true')}: expect.national: "
                            "a national information message is sent only with "
                            "national_info: true"), error


# --- confirm_after and expect.refused ------------------------------------------------

@pytest.mark.parametrize(("written", "seconds"), [('"00:10:00"', 600.0), ("90", 90.0),
                                                   ('"02:30"', 150.0)])
def test_confirm_after_is_an_offset(tmp_path: Path, written: str, seconds: float) -> None:
    """`confirm_after` reads like any offset: HH:MM:SS, MM:SS or seconds."""
    text = _edited(SYNTHETIC, "status: exercise", f"confirm_after: {written}\nstatus: exercise")
    assert load_scenario(_write(tmp_path, text)).confirm_after == seconds


@pytest.mark.parametrize(("written", "message"), [
    ("-5", "greater than or equal to 0"), ('"ten minutes"', "expected 'HH:MM:SS'")])
def test_bad_confirm_after_is_refused(tmp_path: Path, written: str, message: str) -> None:
    """A negative or unreadable `confirm_after` is refused at its line."""
    text = _edited(SYNTHETIC, "status: exercise", f"confirm_after: {written}\nstatus: exercise")
    path, error = _refused(tmp_path, text)
    assert error.startswith(f"{path}:{_line(text, 'confirm_after')}: confirm_after: ")
    assert message in error


def test_expect_refused_counts_refusal_notes(tmp_path: Path) -> None:
    """`expect.refused` takes how many refusal notes the drill must produce."""
    text = _edited(SYNTHETIC, '    "01": [shelter, passed]', '    "01": [shelter, passed]\n'
                   "  refused: 2")
    assert load_scenario(_write(tmp_path, text)).expect.refused == 2


def test_negative_expect_refused_is_refused(tmp_path: Path) -> None:
    """A negative refusal count is refused at expect.refused."""
    text = _edited(SYNTHETIC, '    "01": [shelter, passed]', '    "01": [shelter, passed]\n'
                   "  refused: -1")
    path, error = _refused(tmp_path, text)
    assert error == (f"{path}:{_line(text, 'refused:')}: expect.refused: "
                     "Input should be greater than or equal to 0")


# --- detections against the timeline -------------------------------------------------

OBSERVED = 'observed_at: "2017-08-29T06:02:00+09:00"'


def test_observation_before_its_launch_is_refused(tmp_path: Path) -> None:
    """A detection observed before its launch time is refused at its observed_at."""
    text = _edited(SYNTHETIC, OBSERVED, 'observed_at: "2017-08-29T05:57:00+09:00"')
    path, error = _refused(tmp_path, text)
    assert error == (
        f"{path}:{_line(text, 'observed_at')}: timeline[0].detection.observed_at: "
        "2017-08-29T05:57:00+09:00 is 1 min before the launch (2017-08-29T05:58:00+09:00); "
        "a sensor observes a launch after it happens")


def test_observation_far_ahead_of_its_place_is_refused(tmp_path: Path) -> None:
    """An observation more than 5 min after the entry's place is refused as the service
    would refuse it: ahead of its clock."""
    text = _edited(SYNTHETIC, OBSERVED, 'observed_at: "2017-08-29T06:40:00+09:00"')
    path, error = _refused(tmp_path, text)
    assert error == (
        f"{path}:{_line(text, 'observed_at')}: timeline[0].detection.observed_at: "
        "2017-08-29T06:40:00+09:00 is 38 min after the entry's place in the timeline "
        "(06:02:00); the service would refuse it as ahead of its clock (limit 5 min)")


def test_observation_far_behind_its_place_is_refused(tmp_path: Path) -> None:
    """An observation more than 10 min before the entry's place is refused as stale."""
    text = _edited(SYNTHETIC, '- at: "00:04:00"', '- at: "00:14:30"')
    text = _edited(text, '{at: "00:20:00"', '{at: "00:21:00"')
    path, error = _refused(tmp_path, text)
    assert error == (
        f"{path}:{_line(text, 'observed_at')}: timeline[0].detection.observed_at: "
        "2017-08-29T06:02:00+09:00 is 10 min 30 s before the entry's place in the timeline "
        "(06:12:30); the service would refuse it as stale (limit 10 min)")


@pytest.mark.parametrize(("at", "observed"), [
    ('"00:04:00"', "06:07:00"),  # 5 min ahead: the limit itself
    ('"00:14:00"', "06:02:00"),  # 10 min behind: the limit itself
    ('"00:04:00"', "05:58:00"),  # at the launch
])
def test_observations_at_the_limits_load(tmp_path: Path, at: str, observed: str) -> None:
    """Observations exactly at the service's limits, or at the launch, are accepted."""
    text = _edited(SYNTHETIC, '- at: "00:04:00"', f"- at: {at}")
    text = _edited(text, OBSERVED, f'observed_at: "2017-08-29T{observed}+09:00"')
    load_scenario(_write(tmp_path, text))


# --- the record ----------------------------------------------------------------------

def test_record_loads_with_defaults(tmp_path: Path) -> None:
    """The record's tolerance defaults to 2 min and a stage without prefectures goes to
    every area."""
    scenario = load_scenario(_write(tmp_path, HISTORICAL))
    record = scenario.record
    assert record is not None
    assert (record.sources, record.notes, record.tolerance) == (
        ("Cabinet Secretariat", "NHK 2017-08-29"), "", 120.0)
    assert [record.prefectures_of(s) for s in record.stages] == [("01", "02"), ("01",)]
    assert {key: at.strftime("%H:%M") for key, at in record.times().items()} == {
        ("01", "shelter"): "06:02", ("02", "shelter"): "06:02", ("01", "passed"): "06:14"}


def test_record_tolerance_and_notes(tmp_path: Path) -> None:
    """`tolerance` reads like an offset; `notes` is free text."""
    text = _edited(HISTORICAL, '  areas: ["01", "02"]',
                   '  notes: "times to the minute"\n  tolerance: "00:00:30"\n'
                   '  areas: ["01", "02"]')
    record = load_scenario(_write(tmp_path, text)).record
    assert record is not None
    assert (record.notes, record.tolerance) == ("times to the minute", 30.0)


def test_record_with_no_area_means_no_alert(tmp_path: Path) -> None:
    """A record of a launch J-Alert did not announce: no areas, no stages."""
    text = HISTORICAL.split("  areas:")[0] + "  areas: []\n"
    record = load_scenario(_write(tmp_path, text)).record
    assert record is not None
    assert (record.areas, record.stages) == ((), ())


@pytest.mark.parametrize(("old", "new", "needle", "field", "message"), [
    pytest.param('  sources: ["Cabinet Secretariat", "NHK 2017-08-29"]\n', "", "record:",
                 "record.sources", "Field required", id="sources-missing"),
    pytest.param('  sources: ["Cabinet Secretariat", "NHK 2017-08-29"]', "  sources: []",
                 "sources: []", "record.sources", "at least 1 item", id="sources-empty"),
    pytest.param('  areas: ["01", "02"]\n', "", "record:", "record.areas", "Field required",
                 id="areas-missing"),
    pytest.param('  areas: ["01", "02"]', '  areas: ["01", "02", "01"]', "areas:",
                 "record.areas", "01 listed more than once", id="areas-twice"),
    pytest.param('  areas: ["01", "02"]', '  areas: ["01", "48"]', "areas:",
                 "record.areas[1]", "should match pattern", id="areas-bad-code"),
    pytest.param('prefectures: ["01"]}', 'prefectures: ["13"]}', "prefectures: [\"13\"]",
                 "record.stages[1].prefectures", "13 not among the record's areas",
                 id="prefectures-outside-areas"),
    pytest.param('prefectures: ["01"]}', "prefectures: []}", "prefectures: []",
                 "record.stages[1].prefectures", "at least 1 item", id="prefectures-empty"),
    pytest.param("{stage: passed,", "{stage: overflight,", "stage: overflight",
                 "record.stages[1].stage", "Input should be 'shelter'", id="stage-unknown"),
    pytest.param("{stage: passed,", "{stage: shelter,", "stage: shelter, at: \"2017-08-29T06:14",
                 "record.stages[1]", "shelter to 01 is recorded twice", id="stage-twice"),
    pytest.param('at: "2017-08-29T06:14:00+09:00"', 'at: "2017-08-29T06:14:00"', "06:14:00",
                 "record.stages[1].at", "timezone", id="time-without-offset"),
    pytest.param('  areas: ["01", "02"]', '  areas: ["01", "02"]\n  extra: 1', "extra: 1",
                 "record.extra", "Extra inputs are not permitted", id="unknown-field"),
])
def test_broken_record_is_refused(tmp_path: Path, old: str, new: str, needle: str,
                                  field: str, message: str) -> None:
    """A broken record is refused with the file, the line and the record field named."""
    text = _edited(HISTORICAL, old, new)
    path, error = _refused(tmp_path, text)
    assert error.startswith(f"{path}:{_line(text, needle)}: {field}: "), error
    assert message in error, error


def test_stages_without_areas_are_refused(tmp_path: Path) -> None:
    """A record addressing no area cannot list stages sent to them."""
    text = _edited(HISTORICAL, '  areas: ["01", "02"]', "  areas: []")
    text = _edited(text, ', prefectures: ["01"]}', "}")
    path, error = _refused(tmp_path, text)
    assert error.startswith(f"{path}:{_line(text, '{stage: shelter')}: record.stages[0]: "
                            "the record addresses no area"), error


def test_record_on_a_synthetic_scenario_is_refused(tmp_path: Path) -> None:
    """A record of what J-Alert did belongs to historical scenarios only."""
    text = HISTORICAL.replace("kind: historical", "kind: synthetic")
    path, error = _refused(tmp_path, text)
    assert error == (f"{path}:{_line(text, 'record:')}: record: a record of what J-Alert "
                     "did belongs to historical scenarios only")


def test_record_models_are_frozen_and_strict() -> None:
    """The record models refuse unknown fields and cannot be changed once built."""
    stage = RecordedStage.model_validate({"stage": "shelter",
                                          "at": "2017-08-29T06:02:00+09:00"})
    with pytest.raises(ValueError, match="frozen"):
        stage.stage = "passed"  # type: ignore[misc]
    with pytest.raises(ValueError, match="Extra inputs"):
        JAlertRecord.model_validate({"sources": ["x"], "areas": [], "colour": "red"})


def test_scenario_date_is_the_day_of_the_rule(tmp_path: Path) -> None:
    """The rule is resolved by `date`, the day the scenario is about."""
    scenario = load_scenario(_write(tmp_path, HISTORICAL))
    assert isinstance(scenario, Scenario)
    assert scenario.date == date(2017, 8, 29)
    assert scenario.resolved_policy() == "block-2017"


def test_docs_name_every_record_field() -> None:
    """docs/scenarios.md's record table names each field of the record models, and only
    those (the top-level doc test does not open the optional `record`)."""
    docs = (ROOT / "docs" / "scenarios.md").read_text("utf-8")
    documented = set(re.findall(r"^\| (record\.[\w.\[\]]+) \|", docs, re.MULTILINE))
    wanted = ({f"record.{name}" for name in JAlertRecord.model_fields}
              | {f"record.stages[].{name}" for name in RecordedStage.model_fields})
    assert documented == wanted
