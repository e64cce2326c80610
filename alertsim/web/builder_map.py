"""The builder's map: the shared prefecture map (`web.map`), a point clicked on it back to
longitude and latitude, and a preview drawn on it (tracks, corridors, prefectures
coloured by the last message each would get)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from functools import cache

import numpy as np
from pyproj import Transformer

from alertsim.domain.detection import Detection
from alertsim.web.geometry import LCC, PlacedFrame, layout
from alertsim.web.map import MapOverlay, MapState, render_overlay_svg, track_of

__all__ = ["ELEMENT_ID", "locate", "overlay_svg", "preview_states"]

ELEMENT_ID = "builder-map"
# A prefecture's colour in the preview: the map state its last message would leave.
STAGE_STATES: dict[str, MapState] = {
    "shelter": "shelter", "imminent": "shelter", "passed": "passed", "fell_land": "fell",
    "fell_sea": "fell", "cancel": "cancelled"}


@cache
def _inverse() -> Transformer:
    return Transformer.from_crs(LCC, "EPSG:4326", always_xy=True)


def _inside(frame: PlacedFrame, x: float, y: float) -> bool:
    return (frame.left <= x <= frame.left + frame.width
            and frame.top <= y <= frame.top + frame.height)


def locate(x: float, y: float) -> tuple[float, float] | None:
    """(lat, lon) of a map pixel (the SVG's own units): an inset's point when it falls in
    an inset box, else the main frame's; None off the map."""
    geo = layout()
    frame = next((f for f in geo.insets if _inside(f, x, y)), None)
    if frame is None:
        if not _inside(geo.main, x, y):
            return None
        frame = geo.main
    metres_x = frame.x0 + (x - frame.left) / frame.px_per_m
    metres_y = frame.y1 - (y - frame.top) / frame.px_per_m
    lon, lat = _inverse().transform(np.array([metres_x]), np.array([metres_y]))
    return float(lat[0]), float(lon[0])


def overlay_svg(detections: Iterable[Detection]) -> str:
    """Every detection's track and corridor (the latest drawn last), one group per frame."""
    tracks = tuple(track_of(d) for d in detections)
    return render_overlay_svg(MapOverlay(tracks), element_id=ELEMENT_ID)


def preview_states(stages: Mapping[str, Sequence[str]]) -> dict[str, MapState]:
    """Prefecture code -> the map state its last stage leaves."""
    return {code: STAGE_STATES[got[-1]] for code, got in stages.items() if got}
