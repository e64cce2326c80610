"""Which named sea a point lies in, for "fell in the ● sea" and "passed toward ●" texts.

The outlines are our own coarse hand-drawn polygons (lon, lat), good only for naming the
sea around Japan in a message: land is classified before any of this is asked, so an
outline may cross land freely. Anything not in a named sea is the Pacific Ocean.
"""

from __future__ import annotations

from dataclasses import dataclass

from shapely.geometry import Point, Polygon


@dataclass(frozen=True)
class SeaArea:
    key: str
    name_ja: str
    name_en: str


PACIFIC = SeaArea("pacific", "太平洋", "the Pacific Ocean")

# Order matters where outlines overlap: the first match wins.
_OUTLINES: tuple[tuple[SeaArea, Polygon], ...] = (
    (SeaArea("yellow_sea", "黄海", "the Yellow Sea"), Polygon([
        (117.5, 41.5), (122.5, 41.5), (126.8, 38.5), (126.8, 34.3), (125.5, 33.6),
        (121.5, 31.5), (119.0, 33.0), (117.5, 38.0)])),
    (SeaArea("east_china_sea", "東シナ海", "the East China Sea"), Polygon([
        (121.5, 31.5), (125.5, 33.6), (126.8, 34.3), (128.9, 34.2), (129.6, 33.2),
        (130.1, 31.0), (129.9, 29.5), (128.6, 27.8), (127.6, 26.4), (126.2, 25.6),
        (124.0, 24.3), (122.5, 24.0), (120.5, 24.0), (119.5, 25.5), (121.0, 28.0)])),
    (SeaArea("sea_of_japan", "日本海", "the Sea of Japan"), Polygon([
        (126.8, 34.3), (128.9, 34.2), (130.3, 33.7), (130.9, 34.0), (132.5, 35.4),
        (135.5, 35.7), (136.8, 37.4), (138.6, 37.9), (139.6, 38.8), (139.9, 40.6),
        (140.1, 41.3), (139.7, 42.4), (140.5, 43.3), (141.3, 43.8), (141.6, 45.4),
        (142.1, 46.2), (141.9, 48.5), (141.4, 52.5), (140.3, 52.5), (135.0, 44.0),
        (130.5, 42.3), (128.5, 38.5), (129.6, 35.6), (129.0, 35.0)])),
    (SeaArea("sea_of_okhotsk", "オホーツク海", "the Sea of Okhotsk"), Polygon([
        (141.6, 45.4), (142.8, 44.6), (144.5, 44.0), (145.4, 44.3), (146.5, 44.6),
        (148.5, 45.5), (151.0, 46.8), (155.5, 50.0), (156.5, 51.5), (156.0, 57.5),
        (163.0, 62.0), (140.0, 62.0), (141.4, 52.5), (141.9, 48.5), (142.1, 46.2)])),
)


def sea_area_at(lon: float, lat: float) -> SeaArea:
    point = Point(lon, lat)
    for sea, outline in _OUTLINES:
        if outline.intersects(point):
            return sea
    return PACIFIC
