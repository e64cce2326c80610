"""The time model and corridor geometry of a trajectory."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pytest
import shapely
from pyproj import Geod

from alertsim.domain.trajectory import (
    BOOST_MAX_S,
    STEP_KM,
    corridor_of,
    default_apogee_km,
    trajectory_of,
    unwrap_lon,
)
from alertsim.testing import DEFAULT_LAUNCH_TIME, make_detection

GEOD = Geod(ellps="WGS84")


def sohae_trajectory(minutes: float = 14.0, apogee: float | None = None):
    return trajectory_of(make_detection((39.66, 124.705), (13.64, 127.88), 100, 100,
                                        flight=timedelta(minutes=minutes), apogee_km=apogee))


def test_endpoints_and_range() -> None:
    """The track starts at the launch at launch time and ends at the impact at impact time."""
    t = sohae_trajectory()
    _, _, metres = GEOD.inv(124.705, 39.66, 127.88, 13.64)
    assert t.range_km == pytest.approx(metres / 1000)
    assert t.distance_at(0) == 0
    assert t.distance_at(t.flight_s) == pytest.approx(t.range_km)
    end = t.point_at(t.impact_time)
    assert (end.lat, end.lon) == pytest.approx((13.64, 127.88), abs=1e-6)
    assert t.point_at(DEFAULT_LAUNCH_TIME - timedelta(minutes=1)).distance_km == 0


def test_boost_then_constant_ground_speed() -> None:
    """Boost lasts 20% of the flight (max 300 s); afterwards the ground speed is constant."""
    t = sohae_trajectory()
    assert t.boost_s == pytest.approx(min(0.2 * 840, BOOST_MAX_S))
    after = [t.distance_at(s) for s in (300.0, 400.0, 500.0)]
    assert after[1] - after[0] == pytest.approx(after[2] - after[1])
    assert t.distance_at(t.boost_s / 2) < t.distance_at(t.boost_s) / 2  # accelerating


def test_time_and_distance_are_inverse() -> None:
    """seconds_at(distance_at(s)) == s over the whole flight, scalar and vectorised."""
    t = sohae_trajectory()
    seconds = np.linspace(0, t.flight_s, 57)
    back = t.seconds_at_many(np.array([t.distance_at(s) for s in seconds]))
    assert back == pytest.approx(seconds, abs=1e-6)
    assert [t.seconds_at(t.distance_at(s)) for s in seconds] == pytest.approx(seconds, abs=1e-6)


def test_altitude_peaks_at_apogee_mid_range() -> None:
    """Altitude is 0 at both ends and the apogee at half range; default is range/4 capped."""
    t = sohae_trajectory(apogee=550.0)
    assert t.altitude_at(0) == 0
    assert t.altitude_at(t.range_km / 2) == pytest.approx(550.0)
    assert t.altitude_at(t.range_km) == pytest.approx(0.0)
    assert default_apogee_km(1000) == 250
    assert default_apogee_km(12000) == 1300


def test_corridor_width_and_extension() -> None:
    """The corridor is ~2 x cross_track wide and reaches along_track past the impact."""
    t = sohae_trajectory()
    corridor = corridor_of(t, 100, 100)
    outline = corridor.outline()
    assert outline.is_valid
    mid = corridor.samples.lons.size // 2
    lon, lat, az = (float(corridor.samples.lons[mid]), float(corridor.samples.lats[mid]),
                    float(corridor.samples.azimuths[mid]))
    inside = GEOD.fwd(lon, lat, az + 90, 95_000)
    outside = GEOD.fwd(lon, lat, az + 90, 105_000)
    assert outline.contains(shapely.Point(inside[0], inside[1]))
    assert not outline.contains(shapely.Point(outside[0], outside[1]))
    assert corridor.samples.distances_km[-1] == pytest.approx(t.range_km + 100)
    assert corridor.pieces.size == corridor.samples.lons.size - 1
    union = shapely.union_all(corridor.pieces)
    assert union.area == pytest.approx(outline.area, rel=0.01)


def test_zero_width_corridor_is_the_track() -> None:
    """With no cross-track uncertainty the corridor pieces are line segments."""
    corridor = corridor_of(sohae_trajectory(), 0, 0)
    assert all(p.geom_type == "LineString" for p in corridor.pieces)


def test_antimeridian_track_is_continuous() -> None:
    """A track across 180 degrees keeps increasing longitudes (unwrapped)."""
    t = trajectory_of(make_detection((40.0, 170.0), (40.0, -170.0), 10, 10))
    samples = t.sample()
    assert np.all(np.diff(samples.lons) > 0)
    assert samples.lons[-1] == pytest.approx(190.0, abs=1e-6)
    assert unwrap_lon(-179.0, 179.0) == pytest.approx(181.0)


def test_very_short_flight_has_both_caps() -> None:
    """A 10 km flight is one piece whose outline still reaches cross_track all round."""
    t = trajectory_of(make_detection((35.0, 135.0), (35.09, 135.0), 5, 0,
                                     flight=timedelta(minutes=1)))
    corridor = corridor_of(t, 5, 0)
    assert corridor.pieces.size == 1
    piece = corridor.pieces[0]
    assert piece.is_valid
    behind = GEOD.fwd(135.0, 35.0, 180.0, 4_000)
    ahead = GEOD.fwd(135.0, 35.09, 0.0, 4_000)
    assert piece.contains(shapely.Point(behind[0], behind[1]))
    assert piece.contains(shapely.Point(ahead[0], ahead[1]))


def test_thinner_than_a_metre_is_the_line() -> None:
    """A corridor under 1 m wide is treated as the track line, not degenerate polygons."""
    corridor = corridor_of(sohae_trajectory(), 1e-290, 1e-290)
    assert all(p.geom_type == "LineString" for p in corridor.pieces)


@pytest.mark.parametrize(("along", "expect_split"), [(100.0, True), (0.0, True),  # the impact
                                                     (10_000.0, False)])
def test_samples_break_where_the_impact_area_begins(along: float, expect_split: bool) -> None:
    """The start of the impact area is a sample, so no piece straddles it; steps stay short."""
    t = sohae_trajectory()
    split = t.range_km - along
    samples = t.sample(extra_km=along, split_at_km=split)
    d = samples.distances_km
    assert d[0] == 0
    assert d[-1] == pytest.approx(t.range_km + along)
    assert np.all(np.diff(d) > 0)
    assert np.max(np.diff(d)) <= STEP_KM + 1e-9
    assert (split in d) is expect_split
    assert t.range_km in d
