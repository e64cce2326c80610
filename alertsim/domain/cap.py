"""Alerts as OASIS CAP 1.2 XML (namespace urn:oasis:names:tc:emergency:cap:1.2).

The JSON alert already follows CAP's element names (`messages`), so this is a mechanical
mapping plus what only XML carries:

- times (`sent`, `expires`) as `YYYY-MM-DDThh:mm:ss+hh:mm`: CAP forbids `Z` and writes UTC
  as `-00:00`;
- one `info` per language (ja-JP, then en-US), each with CAP `responseType`s for its stage;
- `references` as CAP requires: `sender,identifier,sent` triples, space-separated;
  `incidents` is the event id, so every message about one launch groups together;
- `area` keeps the JIS X 0401 and ISO 3166-2 geocodes (authoritative) and adds the
  prefecture's outline as simplified `polygon`s: its largest land parts (up to
  MAX_POLYGONS, each at least MIN_PART_SHARE of the largest, e.g. Okinawa's main island,
  Miyako and Yaeyama), each cut to at most POINTS_PER_POLYGON "lat,lon" points, first ==
  last. National messages have no polygon;
- a `note` saying that this is a simulation (CAP's place for an exercise's purpose).

Pure: no I/O. `CapRenderer(atlas).render(alert)` gives the UTF-8 document.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Final

from shapely.geometry import MultiPolygon, Polygon

from alertsim.domain.messages import Alert, Area, Info
from alertsim.domain.prefectures import Atlas
from alertsim.domain.vocabulary import Stage

__all__ = [
    "CAP_CONTENT_TYPE",
    "CAP_NAMESPACE",
    "MAX_POLYGONS",
    "POINTS_PER_POLYGON",
    "CapRenderer",
    "cap_time",
    "outline_polygons",
    "render_cap",
]

CAP_NAMESPACE: Final = "urn:oasis:names:tc:emergency:cap:1.2"
CAP_CONTENT_TYPE: Final = "application/cap+xml"
MAX_POLYGONS: Final = 6
POINTS_PER_POLYGON: Final = 48  # the closing point included
MIN_PART_SHARE: Final = 0.05  # of the largest part's area: smaller islets are left out
_FIRST_TOLERANCE_DEG: Final = 0.002
_MAX_STEPS: Final = 40  # 0.002 deg * 1.5**40: far coarser than any prefecture

# CAP responseType per stage: what a person should do now.
RESPONSES: Final[dict[Stage, tuple[str, ...]]] = {
    "shelter": ("Shelter",),
    "imminent": ("Shelter",),
    "fell_land": ("Shelter", "Avoid"),  # stay inside; keep away from fallen objects
    "passed": ("Avoid",),
    "fell_sea": ("Avoid",),
    "cancel": ("AllClear",),
    "national": ("None",),
}
_SENDER_NAME: Final = {
    "ja-JP": "alertsim シミュレーター（公式の警報ではありません）",
    "en-US": "alertsim simulator (not an official alert)",
}


def cap_time(moment: datetime) -> str:
    """A CAP 1.2 date-time: whole seconds and a numeric offset, UTC as -00:00, never Z."""
    offset = moment.utcoffset()
    if offset is None:
        raise ValueError(f"CAP times need an offset: {moment.isoformat()}")
    text = moment.replace(microsecond=0, tzinfo=None).isoformat(timespec="seconds")
    if offset == timedelta(0):
        return f"{text}-00:00"
    sign = "+" if offset > timedelta(0) else "-"
    minutes = abs(int(offset.total_seconds())) // 60
    return f"{text}{sign}{minutes // 60:02d}:{minutes % 60:02d}"


def _ring_text(polygon: Polygon) -> str | None:
    """CAP polygon text of an exterior ring: "lat,lon" pairs, first == last, >= 4 points."""
    points: list[str] = []
    for lon, lat in polygon.exterior.coords:
        pair = f"{lat:.4f},{lon:.4f}"
        if not points or points[-1] != pair:
            points.append(pair)
    if points[0] != points[-1]:
        points.append(points[0])
    return " ".join(points) if len(set(points)) >= 3 and len(points) >= 4 else None


def _simplified(part: Polygon, budget: int) -> Polygon:
    """The part's outline (holes dropped) with at most `budget` points, coarsening stepwise."""
    shell = Polygon(part.exterior)
    tolerance = _FIRST_TOLERANCE_DEG
    simple = shell
    for _ in range(_MAX_STEPS):
        if len(simple.exterior.coords) <= budget:
            return simple
        candidate = shell.simplify(tolerance, preserve_topology=True)
        if isinstance(candidate, Polygon) and not candidate.is_empty:
            simple = candidate
        tolerance *= 1.5
    hull = shell.convex_hull
    return hull if isinstance(hull, Polygon) and len(hull.exterior.coords) <= budget else simple


def outline_polygons(land: MultiPolygon, *, max_polygons: int = MAX_POLYGONS,
                     budget: int = POINTS_PER_POLYGON) -> tuple[str, ...]:
    """CAP polygons for a prefecture's land: its largest parts, each simplified."""
    parts = sorted(land.geoms, key=lambda p: (-p.area, p.bounds))
    if not parts:
        return ()
    keep = [p for p in parts if p.area >= MIN_PART_SHARE * parts[0].area][:max_polygons]
    rings = (_ring_text(_simplified(p, budget)) for p in keep)
    return tuple(r for r in rings if r is not None)


def _add(parent: ET.Element, name: str, text: str | None = None) -> ET.Element:
    element = ET.SubElement(parent, f"{{{CAP_NAMESPACE}}}{name}")
    if text is not None:
        element.text = text
    return element


def _pairs(parent: ET.Element, name: str, pairs: Sequence[tuple[str, str]]) -> None:
    for value_name, value in pairs:
        element = _add(parent, name)
        _add(element, "valueName", value_name)
        _add(element, "value", value)


def _area(parent: ET.Element, area: Area, polygons: Sequence[str]) -> None:
    element = _add(parent, "area")
    _add(element, "areaDesc", area.areaDesc)
    for polygon in polygons:
        _add(element, "polygon", polygon)
    _pairs(element, "geocode", [(g.valueName, g.value) for g in area.geocode])


def _info(parent: ET.Element, info: Info, stage: Stage, polygons: Sequence[str]) -> None:
    element = _add(parent, "info")
    _add(element, "language", info.language)
    for category in info.category:
        _add(element, "category", category)
    _add(element, "event", info.event)
    for response in RESPONSES[stage]:
        _add(element, "responseType", response)
    for name, value in (("urgency", info.urgency), ("severity", info.severity),
                        ("certainty", info.certainty), ("expires", cap_time(info.expires)),
                        ("senderName", _SENDER_NAME[info.language]),
                        ("headline", info.headline), ("description", info.description),
                        ("instruction", info.instruction)):
        _add(element, name, value)
    _pairs(element, "parameter", [(p.valueName, p.value) for p in info.parameter])
    for area in info.area:
        _area(element, area, polygons)


def _note(alert: Alert) -> str:
    return (f"{alert.status} message from the alertsim simulator: not an official J-Alert "
            f"alert. Event {alert.alertsim.event_id}, stage {alert.stage}.")


def render_cap(alert: Alert, polygons: Sequence[str] = ()) -> bytes:
    """The alert as a CAP 1.2 XML document (UTF-8, with declaration).

    `polygons` outline the alert's prefecture (`outline_polygons`); none for national.
    """
    root = ET.Element(f"{{{CAP_NAMESPACE}}}alert")
    for name, value in (("identifier", alert.identifier), ("sender", alert.sender),
                        ("sent", cap_time(alert.sent)), ("status", alert.status),
                        ("msgType", alert.msgType), ("scope", alert.scope)):
        _add(root, name, value)
    for code in alert.code:
        _add(root, "code", code)
    _add(root, "note", _note(alert))
    if alert.references:
        _add(root, "references", " ".join(alert.references))
    _add(root, "incidents", alert.alertsim.event_id)
    shapes = polygons if alert.prefecture is not None else ()
    for info in alert.info:
        _info(root, info, alert.stage, shapes)
    ET.indent(root)
    body: bytes = ET.tostring(root, encoding="utf-8", xml_declaration=True,
                              default_namespace=CAP_NAMESPACE)
    return body + b"\n"


@dataclass
class CapRenderer:
    """Renders alerts as CAP with the atlas's prefecture outlines (computed once each)."""

    atlas: Atlas
    _outlines: dict[str, tuple[str, ...]] = field(default_factory=dict, repr=False)

    def polygons(self, code: str | None) -> tuple[str, ...]:
        if code is None or code not in self.atlas.by_code:
            return ()
        if code not in self._outlines:
            self._outlines[code] = outline_polygons(self.atlas.by_code[code].land)
        return self._outlines[code]

    def render(self, alert: Alert) -> bytes:
        return render_cap(alert, self.polygons(alert.prefecture))

    def outlines(self) -> Mapping[str, tuple[str, ...]]:
        """Every prefecture's polygons (for checks and documentation)."""
        return {p.code: self.polygons(p.code) for p in self.atlas.prefectures}
