"""The 47 prefectures with land, territory (land plus 12 nautical miles) and neighbours.

An `Atlas` is built once from the package's GeoJSON (see alertsim/data/) and then only
queried. Shapes are lon/lat (WGS84). Territory = land + territorial sea (the water within
12 nautical miles of the land, not spilling over land borders); territory and the EEZ
approximation were buffered geodesically by scripts/build-prefectures, so queries here
need no projection.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import shapely
from numpy.typing import NDArray
from shapely.geometry import MultiPolygon, Point, Polygon, shape

Region = Literal["Hokkaido", "Tohoku", "Kanto", "Chubu", "Kinki", "Chugoku", "Shikoku",
                 "Kyushu-Okinawa"]
TERRITORIAL_SEA_KM = 22.224
EEZ_KM = 370.4


@dataclass(frozen=True)
class Prefecture:
    code: str
    iso: str
    name_ja: str
    name_en: str
    region: Region
    neighbours: tuple[str, ...]
    land: MultiPolygon
    territory: MultiPolygon
    official_area_km2: float
    official_area_km2_in_data: float


def _multipolygon(geojson: Mapping[str, Any]) -> MultiPolygon:
    geom = shape(dict(geojson))
    if isinstance(geom, Polygon):
        return MultiPolygon([geom])
    if not isinstance(geom, MultiPolygon):
        raise TypeError(f"expected a (Multi)Polygon, got {geom.geom_type}")
    return geom


def prefecture_from_feature(feature: Mapping[str, Any]) -> Prefecture:
    props = feature["properties"]
    return Prefecture(
        code=props["code"],
        iso=props["iso"],
        name_ja=props["name_ja"],
        name_en=props["name_en"],
        region=props["region"],
        neighbours=tuple(props["neighbours"]),
        land=_multipolygon(feature["geometry"]),
        territory=_multipolygon(props["territory"]),
        official_area_km2=float(props["official_area_km2"]),
        official_area_km2_in_data=float(props["official_area_km2_in_data"]),
    )


class Atlas:
    """Prefectures plus spatial indexes; the same answers whatever order they come in."""

    def __init__(self, prefectures: Iterable[Prefecture], eez: MultiPolygon) -> None:
        self.prefectures: tuple[Prefecture, ...] = tuple(sorted(prefectures, key=lambda p: p.code))
        codes = [p.code for p in self.prefectures]
        if len(set(codes)) != len(codes):
            raise ValueError("duplicate prefecture codes")
        self.by_code: dict[str, Prefecture] = {p.code: p for p in self.prefectures}
        self.eez = eez
        lands = [p.land for p in self.prefectures]
        for geom in (*lands, eez):
            shapely.prepare(geom)
        self._land_index = shapely.STRtree(lands)
        # Territory index: every single polygon of every territory, each owned by a
        # prefecture. One polygon an item keeps envelopes tight (Tokyo's islands span 15
        # degrees), so few candidate pairs reach the exact test.
        parts: list[shapely.Geometry] = []
        owners: list[int] = []
        for index, pref in enumerate(self.prefectures):
            for polygon in pref.territory.geoms:
                parts.append(polygon)
                owners.append(index)
        self._territory_parts = np.array(parts, dtype=object)
        shapely.prepare(self._territory_parts)
        # Convex hulls: a cheap second filter between envelopes and the exact test.
        self._territory_hulls = shapely.convex_hull(self._territory_parts)
        shapely.prepare(self._territory_hulls)
        self.territory_index = shapely.STRtree(self._territory_parts)
        self.territory_owner = np.array(owners, dtype=np.intp)

    def warm_up(self) -> None:
        """Build GEOS's lazy prepared-geometry indexes now rather than in the first decisions.

        A prepared shape builds its point locator and its segment index on first use, each
        costing up to ~0.3 ms on a large island; a long-running service pays this once at
        start-up instead of inside an alert's latency. One-shot commands skip it.
        """
        for part in self._territory_parts:
            # Touch both answers' paths: a tiny box at the envelope's corner (nearly always
            # outside), one across the boundary at a vertex, and the whole envelope.
            minx, miny, maxx, maxy = part.bounds
            x, y = part.exterior.coords[0]
            for probe in (shapely.box(minx, miny, minx + 1e-6, miny + 1e-6),
                          shapely.box(x - 1e-3, y - 1e-3, x + 1e-3, y + 1e-3),
                          shapely.box(minx, miny, maxx, maxy)):
                shapely.intersects(part, probe)

    @classmethod
    def from_geojson(cls, doc: Mapping[str, Any]) -> Atlas:
        return cls((prefecture_from_feature(f) for f in doc["features"]),
                   _multipolygon(doc["eez"]))

    def with_prefectures(self, prefectures: Iterable[Prefecture]) -> Atlas:
        """The same EEZ with another list of prefectures (e.g. a subset, or reordered)."""
        return Atlas(prefectures, self.eez)

    def territory_candidates(self, geoms: NDArray[np.object_]) -> tuple[
            NDArray[np.intp], NDArray[np.intp], NDArray[np.intp]]:
        """(geometry index, territory part index, prefecture index) of likely contacts.

        Envelopes overlap and the geometry touches the part's convex hull: a superset of
        the exact contacts, which `parts_touch` then decides.
        """
        geom_idx, part_idx = self.territory_index.query(geoms)
        near = shapely.intersects(self._territory_hulls[part_idx], geoms[geom_idx])
        geom_idx, part_idx = geom_idx[near], part_idx[near]
        return geom_idx, part_idx, self.territory_owner[part_idx]

    def parts_touch(self, parts: NDArray[np.intp],
                    geoms: NDArray[np.object_]) -> NDArray[np.bool_]:
        """Exact tests, pairwise, with the (prepared, large) territory parts first."""
        return np.asarray(shapely.intersects(self._territory_parts[parts], geoms), dtype=bool)

    def land_at(self, lon: float, lat: float) -> Prefecture | None:
        hits = self._land_index.query(Point(lon, lat), predicate="intersects")
        return self.prefectures[int(min(hits))] if len(hits) else None

    def territory_at(self, lon: float, lat: float) -> list[Prefecture]:
        hits = self.territory_index.query(Point(lon, lat), predicate="intersects")
        owners = {int(i) for i in self.territory_owner[hits]}
        return [self.prefectures[i] for i in sorted(owners)]

    def nearest_land(self, lon: float, lat: float, among: Sequence[Prefecture]) -> Prefecture:
        """Of `among`, the prefecture whose land is closest (in degrees; ties by code)."""
        point = Point(lon, lat)
        return min(among, key=lambda p: (p.land.distance(point), p.code))

    def in_eez(self, lon: float, lat: float) -> bool:
        return bool(self.eez.intersects(Point(lon, lat)))
