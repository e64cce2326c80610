"""The prefecture map as inline SVG, shared by the live dashboard and the HTML report.

Page contract (tests and other tools read it):

    <g class="prefecture" data-code="NN" data-state="STATE">   one per prefecture, 01..47
        <path/>  <title>NN name</title>                         all its islands, every frame
    <text class="pref-label" data-label="NN">Name</text>        its visible label
    STATE in MAP_STATES: none, shelter, passed, fell, cancelled (colours in MAP_CSS)

Islands outside the main frame are drawn in insets (see `alertsim.web.geometry`). The
optional overlay (ground tracks, corridors, launch sites, impact points) is projected the
same way into every frame and clipped to it, so a corridor over Okinawa shows in the
Okinawa inset too. Each track polyline holds points equally spaced in flight time, with
`data-launch`/`data-impact` (ISO 8601): the dashboard's script moves the missile marker
along it by interpolating between them. Each event's pieces sit in their own
`<g class="event-overlay" data-event="ID">` inside each frame's `<g class="overlay">`, so a
live page replaces one event's track alone (`render_track_svg`). No network: everything
is inline.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from html import escape
from typing import Final, Literal, get_args

import numpy as np

from alertsim.domain.detection import Detection
from alertsim.domain.trajectory import corridor_of, trajectory_of
from alertsim.web.geometry import Layout, PlacedFrame, layout, prefecture_shapes

__all__ = ["MAP_CSS", "MAP_STATES", "MapOverlay", "MapState", "TrackOverlay",
           "overlay_of", "render_map_svg", "render_overlay_svg", "render_track_svg",
           "track_of"]

MapState = Literal["none", "shelter", "passed", "fell", "cancelled"]
MAP_STATES: Final[tuple[MapState, ...]] = get_args(MapState)
TRACK_POINTS = 120  # samples along a track, equally spaced in time

MAP_CSS = """
.alertsim-map { background: #dbe9f4; font-family: system-ui, sans-serif; }
.alertsim-map .prefecture path { stroke: #5b5b5b; stroke-width: 0.5; stroke-linejoin: round; }
.alertsim-map .prefecture[data-state="none"] path { fill: #efeadf; }
.alertsim-map .prefecture[data-state="shelter"] path { fill: #d62828; stroke: #6b0000; }
.alertsim-map .prefecture[data-state="passed"] path { fill: #f4a259; }
.alertsim-map .prefecture[data-state="fell"] path { fill: #7b2cbf; }
.alertsim-map .prefecture[data-state="cancelled"] path { fill: #8ab6d6; }
.alertsim-map .pref-label { font-size: 9px; fill: #222; text-anchor: middle;
  dominant-baseline: middle; paint-order: stroke; stroke: #fff; stroke-width: 2px;
  pointer-events: none; }
.alertsim-map .inset-box { fill: #dbe9f4; stroke: #555; stroke-width: 0.8; }
.alertsim-map .inset-title { font-size: 9px; fill: #333; }
.alertsim-map .corridor { fill: rgba(255, 140, 0, 0.22); stroke: #e07b00;
  stroke-width: 0.8; stroke-dasharray: 3 2; }
.alertsim-map .track { fill: none; stroke: #1d3557; stroke-width: 1.4; }
.alertsim-map .launch { fill: #1d3557; stroke: #fff; stroke-width: 0.8; }
.alertsim-map .impact { fill: none; stroke: #9d0208; stroke-width: 2; }
.alertsim-map .missile { fill: #ffd60a; stroke: #000; stroke-width: 1; }
.alertsim-legend span { display: inline-block; padding: 0 .5em; margin-right: .3em;
  border: 1px solid #555; }
.alertsim-legend .none { background: #efeadf; } .alertsim-legend .shelter { background: #d62828;
  color: #fff; } .alertsim-legend .passed { background: #f4a259; }
.alertsim-legend .fell { background: #7b2cbf; color: #fff; }
.alertsim-legend .cancelled { background: #8ab6d6; }
"""

LonLat = tuple[float, float]


@dataclass(frozen=True)
class TrackOverlay:
    """One launch: its ground track (equally spaced in time), corridor, launch and impact."""

    event_id: str
    track: tuple[LonLat, ...]
    corridor: tuple[LonLat, ...]  # outer ring; empty for a zero-width corridor
    launch: LonLat
    impact: LonLat
    launch_time: datetime
    impact_time: datetime


@dataclass(frozen=True)
class MapOverlay:
    tracks: tuple[TrackOverlay, ...] = field(default=())


def track_of(detection: Detection) -> TrackOverlay:
    """The overlay of one detection's prediction, as the decision saw it."""
    trajectory = trajectory_of(detection)
    times = np.linspace(0.0, trajectory.flight_s, TRACK_POINTS + 1)
    points = [trajectory.point_at(trajectory.launch_time + timedelta(seconds=float(t)))
              for t in times]
    corridor = corridor_of(trajectory, detection.uncertainty.cross_track_km,
                           detection.uncertainty.along_track_km)
    ring: tuple[LonLat, ...] = ()
    if not corridor.is_line:
        raw = corridor.chunk_ring(0, len(corridor.pieces) - 1)
        ring = tuple((float(x), float(y)) for x, y in raw)
    return TrackOverlay(
        event_id=detection.event_id, track=tuple((p.lon, p.lat) for p in points),
        corridor=ring, launch=(trajectory.launch_lon, trajectory.launch_lat),
        impact=(trajectory.impact_lon, trajectory.impact_lat),
        launch_time=trajectory.launch_time, impact_time=trajectory.impact_time)


def overlay_of(detections: Iterable[Detection]) -> MapOverlay:
    """One track per event: the latest sequence of each."""
    latest: dict[str, Detection] = {}
    for d in detections:
        if d.event_id not in latest or d.sequence >= latest[d.event_id].sequence:
            latest[d.event_id] = d
    return MapOverlay(tuple(track_of(d) for _, d in sorted(latest.items())))


def _points(placed: PlacedFrame, coords: Sequence[LonLat]) -> str:
    arr = np.asarray(coords, dtype=np.float64)
    px = placed.to_px(arr[:, 0], arr[:, 1])
    return " ".join(f"{x:.1f},{y:.1f}" for x, y in px)


def _track_svg(track: TrackOverlay, placed: PlacedFrame) -> list[str]:
    eid = escape(track.event_id, quote=True)
    out = []
    if track.corridor:
        out.append(f'<polygon class="corridor" data-event="{eid}" '
                   f'points="{_points(placed, track.corridor)}"/>')
    out.append(f'<polyline class="track" data-event="{eid}" '
               f'data-launch="{track.launch_time.isoformat()}" '
               f'data-impact="{track.impact_time.isoformat()}" '
               f'points="{_points(placed, track.track)}"/>')
    (lx, ly), = placed.to_px(np.array([track.launch[0]]), np.array([track.launch[1]]))
    (ix, iy), = placed.to_px(np.array([track.impact[0]]), np.array([track.impact[1]]))
    out.append(f'<path class="launch" data-event="{eid}" '
               f'd="M{lx:.1f},{ly - 6:.1f}L{lx + 5:.1f},{ly + 4:.1f}L{lx - 5:.1f},{ly + 4:.1f}Z">'
               f'<title>launch {eid}</title></path>')
    out.append(f'<path class="impact" data-event="{eid}" d="M{ix - 5:.1f},{iy - 5:.1f}'
               f'L{ix + 5:.1f},{iy + 5:.1f}M{ix - 5:.1f},{iy + 5:.1f}L{ix + 5:.1f},{iy - 5:.1f}">'
               f'<title>predicted impact {eid}</title></path>')
    out.append(f'<circle class="missile" data-event="{eid}" r="4" cx="{lx:.1f}" '
               f'cy="{ly:.1f}" visibility="hidden"/>')
    return out


MARKER_PX = 6  # how far a launch or impact marker reaches from its point


def _touches(track: TrackOverlay, placed: PlacedFrame) -> bool:
    """Whether any piece of the track can show in the frame: its pixel bounding box meets
    the frame's rectangle. Never false for a piece inside; rarely true for none."""
    coords = np.asarray([*track.track, *track.corridor, track.launch, track.impact])
    px = placed.to_px(coords[:, 0], coords[:, 1])
    (x0, y0), (x1, y1) = px.min(axis=0) - MARKER_PX, px.max(axis=0) + MARKER_PX
    return bool(x1 >= placed.left and x0 <= placed.left + placed.width
                and y1 >= placed.top and y0 <= placed.top + placed.height)


def _event_svg(track: TrackOverlay, placed: PlacedFrame) -> str:
    """One event's pieces in one frame, grouped so that a page can swap them alone. In a
    frame the track never reaches the group is empty: a live page still replaces an older
    group there, and a 50-event drill sends a quarter of the bytes."""
    eid = escape(track.event_id, quote=True)
    pieces = _track_svg(track, placed) if _touches(track, placed) else []
    return f'<g class="event-overlay" data-event="{eid}">' + "".join(pieces) + "</g>"


def _overlay_svg(overlay: MapOverlay | None, placed: PlacedFrame, clip: str) -> str:
    if overlay is None:
        return ""
    body = "".join(_event_svg(t, placed) for t in overlay.tracks)
    return (f'<g class="overlay" data-frame="{placed.frame.name}" clip-path="url(#{clip})">'
            f"{body}</g>")


def _inset_boxes(geo: Layout, element_id: str) -> tuple[str, str]:
    """The insets' background boxes and titles (below the land), and their clip paths."""
    boxes, clips = [], []
    for f in geo.insets:
        rect = (f'x="{f.left:.1f}" y="{f.top:.1f}" width="{f.width:.1f}" '
                f'height="{f.height:.1f}"')
        boxes.append(f'<rect class="inset-box" data-inset="{f.frame.name}" {rect}/>'
                     f'<text class="inset-title" x="{f.left + 4:.1f}" y="{f.top + 11:.1f}">'
                     f'{escape(f.frame.title)}</text>')
        clips.append(f'<clipPath id="{element_id}-clip-{f.frame.name}"><rect {rect}/>'
                     f'</clipPath>')
    # The main frame's overlay stops at the insets' edges: they show other places.
    holes = "".join(f"M{f.left:.1f},{f.top:.1f}h{f.width:.1f}v{f.height:.1f}h{-f.width:.1f}Z"
                    for f in geo.insets)
    clips.append(f'<clipPath id="{element_id}-clip-main"><path clip-rule="evenodd" '
                 f'd="M0,0H{geo.width:.1f}V{geo.height:.1f}H0Z{holes}"/></clipPath>')
    return "".join(boxes), "".join(clips)


def render_map_svg(states: Mapping[str, str] | None = None, *,
                   overlay: MapOverlay | None = None, element_id: str = "japan-map") -> str:
    """Inline <svg> of the 47 prefectures coloured by `states` (code -> MapState)."""
    states = states or {}
    unknown = sorted(set(states.values()) - set(MAP_STATES))
    if unknown:
        raise ValueError(f"unknown map state(s): {', '.join(unknown)}")
    geo = layout()
    boxes, clips = _inset_boxes(geo, element_id)
    lands, labels = [], []
    for shape in prefecture_shapes():
        state = states.get(shape.code, "none")
        lands.append(f'<g class="prefecture" data-code="{shape.code}" data-state="{state}">'
                     f'<title>{shape.code} {escape(shape.name_ja)} {escape(shape.name_en)}'
                     f'</title><path d="{shape.path}"/></g>')
        x, y = shape.label
        labels.append(f'<text class="pref-label" data-label="{shape.code}" x="{x:.1f}" '
                      f'y="{y:.1f}">{escape(shape.name_en)}</text>')
    return (f'<svg xmlns="http://www.w3.org/2000/svg" id="{escape(element_id, quote=True)}" '
            f'class="alertsim-map" viewBox="0 0 {geo.width:.0f} {geo.height:.0f}" '
            f'role="img" aria-label="Map of Japan\'s 47 prefectures by alert state">'
            f"<defs>{clips}</defs>{boxes}<g class=\"lands\">{''.join(lands)}</g>"
            f"{render_overlay_svg(overlay, element_id=element_id)}"
            f"<g class=\"labels\">{''.join(labels)}</g></svg>")


def render_overlay_svg(overlay: MapOverlay | None, *, element_id: str = "japan-map") -> str:
    """The overlay groups alone (one per frame; none without an overlay)."""
    geo = layout()
    return "".join(_overlay_svg(overlay, f, f"{element_id}-clip-{f.frame.name}")
                   for f in geo.frames)


def render_track_svg(track: TrackOverlay) -> dict[str, str]:
    """One event's overlay group per frame (frame name -> `<g data-event>`): what a live
    page swaps in when that event's track changes, instead of the whole overlay."""
    return {f.frame.name: _event_svg(track, f) for f in layout().frames}
