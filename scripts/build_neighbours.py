"""Build alertsim/data/neighbours.geojson from the npm package world-atlas@2.0.2.

Run through `scripts/build-neighbours`. world-atlas (ISC licence) redistributes Natural
Earth's 1:50m Admin 0 countries (version 4.1.0, public domain) as TopoJSON. Steps:
1. `npm pack world-atlas@2.0.2` into a temporary folder (or use --package-dir).
2. Decode `countries-50m.json` (quantised, delta-encoded arcs) for the countries near
   Japan the map draws (COUNTRIES).
3. Clip each to BOX (the map's frames and a margin), simplify to SIMPLIFY_DEG, drop
   islands smaller than MIN_AREA_DEG2, round to ROUND_DIGITS.
4. The islands Japan calls the Northern Territories (Natural Earth puts them under Russia)
   are written as their own feature, `northern-territories`: the map draws them as land
   with no country's colour. The prefecture atlas does not hold them (PROVENANCE.md).

Only land is kept: no borders, no names on the map. Output: one Feature per country,
properties {"key", "name_en", "name_ja"}.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import tarfile
import tempfile
from pathlib import Path
from typing import Any

import shapely
from shapely.geometry import MultiPolygon, Polygon, box, mapping
from shapely.ops import unary_union

PACKAGE = "world-atlas@2.0.2"
MEMBER = "package/countries-50m.json"
# Natural Earth name -> (key, English, Japanese)
COUNTRIES = {
    "Russia": ("russia", "Russia", "ロシア"),
    "China": ("china", "China", "中国"),
    "North Korea": ("north-korea", "North Korea", "北朝鮮"),
    "South Korea": ("south-korea", "South Korea", "韓国"),
    "Taiwan": ("taiwan", "Taiwan", "台湾"),
}
BOX = box(112.0, 18.0, 165.0, 56.0)
NORTHERN_TERRITORIES = box(145.3, 43.2, 148.95, 45.6)  # Habomai, Shikotan, Kunashiri, Etorofu
SIMPLIFY_DEG = 0.01
MIN_AREA_DEG2 = 0.0004  # about 4 km2 at these latitudes
ROUND_DIGITS = 3
DATA_DIR = Path(__file__).resolve().parent.parent / "alertsim" / "data"


def fetch_topology(package_dir: Path | None) -> dict[str, Any]:
    """The TopoJSON document, from an unpacked package or a fresh `npm pack`."""
    if package_dir is not None:
        loaded: dict[str, Any] = json.loads((package_dir / "countries-50m.json").read_text())
        return loaded
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(["npm", "pack", PACKAGE, "--silent"], cwd=tmp, check=True,
                       stdout=subprocess.DEVNULL)
        tarball = next(Path(tmp).glob("*.tgz"))
        with tarfile.open(tarball) as tar:
            member = tar.extractfile(MEMBER)
            assert member is not None, f"{MEMBER} missing from {tarball.name}"
            fetched: dict[str, Any] = json.loads(member.read())
            return fetched


def decode_arcs(topology: dict[str, Any]) -> list[list[tuple[float, float]]]:
    """Every arc in degrees (TopoJSON's quantised arcs are deltas from the previous point)."""
    (sx, sy), (tx, ty) = topology["transform"]["scale"], topology["transform"]["translate"]
    arcs = []
    for arc in topology["arcs"]:
        x = y = 0
        points = []
        for dx, dy in arc:
            x, y = x + dx, y + dy
            points.append((x * sx + tx, y * sy + ty))
        arcs.append(points)
    return arcs


def ring(indexes: list[int], arcs: list[list[tuple[float, float]]]) -> list[tuple[float, float]]:
    """A ring from its arcs; a negative index (~i) is arc i reversed."""
    points: list[tuple[float, float]] = []
    for index in indexes:
        arc = arcs[index] if index >= 0 else arcs[~index][::-1]
        points.extend(arc if not points else arc[1:])
    return points


def geometry(geom: dict[str, Any], arcs: list[list[tuple[float, float]]]) -> MultiPolygon:
    polygons = geom["arcs"] if geom["type"] == "MultiPolygon" else [geom["arcs"]]
    return MultiPolygon([Polygon(ring(p[0], arcs), [ring(h, arcs) for h in p[1:]])
                         for p in polygons])


def cleaned(geom: shapely.Geometry) -> MultiPolygon:
    """Valid land clipped, simplified, small islands dropped, rounded."""
    simple = shapely.simplify(geom.intersection(BOX), SIMPLIFY_DEG, preserve_topology=True)
    parts = [p for p in getattr(simple, "geoms", [simple])
             if isinstance(p, Polygon) and p.area >= MIN_AREA_DEG2]
    rounded = shapely.set_precision(MultiPolygon(parts), 10 ** -ROUND_DIGITS)
    polygons = [p for p in getattr(rounded, "geoms", [rounded]) if isinstance(p, Polygon)]
    return MultiPolygon(polygons)


def feature(key: str, name_en: str, name_ja: str, land: MultiPolygon) -> dict[str, Any]:
    return {"type": "Feature", "properties": {"key": key, "name_en": name_en,
                                              "name_ja": name_ja},
            "geometry": mapping(land)}


def build(package_dir: Path | None) -> Path:
    topology = fetch_topology(package_dir)
    arcs = decode_arcs(topology)
    features = []
    territories = []
    for geom in topology["objects"]["countries"]["geometries"]:
        name = geom.get("properties", {}).get("name")
        if name not in COUNTRIES:
            continue
        land = shapely.make_valid(geometry(geom, arcs)).intersection(BOX)
        if name == "Russia":
            territories.append(land.intersection(NORTHERN_TERRITORIES))
            land = land.difference(NORTHERN_TERRITORIES)
        features.append(feature(*COUNTRIES[name], cleaned(land)))
    features.append(feature("northern-territories", "Northern Territories", "北方領土",
                            cleaned(unary_union(territories))))
    out = DATA_DIR / "neighbours.geojson"
    doc = {"type": "FeatureCollection",
           "source": f"npm {PACKAGE} countries-50m.json (Natural Earth 1:50m, public domain)",
           "features": sorted(features, key=lambda f: f["properties"]["key"])}
    out.write_text(json.dumps(doc, ensure_ascii=False, separators=(",", ":")), "utf-8")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--package-dir", type=Path,
                        help="an unpacked world-atlas package (skips npm pack)")
    out = build(parser.parse_args().package_dir)
    print(f"wrote {out} ({out.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
