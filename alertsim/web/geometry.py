"""Prefecture outlines projected for the browser: one main frame plus insets, in SVG pixels.

Projection: Lambert conformal conic (standard parallels 30N and 42N, centred 36N 137E,
WGS84) through pyproj; one `Transformer`, built once. The main frame spans 123-149E and
28.8-46N (the Korean peninsula's launch sites included). Islands outside it are drawn in
insets, each with its own scale and place on the map:

    okinawa         Okinawa and Kagoshima's Amami islands (122.5-131.5E, 23.8-28.8N)
    ogasawara       Tokyo's Bonin and Volcano islands (140.7-142.5E, 24.0-27.9N)
    minamitorishima Tokyo's easternmost island (153.5-154.5E, 24.0-24.6N)

Those boxes choose which islands an inset holds; each inset is then sized to its islands
(their extent, INSET_PAD_PX around them and a band for its title on top), so a scatter of
small islands gets a small box. The Okinawa inset sits top left, above the launch sites of
the Korean peninsula (Sohae, Musudan-ri stay visible); the Tokyo insets bottom right, in
the open Pacific, where no track of a shipped scenario runs under them.

A polygon goes to the first inset whose box holds its representative point, else to the
main frame. Outlines are simplified after projection to SIMPLIFY_PX (shapely 2
`simplify`, preserve_topology), so every island keeps at least a few vertices however
small; the stroke keeps the smallest visible. Computed once per process (`functools.cache`).
Neighbouring countries' land (`neighbour_paths`) is drawn in every frame, cut to it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cache
from importlib import resources

import numpy as np
import shapely
from numpy.typing import NDArray
from pyproj import Transformer
from shapely.geometry import MultiPolygon, Polygon, box, shape

from alertsim.data import load_atlas

__all__ = ["Frame", "Layout", "PlacedFrame", "PrefectureShape", "layout", "neighbour_paths",
           "prefecture_shapes"]

LCC = ("+proj=lcc +lat_1=30 +lat_2=42 +lat_0=36 +lon_0=137 +x_0=0 +y_0=0 "
       "+ellps=WGS84 +units=m +no_defs")
MAIN_WIDTH_PX = 1000.0
SIMPLIFY_PX = 0.35
INSET_PAD_PX = 6.0  # room around an inset's islands
INSET_TITLE_PX = 14.0  # the band on top of an inset that holds its title
INSET_MIN_WIDTH_PX = 96.0  # wide enough for its title in either language
# An inset's island smaller than this (map pixels) is drawn as a dot this wide, so that
# its colour shows: the Ogasawara and Volcano islands are a few kilometres across.
MIN_ISLAND_PX = 3.0
FloatArray = NDArray[np.float64]


@dataclass(frozen=True)
class Frame:
    """A lon/lat box drawn at `scale` (relative to the main frame). For an inset the box
    picks its islands and `anchor` places it (map pixels): `align` (0 or 1 per axis) says
    whether the anchor is its left/top or its right/bottom corner."""

    name: str
    west: float
    south: float
    east: float
    north: float
    scale: float = 1.0
    anchor: tuple[float, float] | None = None
    align: tuple[float, float] = (0.0, 0.0)

    def holds(self, lon: float, lat: float) -> bool:
        return self.west <= lon <= self.east and self.south <= lat <= self.north


MAIN = Frame("main", 123.0, 28.8, 149.0, 46.0)
INSETS = (
    Frame("okinawa", 122.5, 23.8, 131.5, 28.8, 0.8, (4.0, 4.0)),
    Frame("ogasawara", 140.7, 24.0, 142.5, 27.9, 1.0, (996.0, 778.0), (1.0, 1.0)),
    Frame("minamitorishima", 153.5, 24.0, 154.5, 24.6, 2.0, (884.0, 778.0), (1.0, 1.0)),
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

    @property
    def rect(self) -> tuple[float, float, float, float]:
        """left, top, right, bottom in map pixels."""
        return self.left, self.top, self.left + self.width, self.top + self.height


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

    def visible(self, placed: PlacedFrame) -> shapely.Geometry:
        """The part of the map a frame shows: its rectangle, less the insets for the main."""
        return _visible(self, placed.frame.name)


@cache
def _visible(geo: Layout, name: str) -> shapely.Geometry:
    placed = next(f for f in geo.frames if f.frame.name == name)
    area: shapely.Geometry = box(*placed.rect)
    if placed is geo.main:
        area = shapely.difference(area, shapely.union_all([box(*f.rect) for f in geo.insets]))
    shapely.prepare(area)
    return area


def _island_bounds(frame: Frame) -> tuple[float, float, float, float]:
    """Projected bounds of the islands an inset holds."""
    bounds = []
    for pref in load_atlas().prefectures:
        for polygon in pref.land.geoms:
            spot = polygon.representative_point()
            if frame.holds(spot.x, spot.y):
                lons, lats = np.asarray(polygon.exterior.coords).T
                x, y = _metres(lons, lats)
                bounds.append((x.min(), y.min(), x.max(), y.max()))
    arr = np.asarray(bounds)
    return (float(arr[:, 0].min()), float(arr[:, 1].min()),
            float(arr[:, 2].max()), float(arr[:, 3].max()))


def _placed_inset(frame: Frame, main_px_per_m: float) -> PlacedFrame:
    """An inset sized to its islands, the islands centred across it, below its title."""
    x0, y0, x1, y1 = _island_bounds(frame)
    k = main_px_per_m * frame.scale
    width = max((x1 - x0) * k + 2 * INSET_PAD_PX, INSET_MIN_WIDTH_PX)
    height = (y1 - y0) * k + 2 * INSET_PAD_PX + INSET_TITLE_PX
    ax, ay = frame.anchor or (0.0, 0.0)
    left, top = ax - frame.align[0] * width, ay - frame.align[1] * height
    margin_m = (width - (x1 - x0) * k) / 2 / k
    return PlacedFrame(frame, x0 - margin_m, y1 + (INSET_PAD_PX + INSET_TITLE_PX) / k, k,
                       left, top, width, height)


@cache
def layout() -> Layout:
    x0, _, x1, y1 = _box_metres(MAIN)
    _, y0, _, _ = _box_metres(MAIN)
    k = MAIN_WIDTH_PX / (x1 - x0)
    main = PlacedFrame(MAIN, x0, y1, k, 0.0, 0.0, (x1 - x0) * k, (y1 - y0) * k)
    return Layout(main.width, main.height, main, tuple(_placed_inset(f, k) for f in INSETS))


@dataclass(frozen=True)
class PrefectureShape:
    code: str
    name_en: str
    name_ja: str
    path: str  # SVG path data, every polygon of the prefecture in every frame
    largest: Polygon  # its largest polygon in map pixels, where its name goes
    frame: str  # the frame that draws the largest polygon
    anchor: tuple[float, float]  # the point its label refers to, inside `largest`


def _ring_path(coords: FloatArray) -> str:
    points = [f"{x:.1f},{y:.1f}" for x, y in coords[:-1]]
    return "M" + "L".join(points) + "Z"


def _polygon_px(polygon: Polygon, placed: PlacedFrame, tolerance: float = SIMPLIFY_PX,
                ) -> Polygon:
    def ring(coords: Iterable[Sequence[float]]) -> FloatArray:
        arr = np.asarray(list(coords), dtype=np.float64)
        return placed.to_px(arr[:, 0], arr[:, 1])

    projected = Polygon(ring(polygon.exterior.coords),
                        [ring(hole.coords) for hole in polygon.interiors])
    simplified = shapely.simplify(projected, tolerance, preserve_topology=True)
    return simplified if isinstance(simplified, Polygon) else projected


def polygons_px(land: MultiPolygon | Iterable[Polygon]) -> list[tuple[Polygon, PlacedFrame]]:
    """Each polygon projected into the frame that draws it, then simplified."""
    geoms = land.geoms if isinstance(land, MultiPolygon) else land
    shapes = []
    for polygon in geoms:
        spot = polygon.representative_point()
        placed = layout().frame_of(spot.x, spot.y)
        drawn = _polygon_px(polygon, placed)
        x0, y0, x1, y1 = drawn.bounds
        if placed.frame.anchor is not None and max(x1 - x0, y1 - y0) < MIN_ISLAND_PX:
            drawn = drawn.centroid.buffer(MIN_ISLAND_PX / 2, quad_segs=2)
        shapes.append((drawn, placed))
    return shapes


def path_of(polygons: Iterable[Polygon]) -> str:
    parts = []
    for polygon in polygons:
        parts.append(_ring_path(np.asarray(polygon.exterior.coords)))
        parts += [_ring_path(np.asarray(h.coords)) for h in polygon.interiors]
    return "".join(parts)


@cache
def prefecture_shapes() -> tuple[PrefectureShape, ...]:
    """The 47 prefectures in code order, projected and simplified."""
    shapes = []
    for pref in load_atlas().prefectures:
        drawn = polygons_px(pref.land)
        largest, placed = max(drawn, key=lambda d: d[0].area)
        spot = largest.representative_point() if largest.area < 400 else largest.centroid
        if not largest.contains(spot):
            spot = largest.representative_point()
        shapes.append(PrefectureShape(pref.code, pref.name_en, pref.name_ja,
                                      path_of(p for p, _ in drawn), largest,
                                      placed.frame.name, (spot.x, spot.y)))
    return tuple(shapes)


def _neighbour_land() -> dict[str, list[Polygon]]:
    """The land of `alertsim/data/neighbours.geojson` by kind: `land` (other countries)
    and `northern-territories` (Japan's claim; not in the prefecture data)."""
    raw = resources.files("alertsim.data").joinpath("neighbours.geojson").read_text("utf-8")
    kinds: dict[str, list[Polygon]] = {"land": [], "northern-territories": []}
    for feature in json.loads(raw)["features"]:
        key = feature["properties"]["key"]
        land = shape(feature["geometry"])
        parts = land.geoms if isinstance(land, MultiPolygon) else [land]
        kinds[key if key in kinds else "land"] += [p for p in parts if isinstance(p, Polygon)]
    return kinds


def _cut(land: list[Polygon], placed: PlacedFrame, shown: shapely.Geometry) -> str:
    """SVG path data of `land` in one frame, cut to what it shows."""
    f = placed.frame
    near = box(f.west - 12, f.south - 12, f.east + 12, f.north + 12)
    cut = [_polygon_px(p, placed, 0.5).intersection(shown) for p in land if p.intersects(near)]
    parts = [g for c in cut for g in getattr(c, "geoms", [c]) if isinstance(g, Polygon)]
    return path_of(p for p in parts if p.area > 0.5)


@cache
def neighbour_paths() -> dict[str, dict[str, str]]:
    """Land outside the prefectures in each frame (frame name -> kind -> SVG path data),
    cut to what the frame shows (Natural Earth, see alertsim/data/PROVENANCE.md)."""
    geo = layout()
    kinds = _neighbour_land()
    return {placed.frame.name: {kind: _cut(land, placed, geo.visible(placed))
                                for kind, land in kinds.items()}
            for placed in geo.frames}
