"""The 47 prefectures with land, territory (land plus 12 nautical miles) and neighbours.

An `Atlas` is built once from the package's GeoJSON (see alertsim/data/) and then only
queried. Shapes are lon/lat (WGS84). Territory = land + territorial sea (the water within
12 nautical miles of the land); the sea and the EEZ approximation were buffered
geodesically by scripts/build-prefectures, so queries here need no projection.
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
    territorial_sea: MultiPolygon
    official_area_km2: float
    official_area_km2_in_data: float

    @property
    def territory(self) -> shapely.Geometry:
        return shapely.union(self.land, self.territorial_sea)


def _multipolygon(geojson: Mapping[str, Any]) -> MultiPolygon:
    geom = shape(geojson)
    if isinstance(geom, Polygon):
        return MultiPolygon([geom])
    if not isinstance(geom, MultiPolygon):
        raise ValueError(f"expected a (Multi)Polygon, got {geom.geom_type}")
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
        territorial_sea=_multipolygon(props["territorial_sea"]),
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
        seas = [p.territorial_sea for p in self.prefectures]
        for geom in (*lands, *seas, eez):
            shapely.prepare(geom)
        self._land_index = shapely.STRtree(lands)
        # Territory index: every land and every territorial sea, each owned by a prefecture.
        self.territory_index = shapely.STRtree([*lands, *seas])
        self.territory_owner = np.tile(np.arange(len(self.prefectures)), 2)

    @classmethod
    def from_geojson(cls, doc: Mapping[str, Any]) -> Atlas:
        return cls((prefecture_from_feature(f) for f in doc["features"]),
                   _multipolygon(doc["eez"]))

    def with_prefectures(self, prefectures: Iterable[Prefecture]) -> Atlas:
        """The same EEZ with another list of prefectures (e.g. a subset, or reordered)."""
        return Atlas(prefectures, self.eez)

    def territory_hits(self, geoms: NDArray[np.object_]) -> tuple[NDArray[np.intp],
                                                                  NDArray[np.intp]]:
        """(geometry index, prefecture index) for every geometry touching a territory."""
        geom_idx, part_idx = self.territory_index.query(geoms, predicate="intersects")
        return geom_idx, self.territory_owner[part_idx]

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
