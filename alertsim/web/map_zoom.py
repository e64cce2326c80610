"""A zoomed map of the warned area: the prefectures named, cropped to their bounding box and
drawn at a scale of their own (no insets), with the land of every other prefecture inside
the box and the overlay (corridor, track, launch, impact) clipped to it.

On the full map a warned Okinawa is a few pixels in an inset; here it fills the figure.
Same page contract and classes as the full map (`alertsim.web.map`): one
`<g class="prefecture" data-code data-state>` per prefecture in view, with its path and a
`<title>`, labels as `<text class="pref-label">`, so MAP_CSS colours it.

Projection: the main frame's (`layout().main.to_px`, Lambert conformal conic, linear in
projected metres outside the frame too), then scaled, so shapes look as they do on the map.
A prefecture's islands drawn in another frame of the full map than its largest polygon
(Kagoshima's Amami, Tokyo's Ogasawara) do not widen the box; drawn in view, they still show.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from html import escape

import numpy as np
import shapely
from numpy.typing import NDArray
from shapely.affinity import affine_transform
from shapely.geometry import MultiPolygon, Polygon
from shapely.geometry.base import BaseGeometry

from alertsim.data import load_atlas
from alertsim.web.geometry import layout, path_of
from alertsim.web.map import MapOverlay, TrackOverlay

__all__ = ["ZOOM_CSS", "ZoomBox", "render_zoom_svg", "zoom_box"]

ZOOM_WIDTH_PX = 900.0  # the figure's width in its own pixels (its viewBox)
MIN_SPAN_PX = 70.0  # the smallest box side, in full-map pixels (about 1.8 degrees)
PAD = 0.15  # margin around the warned land, as a share of the box's larger side
MAX_ASPECT = 0.9  # height / width at most: a taller box is widened
SIMPLIFY_PX = 0.6  # in the figure's pixels
LABEL_MIN_AREA = 1500.0  # a neighbour is named when this much of it shows (figure px^2)
FloatArray = NDArray[np.float64]
ZOOM_CSS = """
.alertsim-map.zoom .pref-label { font-size: 15px; stroke-width: 3px; }
.alertsim-map.zoom .prefecture path { stroke-width: 0.8; }
.alertsim-map.zoom .track { stroke-width: 2; }
"""


@dataclass(frozen=True)
class ZoomBox:
    """The area shown, in full-map pixels (main frame), and the figure's scale over it."""

    left: float
    top: float
    width: float
    height: float

    @property
    def scale(self) -> float:
        return ZOOM_WIDTH_PX / self.width

    def to_figure(self, geometry: BaseGeometry) -> BaseGeometry:
        k = self.scale
        return affine_transform(geometry, [k, 0.0, 0.0, k, -self.left * k, -self.top * k])


def _to_px(coords: FloatArray) -> FloatArray:
    return layout().main.to_px(coords[:, 0], coords[:, 1])


@cache
def _projected() -> dict[str, BaseGeometry]:
    """Every prefecture's land in full-map (main frame) pixels, computed once."""
    return {p.code: shapely.transform(p.land, _to_px) for p in load_atlas().prefectures}


def _polygons(geometry: BaseGeometry) -> list[Polygon]:
    if isinstance(geometry, Polygon):
        return [geometry] if not geometry.is_empty else []
    return [g for part in getattr(geometry, "geoms", ()) for g in _polygons(part)]


def _focus(code: str) -> list[Polygon]:
    """The prefecture's land in the full map's frame that holds its largest polygon."""
    land = load_atlas().by_code[code].land
    parts = list(land.geoms) if isinstance(land, MultiPolygon) else [land]
    where = layout().frame_of

    def frame(p: Polygon) -> str:
        spot = p.representative_point()
        return where(spot.x, spot.y).frame.name

    home = frame(max(parts, key=lambda p: p.area))
    drawn = _polygons(_projected()[code])
    return [d for d, p in zip(drawn, parts, strict=True) if frame(p) == home]


def zoom_box(codes: Collection[str]) -> ZoomBox | None:
    """The box around the named prefectures' land, padded, at least MIN_SPAN_PX a side
    and never taller than MAX_ASPECT of its width; None when no code is known."""
    known = sorted(set(codes) & set(load_atlas().by_code))
    if not known:
        return None
    x0, y0, x1, y1 = MultiPolygon([p for c in known for p in _focus(c)]).bounds
    pad = PAD * max(x1 - x0, y1 - y0)
    width, height = max(x1 - x0 + 2 * pad, MIN_SPAN_PX), max(y1 - y0 + 2 * pad, MIN_SPAN_PX)
    width = max(width, height / MAX_ASPECT)
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    return ZoomBox(cx - width / 2, cy - height / 2, width, height)


def _land(box: ZoomBox, code: str, state: str, name: str, lang_name: str) -> tuple[str, str]:
    """One prefecture's group and label in the figure ('' when none of it shows)."""
    clipped = shapely.clip_by_rect(_projected()[code], box.left, box.top,
                                   box.left + box.width, box.top + box.height)
    polygons = [shapely.simplify(p, SIMPLIFY_PX, preserve_topology=True)
                for p in _polygons(box.to_figure(clipped))]
    polygons = [p for p in polygons if isinstance(p, Polygon) and not p.is_empty]
    if not polygons:
        return "", ""
    group = (f'<g class="prefecture" data-code="{code}" data-state="{escape(state)}">'
             f'<title>{code} {escape(name)}</title><path d="{path_of(polygons)}"/></g>')
    largest = max(polygons, key=lambda p: p.area)
    if state == "none" and largest.area < LABEL_MIN_AREA:
        return group, ""
    spot = largest.representative_point()
    return group, (f'<text class="pref-label" data-label="{code}" x="{spot.x:.1f}" '
                   f'y="{spot.y:.1f}">{escape(lang_name)}</text>')


def _figure_points(box: ZoomBox, coords: Sequence[tuple[float, float]]) -> FloatArray:
    px = _to_px(np.asarray(coords, dtype=np.float64))
    moved: FloatArray = (px - np.array([box.left, box.top])) * box.scale
    return moved


def _track(box: ZoomBox, track: TrackOverlay) -> str:
    """One event's corridor, track, launch and impact in the figure (clipped by the caller)."""
    eid = escape(track.event_id, quote=True)

    def points(coords: Sequence[tuple[float, float]]) -> str:
        return " ".join(f"{x:.1f},{y:.1f}" for x, y in _figure_points(box, coords))

    corridor = (f'<polygon class="corridor" points="{points(track.corridor)}"/>'
                if track.corridor else "")
    (lx, ly), (ix, iy) = _figure_points(box, [track.launch, track.impact])
    return (f'<g class="event-overlay" data-event="{eid}">{corridor}'
            f'<polyline class="track" points="{points(track.track)}"/>'
            f'<path class="launch" d="M{lx:.1f},{ly - 8:.1f}l7,13h-14z"/>'
            f'<path class="impact" d="M{ix - 7:.1f},{iy - 7:.1f}l14,14m0,-14l-14,14"/></g>')


def render_zoom_svg(states: Mapping[str, str], codes: Collection[str], *,
                    overlay: MapOverlay | None = None, element_id: str = "zoom-map",
                    lang: str = "en") -> str:
    """Inline <svg> of the area around `codes`, prefectures coloured by `states` (code ->
    map state), labels in `lang` ("ja" or "en"); '' when no code is a prefecture."""
    box = zoom_box(codes)
    if box is None:
        return ""
    lands, labels = [], []
    for pref in load_atlas().prefectures:
        name = pref.name_ja if lang == "ja" else pref.name_en
        group, label = _land(box, pref.code, states.get(pref.code, "none"),
                             f"{pref.name_ja} {pref.name_en}", name)
        lands.append(group)
        labels.append(label)
    height = box.height * box.scale
    clip = f"{escape(element_id, quote=True)}-clip"
    tracks = "".join(_track(box, t) for t in overlay.tracks) if overlay else ""
    return (f'<svg xmlns="http://www.w3.org/2000/svg" id="{escape(element_id, quote=True)}" '
            f'class="alertsim-map zoom" viewBox="0 0 {ZOOM_WIDTH_PX:.0f} {height:.0f}" '
            f'role="img" aria-label="{escape(", ".join(sorted(codes)), quote=True)}">'
            f'<defs><clipPath id="{clip}"><rect width="{ZOOM_WIDTH_PX:.0f}" '
            f'height="{height:.0f}"/></clipPath></defs>'
            f'<g class="lands">{"".join(lands)}</g>'
            f'<g class="overlay" clip-path="url(#{clip})">{tracks}</g>'
            f'<g class="labels">{"".join(labels)}</g></svg>')
