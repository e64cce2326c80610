"""Launch plus prediction -> a time-stamped ground track and its uncertainty corridor.

Ground track: the WGS84 geodesic from the launch point to the predicted impact (pyproj
`Geod`), extended by `along_track_km` beyond the impact for the corridor.

Time model (documented in README, "Trajectory model"): the flight time T runs from launch
to `impact_time`. A boost phase of BOOST_FRACTION * T (at most BOOST_MAX_S seconds) has
constant ground acceleration from rest; the rest of the flight has the constant ground
speed reached at burn-out. This gives the closed form below, continuous and strictly
increasing, so every point of the track has one time and every time one point. Beyond the
impact (the along-track extension) time carries on at the same speed. Altitude follows
a parabola over the ground fraction, h = 4 H x (1 - x), with H the given apogee or, when
absent, a minimum-energy estimate of a quarter of the range (capped at DEFAULT_APOGEE_CAP_KM).
Altitude never changes a decision: J-Alert warns whatever the height.

Longitudes along a track are expressed in [JAPAN_LON - 180, JAPAN_LON + 180), the
longitudes of the prefecture shapes (122-154E) plus or minus half a turn, so a track
across the antimeridian stays one line wherever it was launched. The one break is at 42W,
the meridian opposite Japan, at least 5,000 km from any Japanese territory; a corridor
piece spanning it is left out (`Corridor.pieces` holds an empty polygon there).
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
import shapely
from numpy.typing import NDArray
from pyproj import Geod

from alertsim.domain.detection import Detection

GEOD = Geod(ellps="WGS84")
BOOST_FRACTION = 0.2
BOOST_MAX_S = 300.0
DEFAULT_APOGEE_CAP_KM = 1_300.0
# Longest piece of track. Between samples the corridor's edges are straight in lon/lat,
# which strays from the geodesic offset by tens of metres at 40 km (the territorial sea
# is 22 km wide); windows are whole pieces, about 10 s of flight. 20 km cost 1.3x the
# decision time for the same shelter sets on 1,000 random detections.
STEP_KM = 40.0
CAP_SEGMENTS = 8
MIN_WIDTH_KM = 0.001
JAPAN_LON = 138.0

FloatArray = NDArray[np.float64]


@dataclass(frozen=True)
class TrackPoint:
    time: datetime
    lon: float
    lat: float
    alt_km: float
    distance_km: float


@dataclass(frozen=True)
class Trajectory:
    launch_lon: float
    launch_lat: float
    launch_time: datetime
    impact_lon: float  # in [JAPAN_LON - 180, JAPAN_LON + 180)
    impact_lat: float
    impact_time: datetime
    azimuth_deg: float
    range_km: float
    apogee_km: float

    @property
    def flight_s(self) -> float:
        return (self.impact_time - self.launch_time).total_seconds()

    @property
    def boost_s(self) -> float:
        return min(BOOST_FRACTION * self.flight_s, BOOST_MAX_S)

    @property
    def _accel(self) -> float:
        """Ground acceleration during boost, km/s^2, fixed by range and flight time."""
        tb = self.boost_s
        return self.range_km / (tb * (self.flight_s - tb / 2.0))

    @property
    def cruise_speed_kms(self) -> float:
        return self._accel * self.boost_s

    def distance_at(self, seconds: float) -> float:
        """Ground distance (km) flown `seconds` after launch (clamped at 0)."""
        t = max(seconds, 0.0)
        tb = self.boost_s
        if t <= tb:
            return self._accel * t * t / 2.0
        return self._accel * tb * tb / 2.0 + self.cruise_speed_kms * (t - tb)

    def seconds_at(self, distance_km: float) -> float:
        """Inverse of distance_at: seconds after launch when the track reaches a distance."""
        d = max(distance_km, 0.0)
        tb = self.boost_s
        boost_km = self._accel * tb * tb / 2.0
        if d <= boost_km:
            return math.sqrt(2.0 * d / self._accel)
        return tb + (d - boost_km) / self.cruise_speed_kms

    def seconds_at_many(self, distances_km: FloatArray) -> FloatArray:
        tb = self.boost_s
        boost_km = self._accel * tb * tb / 2.0
        d = np.maximum(distances_km, 0.0)
        boost = np.sqrt(2.0 * np.minimum(d, boost_km) / self._accel)
        cruise = tb + (d - boost_km) / self.cruise_speed_kms
        return np.where(d <= boost_km, boost, cruise)

    def altitude_at(self, distance_km: float) -> float:
        x = min(max(distance_km / self.range_km, 0.0), 1.0)
        return 4.0 * self.apogee_km * x * (1.0 - x)

    def point_at(self, when: datetime) -> TrackPoint:
        """Where the object is (ground point and altitude) at `when`, clamped to the flight."""
        seconds = min(max((when - self.launch_time).total_seconds(), 0.0), self.flight_s)
        d = self.distance_at(seconds)
        lon, lat, _ = GEOD.fwd(self.launch_lon, self.launch_lat, self.azimuth_deg, d * 1000.0)
        return TrackPoint(self.launch_time + timedelta(seconds=seconds),
                          unwrap_lon(float(lon), JAPAN_LON), float(lat),
                          self.altitude_at(d), d)

    def sample(self, extra_km: float = 0.0, step_km: float = STEP_KM,
               split_at_km: float | None = None) -> TrackSamples:
        """Points along the geodesic every ~step_km, past the impact by extra_km.

        The impact is always a sample, and so is `split_at_km` when it falls inside the
        flight: pieces then never straddle it (the decision uses it for the start of the
        impact area).
        """
        stops = [0.0, self.range_km]
        if split_at_km is not None and 0.0 < split_at_km < self.range_km:
            stops.insert(1, split_at_km)
        if extra_km > 0:
            stops.append(self.range_km + extra_km)
        distances = _stations(stops, step_km)
        n = len(distances)
        lons, lats, azimuths = GEOD.fwd(np.full(n, self.launch_lon), np.full(n, self.launch_lat),
                                        np.full(n, self.azimuth_deg), distances * 1000.0,
                                        return_back_azimuth=False)
        return TrackSamples(distances, unwrap_lon_array(np.asarray(lons), JAPAN_LON),
                            np.asarray(lats), np.asarray(azimuths),
                            self.seconds_at_many(distances))


def _stations(stops: list[float], step_km: float) -> FloatArray:
    """Distances from stop to stop, each stretch cut into equal steps of at most step_km."""
    stretches = list(itertools.pairwise(stops))
    pieces = [max(1, math.ceil((b - a) / step_km)) for a, b in stretches]
    out = np.empty(sum(pieces) + 1)
    at = 0
    for (a, b), count in zip(stretches, pieces, strict=True):
        out[at:at + count] = a + (b - a) * np.arange(count) / count
        at += count
    out[at] = stops[-1]
    return out


@dataclass(frozen=True)
class TrackSamples:
    distances_km: FloatArray
    lons: FloatArray
    lats: FloatArray
    azimuths: FloatArray  # forward azimuth of the track at each sample
    seconds: FloatArray  # after launch


@dataclass(frozen=True)
class Corridor:
    """The track buffered by cross_track_km, geodesically, as pieces between samples.

    Piece i spans samples i..i+1 and the time span [seconds[i], seconds[i+1]]. The start
    cap is folded into the first piece and the end cap into the last, so the union of
    `pieces` is the whole corridor. With cross_track_km == 0 the pieces are line segments
    and `left`/`right` are the track itself.
    """

    samples: TrackSamples
    pieces: NDArray[np.object_]
    left: FloatArray  # (n, 2) lon/lat offsets to the left of each sample
    right: FloatArray
    behind: FloatArray  # half circle behind the launch, from left[0] round to right[0]
    ahead: FloatArray  # half circle past the far end, from right[-1] round to left[-1]

    @property
    def starts_s(self) -> FloatArray:
        return self.samples.seconds[:-1]

    @property
    def ends_s(self) -> FloatArray:
        return self.samples.seconds[1:]

    @property
    def end_distances_km(self) -> FloatArray:
        return self.samples.distances_km[1:]

    @property
    def is_line(self) -> bool:
        return len(self.behind) == 0

    def chunk_ring(self, first: int, last: int) -> FloatArray:
        """Outer ring (or line) of pieces first..last inclusive, caps included at the ends."""
        n_pieces = len(self.pieces)
        if self.is_line:
            return np.column_stack([self.samples.lons, self.samples.lats])[first:last + 2]
        parts = [self.behind] if first == 0 else []
        parts.append(self.right[first:last + 2])
        if last == n_pieces - 1:
            parts.append(self.ahead)
        parts.append(self.left[first:last + 2][::-1])
        parts.append(parts[0][:1])
        return np.concatenate(parts)

    def outline(self) -> shapely.Geometry:
        """The whole corridor as one geometry (for maps and tests)."""
        ring = self.chunk_ring(0, len(self.pieces) - 1)
        if self.is_line:
            return shapely.LineString(ring)
        return shapely.make_valid(shapely.Polygon(ring))


def unwrap_lon(lon: float, reference: float) -> float:
    return (lon - reference + 180.0) % 360.0 - 180.0 + reference


def unwrap_lon_array(lons: FloatArray, reference: float) -> FloatArray:
    return np.asarray((lons - reference + 180.0) % 360.0 - 180.0 + reference, dtype=np.float64)


def default_apogee_km(range_km: float) -> float:
    return min(range_km / 4.0, DEFAULT_APOGEE_CAP_KM)


def trajectory_of(detection: Detection) -> Trajectory:
    launch = detection.launch
    impact_lon, impact_lat = detection.impact_point()
    azimuth, _, metres = GEOD.inv(launch.lon, launch.lat, impact_lon, impact_lat)
    range_km = float(metres) / 1000.0
    return Trajectory(
        launch_lon=launch.lon, launch_lat=launch.lat, launch_time=launch.time,
        impact_lon=unwrap_lon(impact_lon, JAPAN_LON), impact_lat=impact_lat,
        impact_time=detection.impact_time, azimuth_deg=float(azimuth) % 360.0,
        range_km=range_km,
        apogee_km=detection.apogee_km or default_apogee_km(range_km),
    )


def _outline_points(samples: TrackSamples, width_m: float) -> tuple[FloatArray, FloatArray,
                                                                     FloatArray, FloatArray]:
    """Left and right offsets of every sample and the two end caps, in one Geod call.

    behind: half circle round the launch from left[0] to right[0];
    ahead: half circle past the far end from right[-1] to left[-1].
    """
    n = len(samples.lons)
    fan = np.linspace(0.0, 180.0, CAP_SEGMENTS + 1)
    first_az, last_az = float(samples.azimuths[0]), float(samples.azimuths[-1])
    lons = np.concatenate([samples.lons, samples.lons, np.full(fan.size, samples.lons[0]),
                           np.full(fan.size, samples.lons[-1])])
    lats = np.concatenate([samples.lats, samples.lats, np.full(fan.size, samples.lats[0]),
                           np.full(fan.size, samples.lats[-1])])
    azimuths = np.concatenate([samples.azimuths - 90.0, samples.azimuths + 90.0,
                               (first_az - 90.0) - fan, (last_az + 90.0) - fan])
    out_lons, out_lats, _ = GEOD.fwd(lons, lats, azimuths, np.full(lons.size, width_m),
                                     return_back_azimuth=False)
    points = np.column_stack([unwrap_lon_array(np.asarray(out_lons), JAPAN_LON),
                              np.asarray(out_lats)])
    return points[:n], points[n:2 * n], points[2 * n:2 * n + fan.size], points[2 * n + fan.size:]


def corridor_of(trajectory: Trajectory, cross_track_km: float,
                along_track_km: float) -> Corridor:
    """Buffer the track, extended by along_track_km past the impact, by cross_track_km.

    Pieces also break where the impact area begins, along_track_km short of the impact.
    """
    samples = trajectory.sample(extra_km=along_track_km,
                                split_at_km=trajectory.range_km - along_track_km)
    if cross_track_km < MIN_WIDTH_KM:  # thinner than a metre: degenerate quads, use the line
        coords = np.column_stack([samples.lons, samples.lats])
        segments = np.stack([coords[:-1], coords[1:]], axis=1)
        lines: NDArray[np.object_] = np.asarray(shapely.linestrings(segments), dtype=object)
        nothing = np.empty((0, 2))
        return Corridor(samples, _without_wrapped(lines), coords, coords, nothing, nothing)
    left, right, behind, ahead = _outline_points(samples, cross_track_km * 1000.0)
    quads = np.stack([left[:-1], left[1:], right[1:], right[:-1], left[:-1]], axis=1)
    pieces: NDArray[np.object_] = np.asarray(shapely.polygons(quads), dtype=object)
    # The caps fold into the end pieces as one ring each (no polygon union needed):
    # behind runs left[0] -> right[0] round the back, ahead right[-1] -> left[-1].
    if len(pieces) == 1:  # a very short flight: both caps on the one piece
        pieces[0] = shapely.Polygon(np.concatenate([behind, ahead, behind[:1]]))
    else:
        pieces[0] = shapely.Polygon(np.concatenate([behind, right[1:2], left[1:2],
                                                    behind[:1]]))
        pieces[-1] = shapely.Polygon(np.concatenate([right[-2:-1], ahead, left[-2:-1],
                                                     right[-2:-1]]))
    return Corridor(samples, _without_wrapped(pieces), left, right, behind, ahead)


def _without_wrapped(pieces: NDArray[np.object_]) -> NDArray[np.object_]:
    """Empty the pieces that span more than half a turn of longitude.

    They straddle the break opposite Japan (or circle a pole), so as drawn in lon/lat they
    would stretch across the globe; the ground they stand for is at least 5,000 km from
    any Japanese territory, farther than the widest corridor allowed (2,000 km).
    """
    bounds = shapely.bounds(pieces)
    wrapped = (bounds[:, 2] - bounds[:, 0]) > 180.0
    if not wrapped.any():
        return pieces
    kept = pieces.copy()
    kept[wrapped] = shapely.Polygon()
    return kept
