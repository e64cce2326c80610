"""J-Alert's published flow, purely: launch and shelter, then exactly one closing message.

Each case runs the engine on a virtual clock with the service's admission rules
(`simulate`), and pins the stages every prefecture receives, when `passed` may go out, and
what is withheld as after the fact. The same cases run live on Mosquitto in
tests/e2e/test_published_flow_live.py.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta

import pytest

from alertsim.domain.detection import Detection
from alertsim.domain.lifecycle import DEFAULT_CONFIRM_AFTER, FlowRules
from alertsim.domain.prefectures import Atlas
from alertsim.domain.timeline import Engine, Note, OperatorAction, Sent, TimelineInput, simulate
from alertsim.domain.vocabulary import Policy
from alertsim.domain.warnings import decide
from alertsim.testing import DEFAULT_LAUNCH_TIME as T0
from alertsim.testing import make_detection

TSUGARU = ((40.6, 126.4), (34.33, 178.57))  # over Hokkaido and Aomori, far into the Pacific
SINPO = (40.03, 128.18)
SHORT_OF_AKITA = (39.9, 139.0)  # in the EEZ; the impact area reaches Akita's sea
AKITA_LAND = (39.70, 140.40)
AKITA_SEA = (39.75, 139.75)  # Akita's territorial sea
SOHAE_SOUTH = ((39.66, 124.705), (12.8, 128.1))  # over Okinawa (Kumejima) to the Pacific


@dataclass
class Run:
    sent: list[Sent]
    notes: list[Note]

    def stages(self) -> dict[str, list[str]]:
        out: dict[str, list[str]] = defaultdict(list)
        for s in self.sent:
            out[s.alert.prefecture or "national"].append(s.alert.stage)
        return dict(out)

    def times(self, stage: str) -> set[datetime]:
        return {s.at for s in self.sent if s.alert.stage == stage}


def run(atlas: Atlas, inputs: list[TimelineInput | tuple[datetime, TimelineInput]],
        policy: Policy = "prefecture", until: datetime | None = None) -> Run:
    timed = [i if isinstance(i, tuple) else (i.observed_at, i) for i in inputs
             if isinstance(i, tuple | Detection)]
    engine = Engine(atlas=atlas, policy=policy, status="Exercise", sender="s@test.invalid",
                    close_after=timedelta(minutes=10), events={})
    notes: list[Note] = []
    sent = list(simulate(timed, engine, nonce="t", notes=notes, until=until))
    return Run(sent, notes)


def detection(launch: tuple[float, float], impact: tuple[float, float], cross: float,
              along: float, *, seq: int = 1, minutes: float = 2.0, flight: float = 10.0,
              **extra: object) -> Detection:
    return make_detection(launch, impact, cross, along, sequence=seq,
                          observed_after=timedelta(minutes=minutes),
                          flight=timedelta(minutes=flight), **extra)  # type: ignore[arg-type]


def last_window(atlas: Atlas, d: Detection, policy: Policy = "prefecture") -> datetime:
    return max(p.window.end for p in decide(d, atlas, policy=policy, now=T0).prefectures)


def action(kind: str, at: datetime) -> tuple[datetime, TimelineInput]:
    return at, OperatorAction(action=kind, event_id="test-event")  # type: ignore[arg-type]


def test_overflight_confirmed_by_a_later_detection_ends_with_passed(atlas: Atlas) -> None:
    """Flew over Japan: shelter, then passed once a later detection confirms it; no fall."""
    first = detection(*TSUGARU, 30, 100, flight=14)
    last = last_window(atlas, first)
    confirm = detection(*TSUGARU, 30, 100, flight=14, seq=2, minutes=12)
    outcome = detection(*TSUGARU, 30, 100, flight=14, seq=3, minutes=15, outcome="impact")
    got = run(atlas, [first, confirm, outcome])
    assert got.stages() == {"01": ["shelter", "passed"], "02": ["shelter", "passed"]}
    assert got.times("passed") == {confirm.observed_at}
    assert min(got.times("passed")) >= last
    assert got.notes == []


def test_unconfirmed_overflight_passes_after_the_policy_delay(atlas: Atlas) -> None:
    """With no confirming detection, passed goes out confirm_after past the last window."""
    first = detection(*TSUGARU, 30, 100, flight=14)
    last = last_window(atlas, first)
    got = run(atlas, [first], until=last + timedelta(hours=1))
    assert got.stages() == {"01": ["shelter", "passed"], "02": ["shelter", "passed"]}
    assert got.times("passed") == {last + DEFAULT_CONFIRM_AFTER}
    text = next(s.alert for s in got.sent if s.alert.stage == "passed").info[1].description
    assert "passed over Hokkaido and Aomori toward" in text
    assert "between 22:47 and 22:48 JST" in text


@pytest.mark.parametrize(("policy", "warned"), [
    ("prefecture", {"05"}),
    ("prefecture+adjacent", {"02", "03", "04", "05", "06"}),
])
def test_fell_short_at_sea_ends_with_fell_sea_never_passed(atlas: Atlas, policy: Policy,
                                                           warned: set[str]) -> None:
    """Fell short in the EEZ off Akita: every warned prefecture gets fell_sea, none passed,
    neither at the window's end nor on the outcome (2018 and 2023 rules)."""
    first = detection(SINPO, SHORT_OF_AKITA, 20, 100)
    later = detection(SINPO, SHORT_OF_AKITA, 20, 100, seq=2, minutes=9)
    outcome = detection(SINPO, SHORT_OF_AKITA, 20, 100, seq=3, minutes=11, outcome="impact")
    got = run(atlas, [first, later, outcome], policy=policy)
    assert got.stages() == {code: ["shelter", "fell_sea"] for code in warned}
    assert got.times("fell_sea") == {outcome.observed_at}
    assert got.notes == []


def test_predicted_fall_alone_sends_no_fall_message(atlas: Atlas) -> None:
    """A prediction at sea with no outcome leaves the warning standing; no fall message."""
    first = detection(SINPO, SHORT_OF_AKITA, 20, 100)
    got = run(atlas, [first], until=first.observed_at + timedelta(hours=2))
    assert got.stages() == {"05": ["shelter"]}


def test_predicted_on_land_then_fell_on_land(atlas: Atlas) -> None:
    """Predicted on Akita's land: shelter and evacuate-now, then fell_land on the outcome."""
    first = detection(SINPO, AKITA_LAND, 10, 20)
    outcome = detection(SINPO, AKITA_LAND, 10, 20, seq=2, minutes=11, outcome="impact")
    got = run(atlas, [first, outcome])
    assert got.stages() == {"05": ["shelter", "imminent", "fell_land"]}
    fell = next(s.alert for s in got.sent if s.alert.stage == "fell_land")
    assert "秋田県周辺に落下したものとみられます" in fell.info[0].description
    assert got.notes == []


def test_predicted_in_territorial_sea_then_fell_in_the_eez(atlas: Atlas) -> None:
    """Predicted in Akita's territorial sea, fell in the EEZ: evacuate-now, then fell_sea."""
    first = detection(SINPO, AKITA_SEA, 10, 20)
    outcome = detection(SINPO, SHORT_OF_AKITA, 10, 20, seq=2, minutes=11, outcome="impact")
    got = run(atlas, [first, outcome])
    assert got.stages() == {"05": ["shelter", "imminent", "fell_sea"]}
    assert "passed" not in {s.alert.stage for s in got.sent}


def test_cancel_before_the_outcome(atlas: Atlas) -> None:
    """An operator cancel before any outcome lifts the call; nothing follows it."""
    first = detection(*TSUGARU, 30, 100, flight=14)
    got = run(atlas, [first, action("cancel", first.observed_at + timedelta(minutes=1))],
              until=first.observed_at + timedelta(hours=1))
    assert got.stages() == {"01": ["shelter", "cancel"], "02": ["shelter", "cancel"]}


def test_cancel_then_a_late_outcome_sends_nothing_more(atlas: Atlas) -> None:
    """After a cancel, the event's late outcome sends nothing and is withheld with a reason."""
    first = detection(*TSUGARU, 30, 100, flight=14)
    late = detection(*TSUGARU, 30, 100, flight=14, seq=2, minutes=16, outcome="impact")
    got = run(atlas, [first, action("cancel", first.observed_at + timedelta(minutes=1)), late])
    assert got.stages() == {"01": ["shelter", "cancel"], "02": ["shelter", "cancel"]}
    assert len(got.notes) == 1
    assert "already had its closing message (cancel)" in got.notes[0].reason


def test_first_detection_after_the_fall_warns_nobody(atlas: Atlas) -> None:
    """A first detection observed after the predicted fall warns nobody, with a reason."""
    late = detection(*TSUGARU, 30, 100, flight=14, minutes=15)
    got = run(atlas, [late])
    assert got.sent == []
    assert len(got.notes) == 1
    assert "after the predicted fall" in got.notes[0].reason


def test_corridor_widened_after_the_passage_warns_nobody_new(atlas: Atlas) -> None:
    """A wider corridor after the passage adds no shelter call for windows already over;
    the update confirms the passage of the places warned."""
    first = detection(*TSUGARU, 30, 100, flight=14)
    wide = detection(*TSUGARU, 120, 100, flight=14, seq=2, minutes=6)
    got = run(atlas, [first, wide])
    assert got.stages() == {"01": ["shelter", "passed"], "02": ["shelter", "passed"]}
    assert got.times("passed") == {wide.observed_at}
    withheld = sorted(n.reason for n in got.notes)
    assert len(withheld) == 2  # Iwate and Akita
    assert all("no shelter call after the fact" in r for r in withheld)


def test_satellite_reaching_orbit_passes_and_lifts_under_the_2023_rule(atlas: Atlas) -> None:
    """A rocket reaching orbit: shelter, then one passed message that also lifts the call."""
    first = detection(*SOHAE_SOUTH, 50, 300, flight=22, minutes=3,
                      object_kind="space_launch_vehicle")
    last = last_window(atlas, first, "prefecture+adjacent")
    orbit = detection(*SOHAE_SOUTH, 50, 300, flight=22, minutes=31, seq=2,
                      object_kind="space_launch_vehicle", outcome="orbit")
    got = run(atlas, [first, orbit], policy="prefecture+adjacent")
    assert got.stages() == {"47": ["shelter", "passed"]}
    assert got.times("passed") == {orbit.observed_at}
    assert min(got.times("passed")) >= last
    passed = next(s.alert for s in got.sent if s.alert.stage == "passed")
    assert "避難の呼びかけを解除します" in passed.info[0].description


def test_orbit_before_the_last_window_waits_for_it(atlas: Atlas) -> None:
    """An outcome that arrives before the last window is over sends passed at its end."""
    first = detection(*SOHAE_SOUTH, 50, 300, flight=22, minutes=3,
                      object_kind="space_launch_vehicle")
    last = last_window(atlas, first)
    early = detection(*SOHAE_SOUTH, 50, 300, flight=22, minutes=5, seq=2,
                      object_kind="space_launch_vehicle", outcome="orbit")
    got = run(atlas, [first, early])
    assert got.stages() == {"47": ["shelter", "passed"]}
    assert got.times("passed") == {last}


def test_close_while_sheltering_lifts_the_call_first(atlas: Atlas) -> None:
    """Closing an event still sheltering sends each place a cancel before it clears."""
    first = detection(*TSUGARU, 30, 100, flight=14)
    got = run(atlas, [first, action("close", first.observed_at + timedelta(seconds=30))])
    assert got.stages() == {"01": ["shelter", "cancel"], "02": ["shelter", "cancel"]}


def test_no_shelter_after_a_narrowing_cancel(atlas: Atlas) -> None:
    """A prefecture cancelled by a narrower update is not warned again by a wider one."""
    wide = detection(*TSUGARU, 120, 100, flight=14)
    narrow = detection(*TSUGARU, 30, 100, flight=14, seq=2, minutes=2.5)
    wide_again = detection(*TSUGARU, 120, 100, flight=14, seq=3, minutes=3)
    got = run(atlas, [wide, narrow, wide_again], until=wide.observed_at + timedelta(hours=1))
    stages = got.stages()
    assert stages["03"] == ["shelter", "cancel"]
    assert stages["01"] == ["shelter", "passed"]
    assert any("already had its closing message (cancel)" in n.reason for n in got.notes)


def test_national_message_is_opt_in(atlas: Atlas) -> None:
    """A launch that warns nobody sends nothing unless the national message is switched on."""
    sea = detection(SINPO, (41.35, 134.6), 40, 100)
    assert run(atlas, [sea]).sent == []
    engine = Engine(atlas=atlas, policy="prefecture", status="Exercise", sender="s",
                    close_after=timedelta(minutes=10), events={},
                    rules=FlowRules(national=True))
    sent = list(simulate([(sea.observed_at, sea)], engine, nonce="t"))
    assert [(s.alert.prefecture, s.alert.stage) for s in sent] == [(None, "national")]


def test_every_place_gets_exactly_one_closing_message(atlas: Atlas) -> None:
    """Across all cases above, no place ever gets two closing messages or a fall after
    passed."""
    closing = {"passed", "fell_land", "fell_sea", "cancel"}
    cases = [
        [detection(*TSUGARU, 30, 100, flight=14),
         detection(*TSUGARU, 30, 100, flight=14, seq=2, minutes=16, outcome="impact")],
        [detection(SINPO, AKITA_SEA, 10, 20),
         detection(SINPO, SHORT_OF_AKITA, 10, 20, seq=2, minutes=11, outcome="impact")],
    ]
    for inputs in cases:
        for stages in run(atlas, list(inputs)).stages().values():
            assert sum(s in closing for s in stages) == 1
            assert stages[0] == "shelter"
