"""Prefecture outlines projected for the browser: one main frame plus insets, in SVG pixels.

Projection: Lambert conformal conic (standard parallels 30N and 42N, centred 36N 137E,
WGS84) through pyproj; one `Transformer`, built once. The main frame spans 123-149E and
28.8-46N (the Korean peninsula's launch sites included). Islands outside it are drawn in
insets, each with its own scale and place on the map:

    okinawa         Okinawa and Kagoshima's Amami islands (122.5-131.5E, 23.8-28.8N)
    ogasawara       Tokyo's Bonin and Volcano islands (140.7-142.5E, 24.0-27.9N)
    minamitorishima Tokyo's easternmost island (153.5-154.5E, 24.0-24.6N)

The Okinawa inset sits top left, above the launch sites of the Korean peninsula (Sohae,
Musudan-ri stay visible); Ogasawara's bottom right, in the open Pacific.

A polygon goes to the first inset whose box holds its representative point, else to the
main frame. Outlines are simplified after projection to SIMPLIFY_PX (shapely 2
`simplify`, preserve_topology), so every island keeps at least a few vertices however
small; the stroke keeps the smallest visible. Computed once per process (`functools.cache`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cache

import numpy as np
import shapely
from numpy.typing import NDArray
from pyproj import Transformer
from shapely.geometry import MultiPolygon, Polygon

from alertsim.data import load_atlas

__all__ = ["Frame", "Layout", "PrefectureShape", "layout", "prefecture_shapes"]

LCC = ("+proj=lcc +lat_1=30 +lat_2=42 +lat_0=36 +lon_0=137 +x_0=0 +y_0=0 "
       "+ellps=WGS84 +units=m +no_defs")
MAIN_WIDTH_PX = 1000.0
SIMPLIFY_PX = 0.35
# Labels moved off their neighbours' (map pixels), where the centroids crowd.
LABEL_NUDGE = {"04": (10.0, 2.0), "06": (-8.0, 0.0), "16": (10.0, 3.0), "17": (-10.0, -2.0),
               "13": (2.0, -3.0), "14": (0.0, 2.0)}
FloatArray = NDArray[np.float64]


@dataclass(frozen=True)
class Frame:
    """A lon/lat box drawn at `scale` (relative to the main frame) with its top-left at
    `anchor` (map pixels); the main frame has no anchor."""

    name: str
    title: str
    west: float
    south: float
    east: float
    north: float
    scale: float = 1.0
    anchor: tuple[float, float] | None = None

    def holds(self, lon: float, lat: float) -> bool:
        return self.west <= lon <= self.east and self.south <= lat <= self.north


MAIN = Frame("main", "Japan", 123.0, 28.8, 149.0, 46.0)
INSETS = (
    Frame("okinawa", "Okinawa / Amami", 122.5, 23.8, 131.5, 28.8, 0.8, (4.0, 4.0)),
    Frame("ogasawara", "Ogasawara (Tokyo)", 140.7, 24.0, 142.5, 27.9, 2.0, (840.0, 430.0)),
    Frame("minamitorishima", "Minamitorishima (Tokyo)", 153.5, 24.0, 154.5, 24.6, 2.0,
          (700.0, 706.0)),
)


@cache
def _transformer() -> Transformer:
    return Transformer.from_crs("EPSG:4326", LCC, always_xy=True)


def _metres(lons: FloatArray, lats: FloatArray) -> tuple[FloatArray, FloatArray]:
    x, y = _transformer().transform(lons, lats)
    return np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)


def _box_metres(frame: Frame) -> tuple[float, float, float, float]:
    """Projected bounds of the frame's lon/lat box (its edges, densely sampled)."""
    t = np.linspace(0.0, 1.0, 64)
    lons = np.concatenate([frame.west + (frame.east - frame.west) * t,
                           frame.west + (frame.east - frame.west) * t,
                           np.full(64, frame.west), np.full(64, frame.east)])
    lats = np.concatenate([np.full(64, frame.south), np.full(64, frame.north),
                           frame.south + (frame.north - frame.south) * t,
                           frame.south + (frame.north - frame.south) * t])
    x, y = _metres(lons, lats)
    return float(x.min()), float(y.min()), float(x.max()), float(y.max())


@dataclass(frozen=True)
class PlacedFrame:
    """A frame with its affine map from projected metres to map pixels."""

    frame: Frame
    x0: float  # projected metres at the frame's left and top edges
    y1: float
    px_per_m: float
    left: float  # the frame's rectangle in map pixels
    top: float
    width: float
    height: float

    def to_px(self, lons: FloatArray, lats: FloatArray) -> FloatArray:
        x, y = _metres(lons, lats)
        return np.column_stack([self.left + (x - self.x0) * self.px_per_m,
                                self.top + (self.y1 - y) * self.px_per_m])


@dataclass(frozen=True)
class Layout:
    width: float
    height: float
    main: PlacedFrame
    insets: tuple[PlacedFrame, ...]

    @property
    def frames(self) -> tuple[PlacedFrame, ...]:
        return (self.main, *self.insets)

    def frame_of(self, lon: float, lat: float) -> PlacedFrame:
        """Where a point of land is drawn: the first inset holding it, else the main frame."""
        return next((f for f in self.insets if f.frame.holds(lon, lat)), self.main)

    def point(self, lon: float, lat: float) -> tuple[float, float]:
        xy = self.frame_of(lon, lat).to_px(np.array([lon]), np.array([lat]))[0]
        return float(xy[0]), float(xy[1])


def _placed(frame: Frame, main_px_per_m: float) -> PlacedFrame:
    x0, y0, x1, y1 = _box_metres(frame)
    k = main_px_per_m * frame.scale
    left, top = frame.anchor or (0.0, 0.0)
    return PlacedFrame(frame, x0, y1, k, left, top, (x1 - x0) * k, (y1 - y0) * k)


@cache
def layout() -> Layout:
    x0, _, x1, _ = _box_metres(MAIN)
    k = MAIN_WIDTH_PX / (x1 - x0)
    main = _placed(MAIN, k)
    return Layout(main.width, main.height, main, tuple(_placed(f, k) for f in INSETS))


@dataclass(frozen=True)
class PrefectureShape:
    code: str
    name_en: str
    name_ja: str
    path: str  # SVG path data, every polygon of the prefecture in every frame
    label: tuple[float, float]  # where its name is written (its largest polygon)


def _ring_path(coords: FloatArray) -> str:
    points = [f"{x:.1f},{y:.1f}" for x, y in coords[:-1]]
    return "M" + "L".join(points) + "Z"


def _polygon_px(polygon: Polygon, placed: PlacedFrame) -> Polygon:
    def ring(coords: Iterable[Sequence[float]]) -> FloatArray:
        arr = np.asarray(list(coords), dtype=np.float64)
        return placed.to_px(arr[:, 0], arr[:, 1])

    projected = Polygon(ring(polygon.exterior.coords),
                        [ring(hole.coords) for hole in polygon.interiors])
    simplified = shapely.simplify(projected, SIMPLIFY_PX, preserve_topology=True)
    return simplified if isinstance(simplified, Polygon) else projected


def polygons_px(land: MultiPolygon | Iterable[Polygon]) -> list[Polygon]:
    """Each polygon projected into the frame that draws it, then simplified."""
    geoms = land.geoms if isinstance(land, MultiPolygon) else land
    shapes = []
    for polygon in geoms:
        spot = polygon.representative_point()
        shapes.append(_polygon_px(polygon, layout().frame_of(spot.x, spot.y)))
    return shapes


def path_of(polygons: Iterable[Polygon]) -> str:
    parts = []
    for polygon in polygons:
        parts.append(_ring_path(np.asarray(polygon.exterior.coords)))
        parts += [_ring_path(np.asarray(h.coords)) for h in polygon.interiors]
    return "".join(parts)


@cache
def prefecture_shapes() -> tuple[PrefectureShape, ...]:
    """The 47 prefectures in code order, projected, simplified and labelled."""
    shapes = []
    for pref in load_atlas().prefectures:
        polygons = polygons_px(pref.land)
        largest = max(polygons, key=lambda p: p.area)
        spot = largest.representative_point() if largest.area < 400 else largest.centroid
        if not largest.contains(spot):
            spot = largest.representative_point()
        dx, dy = LABEL_NUDGE.get(pref.code, (0.0, 0.0))
        shapes.append(PrefectureShape(pref.code, pref.name_en, pref.name_ja,
                                      path_of(polygons), (spot.x + dx, spot.y + dy)))
    return tuple(shapes)
