"""Where a track's launch and impact markers are drawn in one frame, always inside it.

A far impact (the Pacific, 2,000 km out) lies beyond the map's edge. In the main frame
its marker is drawn where the track leaves what the frame shows (the map's edge, or an
inset's box), as an arrow pointing on along the track, and marked `offmap`: the marker is
never cut, and the title says where the true point is. The same holds for a launch site
outside the frame. An inset draws only the markers whose point it really shows (the main
frame has the others).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import shapely
from numpy.typing import NDArray

from alertsim.web.geometry import Layout, PlacedFrame

__all__ = ["MARKER_PX", "Marker", "track_markers"]

MARKER_PX = 6.0  # how far a launch or impact marker reaches from its point
EDGE_PX = MARKER_PX + 1.5  # what a marker keeps clear of an edge (its stroke, rounding)
FloatArray = NDArray[np.float64]


@dataclass(frozen=True)
class Marker:
    x: float
    y: float
    offmap: bool  # drawn at the frame's edge, the true point lies beyond
    heading: tuple[float, float]  # unit vector along the track, outwards for offmap


def _shows(area: shapely.Geometry, points: FloatArray) -> NDArray[np.bool_]:
    """Which points have their whole marker inside `area`."""
    boxes = shapely.box(points[:, 0] - EDGE_PX, points[:, 1] - EDGE_PX,
                        points[:, 0] + EDGE_PX, points[:, 1] + EDGE_PX)
    return np.asarray(shapely.contains(area, boxes))


def _edge(area: shapely.Geometry, inside: FloatArray, outside: FloatArray) -> FloatArray:
    """The last point of the segment inside -> outside whose marker still fits (bisection)."""
    lo, hi = 0.0, 1.0
    for _ in range(24):
        mid = (lo + hi) / 2
        point = inside + (outside - inside) * mid
        if _shows(area, point[None, :])[0]:
            lo = mid
        else:
            hi = mid
    return np.asarray(inside + (outside - inside) * lo, dtype=np.float64)


def _heading(a: FloatArray, b: FloatArray) -> tuple[float, float]:
    d = b - a
    n = float(np.hypot(*d)) or 1.0
    return float(d[0] / n), float(d[1] / n)


def _end(area: shapely.Geometry, px: FloatArray, *, main: bool) -> Marker | None:
    """The marker for the track's last point (`px` runs towards it)."""
    shown = _shows(area, px)
    if shown[-1]:
        return Marker(float(px[-1, 0]), float(px[-1, 1]), False, _heading(px[-2], px[-1]))
    if not main or not shown.any():
        return None
    last = int(np.flatnonzero(shown)[-1])
    at = _edge(area, px[last], px[last + 1])
    return Marker(float(at[0]), float(at[1]), True, _heading(px[last], px[last + 1]))


def track_markers(geo: Layout, placed: PlacedFrame, track_px: FloatArray,
                  ) -> tuple[Marker | None, Marker | None]:
    """The launch and impact markers of a track (pixels in this frame, launch first)."""
    area = geo.visible(placed)
    main = placed is geo.main
    # Walked from the impact back, a launch's heading points away from the track
    return _end(area, track_px[::-1], main=main), _end(area, track_px, main=main)
