"""The scenario builder's preview: each detection's warned prefectures are the domain's
decision for that detection, the messages are what the drill's dry run plays, and the
file it saves is one `alertsim drill` loads and whose dry run meets its expectations."""

from __future__ import annotations

import io
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from alertsim.builder.compose import offset_text
from alertsim.builder.preview import draft_of, preview
from alertsim.builder.save import file_name, save_scenario
from alertsim.builder.sites import SITES, site
from alertsim.domain.detection import Detection
from alertsim.domain.policies import resolve_policy
from alertsim.domain.prefectures import Atlas
from alertsim.domain.warnings import decide
from alertsim.drills.dry_run import dry_run
from alertsim.drills.scenario import load_scenario
from alertsim.errors import InputError
from alertsim.web.builder_map import locate
from alertsim.web.geometry import layout

LAUNCH = "2025-01-01T10:00:00+09:00"


def draft_body(**changes: Any) -> dict[str, Any]:
    """A draft from Musudan-ri over northern Japan into the Pacific, with `changes`."""
    where = site("musudan")
    assert where is not None
    body: dict[str, Any] = {
        "title": "builder test", "event_id": "builder-test", "site": "musudan",
        "launch": {"lat": where.lat, "lon": where.lon, "time": LAUNCH},
        "aim": {"target": {"lat": 41.5, "lon": 146.0}}, "flight_min": 12,
        "uncertainty": {"cross_track_km": 25, "along_track_km": 100}}
    return {**body, **changes}


def detection_of(body: dict[str, Any], *, at_s: float = 120.0) -> Detection:
    """The detection the draft describes, built here from its fields (not by the builder)."""
    launched = datetime.fromisoformat(body["launch"]["time"])
    aim = dict(body["aim"])
    if "target" in aim:
        aim["impact"] = aim.pop("target")  # the contract's name for it
    return Detection.model_validate({
        "event_id": body["event_id"], "sequence": 1, "object": "ballistic_missile",
        "observed_at": (launched + timedelta(seconds=at_s)).isoformat(),
        "launch": body["launch"],
        "predicted": {**aim,
                      "impact_time": (launched + timedelta(minutes=body["flight_min"])).isoformat()},
        "uncertainty": body["uncertainty"]})


@pytest.mark.parametrize("policy", ["auto", "prefecture", "prefecture+adjacent", "block-2017"])
@pytest.mark.parametrize("aim", [{"target": {"lat": 41.5, "lon": 146.0}},
                                 {"target": {"lat": 26.0, "lon": 131.0}},
                                 {"azimuth_deg": 95.0, "range_km": 1500.0},
                                 {"target": {"lat": 39.9, "lon": 139.0}}])
def test_warned_prefectures_are_the_domain_decision(atlas: Atlas, policy: str,
                                                    aim: dict[str, Any]) -> None:
    """For each aim and rule, the preview lists exactly what `decide` warns, windows too."""
    body = draft_body(aim=aim, policy=policy)
    shown = preview(draft_of(body), atlas).summary()["detections"][0]
    detection = detection_of(body)
    decision = decide(detection, atlas, now=datetime.now().astimezone(),
                      policy=resolve_policy(policy, detection.launch.time))  # type: ignore[arg-type]
    assert shown["shelter"] == list(decision.shelter)
    assert [(p["code"], p["reason"]) for p in shown["prefectures"]] == [
        (p.code, p.reason) for p in decision.prefectures]
    assert [p["start"] for p in shown["prefectures"]] == [
        f"{p.window.start:%H:%M:%S}" for p in decision.prefectures]


def test_a_northern_overflight_warns_someone(atlas: Atlas) -> None:
    """The table above is not vacuous: the default draft warns Hokkaido and its neighbours'
    rule adds prefectures the 2018 rule does not."""
    adjacent = preview(draft_of(draft_body(policy="prefecture+adjacent")), atlas).summary()
    plain = preview(draft_of(draft_body(policy="prefecture")), atlas).summary()
    assert "01" in plain["detections"][0]["shelter"]
    assert set(plain["detections"][0]["shelter"]) < set(adjacent["detections"][0]["shelter"])


def test_messages_follow_the_timeline(atlas: Atlas) -> None:
    """A cancel before the overflight: every warned prefecture gets shelter then cancel;
    an update after it sends nothing more and is not refused."""
    body = draft_body(updates=[{"at": "00:13:00"}],
                      actions=[{"at": "00:03:00", "action": "cancel"}])
    shown = preview(draft_of(body), atlas).summary()
    warned = shown["detections"][0]["shelter"]
    assert warned
    assert {p["code"]: [m["stage"] for m in p["messages"]] for p in shown["prefectures"]} == {
        code: ["shelter", "cancel"] for code in warned}
    assert shown["expect"]["prefectures"] == {code: ["shelter", "cancel"] for code in warned}
    assert shown["refusals"] == []
    assert [d["sequence"] for d in shown["detections"]] == [1, 2]


def test_an_action_with_nothing_to_do_is_a_refusal_the_file_expects(atlas: Atlas) -> None:
    """A cancel after the passage is refused by the service's rules: the preview says so
    and the scenario expects exactly that refusal."""
    body = draft_body(updates=[{"at": "00:13:00"}],
                      actions=[{"at": "00:14:00", "action": "cancel"}])
    shown = preview(draft_of(body), atlas).summary()
    assert len(shown["refusals"]) == 1
    assert shown["expect"]["refused"] == 1
    assert all(p["messages"][-1]["stage"] == "passed" for p in shown["prefectures"])


@pytest.mark.parametrize("extra", [
    {},
    {"updates": [{"at": "00:13:00", "outcome": "impact"}],
     "actions": [{"at": "00:15:00", "action": "close"}]},
    {"updates": [{"at": "00:13:00"}], "actions": [{"at": "00:14:00", "action": "cancel"}]},
    {"aim": {"target": {"lat": 39.9, "lon": 139.0}}, "policy": "prefecture+adjacent",
     "updates": [{"at": "00:11:00", "outcome": "impact"}]},
    {"aim": {"target": {"lat": 39.9, "lon": 139.5}}, "status": "test",
     "updates": [{"at": "00:04:00", "aim": {"target": {"lat": 39.0, "lon": 133.0}}}]},
])
def test_the_saved_file_loads_and_its_dry_run_meets_its_expectations(
        atlas: Atlas, tmp_path: Path, extra: dict[str, Any]) -> None:
    """What `alertsim drill FILE --dry-run` does: load the file, play it, meet `expect`."""
    shown = preview(draft_of(draft_body(**extra)), atlas)
    path = save_scenario(shown, tmp_path, "built")
    assert path == tmp_path / "built.yaml"
    scenario = load_scenario(path)
    assert scenario.kind == "synthetic"
    assert scenario.expect.prefectures == {
        code: tuple(stages) for code, stages in shown.stages().items()}
    out = io.StringIO()
    assert dry_run(path, out), out.getvalue()
    assert list(tmp_path.iterdir()) == [path]  # the checked copy is gone


def test_aiming_by_azimuth_and_range_is_the_same_as_by_target(atlas: Atlas) -> None:
    """The bearing form the preview reports for a target gives the same warned list."""
    by_target = preview(draft_of(draft_body()), atlas).summary()
    aim = by_target["aim"]
    by_bearing = preview(draft_of(draft_body(aim={
        "azimuth_deg": aim["azimuth_deg"], "range_km": aim["range_km"]})), atlas).summary()
    assert by_bearing["detections"][0]["shelter"] == by_target["detections"][0]["shelter"]
    assert by_bearing["aim"]["lat"] == pytest.approx(41.5, abs=0.02)


@pytest.mark.parametrize(("changes", "field"), [
    ({"site": "atlantis"}, "unknown launch site"),
    ({"aim": {"target": {"lat": 41.5, "lon": 146.0}, "range_km": 100}}, "aim"),
    ({"aim": {"azimuth_deg": 90}}, "aim"),
    ({"aim": {"target": {"lat": 95, "lon": 146.0}}}, "aim.target.lat"),
    ({"actions": [{"at": "00:01:00", "action": "cancel"}]}, "actions[0].at"),
    ({"updates": [{"at": "soon"}]}, "updates.0.at"),
    ({"status": "actual"}, "status"),
    ({"event_id": "no spaces"}, "event_id"),
    ({"flight_min": 0}, "flight_min"),
    ({"aim": {"target": {"lat": 40.858, "lon": 129.686}}}, "impact point equals the launch"),
    ({"launch": {"lat": 40.0, "lon": 129.0, "time": "2025-01-01T10:00:00"}}, "launch.time"),
])
def test_a_bad_draft_is_refused_naming_the_field(atlas: Atlas, changes: dict[str, Any],
                                                 field: str) -> None:
    """Every refusal is an InputError whose problems name what is wrong."""
    with pytest.raises(InputError) as caught:
        preview(draft_of(draft_body(**changes)), atlas)
    assert any(field in problem for problem in caught.value.problems), caught.value.problems


@pytest.mark.parametrize("name", ["../x", "a/b", "", ".hidden", "x" * 90, "a b"])
def test_a_file_name_is_a_plain_name(name: str) -> None:
    """Saving never leaves the builder's folder."""
    with pytest.raises(InputError):
        file_name(name)
    assert file_name("drill-1") == "drill-1.yaml"
    assert file_name("drill.yml") == "drill.yml"


@pytest.mark.parametrize(("seconds", "text"), [(0, "00:00:00"), (120, "00:02:00"),
                                               (90.5, "00:01:30.5"), (3725, "01:02:05")])
def test_offsets_are_written_as_the_scenario_reads_them(seconds: float, text: str) -> None:
    """Offsets go to the file as HH:MM:SS."""
    assert offset_text(seconds) == text


@pytest.mark.parametrize("where", SITES, ids=[s.key for s in SITES])
def test_a_click_on_the_map_is_the_point_drawn_there(where: Any) -> None:
    """`locate` inverts the map's projection: each launch site's pixel gives it back."""
    x, y = layout().point(where.lon, where.lat)
    lat, lon = locate(x, y) or (None, None)
    assert lat == pytest.approx(where.lat, abs=1e-6)
    assert lon == pytest.approx(where.lon, abs=1e-6)
    assert locate(-10.0, -10.0) is None


def test_inset_clicks_land_in_the_inset() -> None:
    """A click in the Okinawa inset is a point near Okinawa, not in the main frame."""
    x, y = layout().point(127.68, 26.21)  # Naha
    lat, lon = locate(x, y) or (0.0, 0.0)
    assert lat == pytest.approx(26.21, abs=1e-6)
    assert lon == pytest.approx(127.68, abs=1e-6)
