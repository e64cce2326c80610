"""The alert lifecycle, purely: tables of transitions and whole scenarios on a virtual clock."""

from __future__ import annotations

import io
from collections import defaultdict
from datetime import timedelta
from pathlib import Path

import pytest

from alertsim.domain import lifecycle
from alertsim.domain.event_state import EventState, new_event
from alertsim.domain.messages import Alert
from alertsim.domain.prefectures import Atlas
from alertsim.domain.timeline import Engine, Sent, simulate
from alertsim.domain.warnings import decide
from alertsim.drills.dry_run import dry_run, service_config
from alertsim.drills.scenario import Scenario, load_scenario
from alertsim.testing import DEFAULT_LAUNCH_TIME, make_detection

SCENARIOS = sorted((Path(__file__).resolve().parents[2] / "scenarios").glob("*.yaml"))
TSUGARU = ((40.6, 126.4), (34.33, 178.57))


def engine(atlas: Atlas, policy: str = "prefecture") -> Engine:
    return Engine(atlas=atlas, policy=policy, status="Exercise",  # type: ignore[arg-type]
                  sender="alertsim@test.invalid", close_after=timedelta(minutes=10), events={})


def run_scenario(scenario: Scenario, atlas: Atlas) -> list[Sent]:
    inputs = scenario.timeline_inputs()
    return list(simulate(inputs, service_config(scenario).engine(atlas), nonce="t",
                         until=inputs[-1][0]))


def stages_by_place(sent: list[Sent]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = defaultdict(list)
    for s in sent:
        out[s.alert.prefecture or "national"].append(s.alert.stage)
    return dict(out)


def start(atlas: Atlas, cross: float, sequence: int = 1) -> tuple[EventState, list[Alert]]:
    d = make_detection(*TSUGARU, cross, 100, sequence=sequence)
    state = new_event(d, nonce="n", status="Exercise", sender="s")
    now = DEFAULT_LAUNCH_TIME + timedelta(minutes=2)
    moved = lifecycle.on_detection(state, d, decide(d, atlas, now=now), now=now)
    return moved.state, list(moved.alerts)


def test_widening_then_narrowing_gives_alert_then_cancel(atlas: Atlas) -> None:
    """A wider update warns more prefectures (Alert); narrowing again cancels them (Cancel)."""
    state, first = start(atlas, 30)
    assert [(a.prefecture, a.msgType) for a in first] == [("01", "Alert"), ("02", "Alert")]
    now = DEFAULT_LAUNCH_TIME + timedelta(minutes=3)
    wide = make_detection(*TSUGARU, 120, 100, sequence=2)
    moved = lifecycle.on_detection(state, wide, decide(wide, atlas, now=now), now=now)
    added = {a.prefecture for a in moved.alerts}
    assert added
    assert all(a.msgType == "Alert" and a.stage == "shelter" for a in moved.alerts)
    narrow = make_detection(*TSUGARU, 30, 100, sequence=3)
    back = lifecycle.on_detection(moved.state, narrow, decide(narrow, atlas, now=now), now=now)
    assert {a.prefecture for a in back.alerts} == added
    assert all(a.msgType == "Cancel" and a.stage == "cancel" for a in back.alerts)
    for cancel in back.alerts:
        shelter = next(a for a in moved.alerts if a.prefecture == cancel.prefecture)
        assert cancel.referenced_identifiers() == (shelter.identifier,)


@pytest.mark.parametrize("sequence", [1, 0])
def test_duplicate_and_stale_sequences_change_nothing(atlas: Atlas, sequence: int) -> None:
    """A repeated or older sequence returns the same state and no alerts."""
    state, _ = start(atlas, 30)
    d = make_detection(*TSUGARU, 120, 100, sequence=max(sequence, 1))
    stale = d.model_copy(update={"sequence": sequence}) if sequence else d
    now = DEFAULT_LAUNCH_TIME + timedelta(minutes=4)
    moved = lifecycle.on_detection(state, stale, decide(stale, atlas, now=now), now=now)
    assert moved.alerts == ()
    assert moved.state == state


def test_passed_when_due_is_an_update_and_nothing_follows_it(atlas: Atlas) -> None:
    """Unconfirmed, a tick at passed_due sends passed (Update, referencing the shelter) to
    every place at once; the outcome at sea afterwards sends no fall message."""
    state, first = start(atlas, 30)
    due = state.passed_due
    assert due == max(p.window_end for p in state.places.values()) + lifecycle.DEFAULT_CONFIRM_AFTER
    assert lifecycle.on_tick(state, now=due - timedelta(seconds=1)).alerts == ()
    ticked = lifecycle.on_tick(state, now=due)
    assert [(a.prefecture, a.stage, a.msgType) for a in ticked.alerts] == [
        ("01", "passed", "Update"), ("02", "passed", "Update")]
    assert ticked.alerts[0].referenced_identifiers() == (first[0].identifier,)
    later = due + timedelta(minutes=1)
    final = make_detection(*TSUGARU, 30, 100, sequence=2, outcome="impact",
                           observed_after=later - DEFAULT_LAUNCH_TIME)
    end = lifecycle.on_detection(ticked.state, final, decide(final, atlas, now=later), now=later)
    assert end.alerts == ()
    assert end.withheld == ()


def test_operator_cancel_and_close(atlas: Atlas) -> None:
    """Operator cancel lifts every open place once; a closed event sends nothing more."""
    state, _ = start(atlas, 30)
    now = DEFAULT_LAUNCH_TIME + timedelta(minutes=5)
    cancelled = lifecycle.on_cancel(state, now=now)
    assert [a.stage for a in cancelled.alerts] == ["cancel", "cancel"]
    assert lifecycle.on_cancel(cancelled.state, now=now).alerts == ()
    closed = lifecycle.on_close(cancelled.state, now=now).state
    assert closed.closed
    d = make_detection(*TSUGARU, 120, 100, sequence=9)
    assert lifecycle.on_detection(closed, d, decide(d, atlas, now=now), now=now).alerts == ()


def test_identifiers_unique_and_status_never_actual(atlas: Atlas) -> None:
    """Every alert of every scenario has a fresh identifier, and none is Actual."""
    seen: set[str] = set()
    for path in SCENARIOS:
        for s in run_scenario(load_scenario(path), atlas):
            assert s.alert.identifier not in seen
            seen.add(s.alert.identifier)
            assert s.alert.status in ("Exercise", "Test")
            assert s.alert.sent.utcoffset() == timedelta(hours=9)


def test_2023_04_13_ends_with_cancel_to_hokkaido(atlas: Atlas) -> None:
    """The 2023-04-13 correction: Hokkaido gets shelter, imminent, then a Cancel."""
    sent = run_scenario(load_scenario(SCENARIOS[[p.name for p in SCENARIOS].index(
        "2023-04-13-hwasong-18.yaml")]), atlas)
    hokkaido = [s.alert for s in sent if s.alert.prefecture == "01"]
    assert [a.stage for a in hokkaido] == ["shelter", "imminent", "cancel"]
    assert hokkaido[-1].msgType == "Cancel"
    assert set(hokkaido[-1].referenced_identifiers()) == {a.identifier for a in hokkaido[:2]}


def test_no_alert_scenario_sends_nothing(atlas: Atlas) -> None:
    """2017-11-29 (impact in the EEZ, no territory touched): nothing at all, as J-Alert."""
    path = next(p for p in SCENARIOS if "no-alert" in p.name)
    assert run_scenario(load_scenario(path), atlas) == []


@pytest.mark.parametrize("path", SCENARIOS, ids=[p.stem for p in SCENARIOS])
def test_every_scenario_meets_its_expectations_purely(atlas: Atlas, path: Path) -> None:
    """Simulated on a virtual clock, each scenario sends exactly the stages it expects."""
    scenario = load_scenario(path)
    by_place = stages_by_place(run_scenario(scenario, atlas))
    national = by_place.pop("national", [])
    assert by_place == {code: list(stages) for code, stages in
                        scenario.expect.prefectures.items()}
    assert bool(national) == scenario.expect.national


@pytest.mark.parametrize("path", [p for p in SCENARIOS if load_scenario(p).record is not None],
                         ids=lambda p: p.stem)
def test_historical_replays_match_the_record(path: Path) -> None:
    """The dry run of each scenario with J-Alert's record meets it: the same areas and
    every stage within the record's tolerance (2 minutes)."""
    out = io.StringIO()
    assert dry_run(path, out=out), out.getvalue()
    assert "record: matched" in out.getvalue()
