"""Hypothesis properties of `decide` over random detections aimed at Japan."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import shapely
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from pyproj import Geod
from shapely.geometry import Point

from alertsim.domain.detection import Detection
from alertsim.domain.prefectures import Atlas
from alertsim.domain.trajectory import Corridor, corridor_of, trajectory_of
from alertsim.domain.warnings import Decision, decide, first_and_last_hits
from alertsim.testing import make_detection

GEOD = Geod(ellps="WGS84")
NOW = datetime(2023, 11, 21, 13, 50, tzinfo=UTC)
FAST = settings(max_examples=60, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture])

launches = st.tuples(st.floats(33.0, 42.0), st.floats(123.0, 130.0))
impacts = st.tuples(st.floats(22.0, 46.0), st.floats(122.0, 160.0))
widths = st.floats(0.0, 150.0)
lengths = st.floats(0.0, 300.0)


def detection(launch: tuple[float, float], impact: tuple[float, float], cross: float,
              along: float) -> Detection:
    assume(abs(launch[0] - impact[0]) + abs(launch[1] - impact[1]) > 0.5)
    return make_detection(launch, impact, cross, along, flight=timedelta(minutes=12))


@FAST
@given(launches, impacts, widths, lengths, st.floats(0.0, 100.0), st.floats(0.0, 200.0))
def test_widening_never_removes_a_prefecture(
        atlas: Atlas, launch: tuple[float, float], impact: tuple[float, float], cross: float,
        along: float, more_cross: float, more_along: float) -> None:
    """A wider or longer corridor warns a superset of the prefectures."""
    narrow = decide(detection(launch, impact, cross, along), atlas, now=NOW)
    wide = decide(detection(launch, impact, cross + more_cross, along + more_along), atlas,
                  now=NOW)
    assert set(narrow.shelter) <= set(wide.shelter)


@FAST
@given(launches, impacts, widths, lengths, st.randoms(use_true_random=False))
def test_shuffling_the_prefecture_list_changes_nothing(
        atlas: Atlas, launch: tuple[float, float], impact: tuple[float, float], cross: float,
        along: float, rng: random.Random) -> None:
    """The decision does not depend on the order of the prefectures given."""
    shuffled = list(atlas.prefectures)
    rng.shuffle(shuffled)
    d = detection(launch, impact, cross, along)
    for policy in ("prefecture", "prefecture+adjacent"):
        assert decide(d, atlas.with_prefectures(shuffled), policy=policy, now=NOW) == \
            decide(d, atlas, policy=policy, now=NOW)


@FAST
@given(st.integers(0, 46), st.integers(0, 10_000), st.floats(0.0, 0.98),
       st.floats(0.0, 360.0), st.floats(300.0, 14_900.0), widths, lengths)
def test_an_impact_on_land_always_warns_that_prefecture(
        atlas: Atlas, index: int, vertex: int, fraction: float, bearing: float,
        distance_km: float, cross: float, along: float) -> None:
    """A predicted impact on a prefecture's land always warns it, for impact_area."""
    pref = atlas.prefectures[index]
    part = max(pref.land.geoms, key=lambda g: g.area)
    centre = part.representative_point()
    coords = part.exterior.coords
    vx, vy = coords[vertex % len(coords)]
    point = Point(centre.x + fraction * (vx - centre.x), centre.y + fraction * (vy - centre.y))
    assume(part.contains(point))
    lon, lat, _ = GEOD.fwd(point.x, point.y, bearing, distance_km * 1000)
    decision = decide(detection((lat, lon), (point.y, point.x), cross, along), atlas, now=NOW)
    warned = decision.warned(pref.code)
    assert warned is not None
    assert warned.reason == "impact_area"
    assert decision.impact.classification == "land"


@FAST
@given(launches, impacts, widths, lengths, st.sampled_from(["prefecture", "prefecture+adjacent"]))
def test_decisions_round_trip_through_json(
        atlas: Atlas, launch: tuple[float, float], impact: tuple[float, float], cross: float,
        along: float, policy: str) -> None:
    """model_dump_json then model_validate_json gives an equal decision."""
    decision = decide(detection(launch, impact, cross, along), atlas, policy=policy,  # type: ignore[arg-type]
                      now=NOW)
    assert Decision.model_validate_json(decision.model_dump_json()) == decision


@FAST
@given(launches, impacts, widths, lengths)
def test_adjacent_policy_is_a_superset(atlas: Atlas, launch: tuple[float, float],
                                       impact: tuple[float, float], cross: float,
                                       along: float) -> None:
    """The 2023 rule warns everything the 2018 rule does, plus only neighbours of those."""
    d = detection(launch, impact, cross, along)
    base = set(decide(d, atlas, now=NOW).shelter)
    wide = set(decide(d, atlas, policy="prefecture+adjacent", now=NOW).shelter)
    neighbours = {n for code in base for n in atlas.by_code[code].neighbours}
    assert base <= wide <= base | neighbours


def exhaustive_spans(corridor: Corridor, atlas: Atlas) -> dict[int, tuple[int, int]]:
    """First and last piece touching each prefecture, by testing every pair: the slow truth."""
    spans: dict[int, tuple[int, int]] = {}
    for index, pref in enumerate(atlas.prefectures):
        touching = [i for i, piece in enumerate(corridor.pieces)
                    if shapely.intersects(pref.territory, piece)]
        if touching:
            spans[index] = (touching[0], touching[-1])
    return spans


@FAST
@given(launches, impacts, widths, lengths)
def test_first_and_last_hits_match_an_exhaustive_search(
        atlas: Atlas, launch: tuple[float, float], impact: tuple[float, float], cross: float,
        along: float) -> None:
    """The indexed, early-stopping search finds the same first/last pieces as testing all."""
    trajectory = trajectory_of(detection(launch, impact, cross, along))
    corridor = corridor_of(trajectory, cross, along)
    assert first_and_last_hits(corridor, atlas) == exhaustive_spans(corridor, atlas)


@FAST
@given(impacts, st.floats(0.0, 360.0), st.floats(10.0, 14_900.0), st.floats(0.0, 2_000.0),
       st.floats(0.0, 5_000.0), st.floats(0.0, 1.0), st.floats(0.0, 1.0))
def test_widening_never_removes_a_prefecture_from_any_launch_site(
        atlas: Atlas, impact: tuple[float, float], bearing: float, distance_km: float,
        cross: float, along: float, more_cross: float, more_along: float) -> None:
    """The same, with launches anywhere on Earth and the widest corridors the contract
    allows: tracks across the antimeridian, over a pole, or across 42W stay consistent."""
    lon, lat, _ = GEOD.fwd(impact[1], impact[0], bearing, distance_km * 1000)
    wider_cross = min(2_000.0, cross + more_cross * (2_000.0 - cross))
    wider_along = min(5_000.0, along + more_along * (5_000.0 - along))
    narrow = decide(detection((lat, lon), impact, cross, along), atlas, now=NOW)
    wide = decide(detection((lat, lon), impact, wider_cross, wider_along), atlas, now=NOW)
    assert set(narrow.shelter) <= set(wide.shelter)
