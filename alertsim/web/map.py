"""The prefecture map as inline SVG, shared by the live dashboard and the HTML report.

Page contract (tests and other tools read it):

    <g class="prefecture" data-code="NN" data-state="STATE" [data-last="STATE"]>
        <path/>  <title>NN name</title>                         all its islands, every frame
    <text class="pref-label" data-label="NN" data-ja=".." data-en="..">Name</text>
    STATE in MAP_STATES: none, shelter, passed, fell, cancelled (colours in MAP_CSS)
    data-last: the state a prefecture showed before its events closed, drawn dimmed
    <g class="neighbours" data-frame="F"><path/></g>          other countries' land, per frame

Islands outside the main frame are drawn in insets (see `alertsim.web.geometry`); labels
are placed so that none overlaps another (`alertsim.web.labels`). The optional overlay
(ground tracks, corridors, launch sites, impact points) is projected the same way into
every frame and clipped to it, so a corridor over Okinawa shows in the Okinawa inset too.
Launch and impact markers are always drawn whole inside the main frame: a point beyond
its edge is marked where the track leaves it (`alertsim.web.markers`, class `offmap`).
Each track polyline holds points equally spaced in flight time, with
`data-launch`/`data-impact` (ISO 8601): the dashboard's script moves the missile marker
along it by interpolating between them. Each event's pieces sit in their own
`<g class="event-overlay" data-event="ID">` inside each frame's `<g class="overlay">`, so a
live page replaces one event's track alone (`render_track_svg`). Names come from
`alertsim/i18n/dashboard.json` in the page's language (`lang`); the overlay, sent alike to
every page, titles its markers in both. No network: everything is inline.
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
from alertsim.i18n import Lang, text
from alertsim.web.geometry import Layout, PlacedFrame, layout, neighbour_paths, prefecture_shapes
from alertsim.web.labels import Label, placed_labels
from alertsim.web.markers import MARKER_PX, Marker, track_markers

__all__ = ["MAP_CSS", "MAP_STATES", "MapOverlay", "MapState", "TrackOverlay",
           "overlay_of", "removed_track_svg", "render_map_svg", "render_overlay_svg",
           "render_track_svg", "track_of"]

MapState = Literal["none", "shelter", "passed", "fell", "cancelled"]
MAP_STATES: Final[tuple[MapState, ...]] = get_args(MapState)
TRACK_POINTS = 120  # samples along a track, equally spaced in time
AREA = "dashboard"  # the i18n catalogue of the map's words

MAP_CSS = """
.alertsim-map { background: #dbe9f4; font-family: system-ui, sans-serif; }
.alertsim-map .neighbours path { fill: #d8d5cc; stroke: #a39f93; stroke-width: 0.4; }
.alertsim-map .unmodelled path { fill: #efeadf; stroke: #5b5b5b; stroke-width: 0.5;
  stroke-dasharray: 2 1.5; }
.alertsim-map .prefecture path { stroke: #5b5b5b; stroke-width: 0.5; stroke-linejoin: round; }
.alertsim-map .prefecture[data-state="none"] path { fill: #efeadf; }
.alertsim-map .prefecture[data-state="shelter"] path { fill: #d62828; stroke: #6b0000; }
.alertsim-map .prefecture[data-state="passed"] path { fill: #f4a259; }
.alertsim-map .prefecture[data-state="fell"] path { fill: #7b2cbf; }
.alertsim-map .prefecture[data-state="cancelled"] path { fill: #8ab6d6; }
.alertsim-map .prefecture[data-state="none"][data-last="shelter"] path { fill: #eda5a5; }
.alertsim-map .prefecture[data-state="none"][data-last="passed"] path { fill: #f6d2b0; }
.alertsim-map .prefecture[data-state="none"][data-last="fell"] path { fill: #c9aee2; }
.alertsim-map .prefecture[data-state="none"][data-last="cancelled"] path { fill: #c6dbea; }
.alertsim-map .pref-label { font-size: 9px; fill: #222; text-anchor: middle;
  dominant-baseline: middle; paint-order: stroke; stroke: #fff; stroke-width: 2px;
  pointer-events: none; }
.alertsim-map .label-leader { stroke: #333; stroke-width: 0.6; pointer-events: none; }
.alertsim-map .inset-box { fill: #dbe9f4; stroke: #555; stroke-width: 0.8; }
.alertsim-map .inset-title { font-size: 9px; fill: #333; }
.alertsim-map .corridor { fill: rgba(255, 140, 0, 0.22); stroke: #e07b00;
  stroke-width: 0.8; stroke-dasharray: 3 2; }
.alertsim-map .track { fill: none; stroke: #1d3557; stroke-width: 1.4; }
.alertsim-map .launch { fill: #1d3557; stroke: #fff; stroke-width: 0.8; }
.alertsim-map .impact { fill: none; stroke: #9d0208; stroke-width: 2; }
.alertsim-map .impact.offmap, .alertsim-map .launch.offmap { fill: #9d0208; stroke: #fff;
  stroke-width: 0.8; }
.alertsim-map .missile { fill: #ffd60a; stroke: #000; stroke-width: 1; }
.alertsim-legend span { display: inline-block; padding: 0 .5em; margin-right: .3em;
  border: 1px solid #555; }
.alertsim-legend .none { background: #efeadf; } .alertsim-legend .shelter { background: #d62828;
  color: #fff; } .alertsim-legend .passed { background: #f4a259; }
.alertsim-legend .fell { background: #7b2cbf; color: #fff; }
.alertsim-legend .cancelled { background: #8ab6d6; }
.alertsim-legend .last { background: #f6d2b0; }
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


def _both(key: str, **fields: object) -> str:
    """A title in Japanese and English: the overlay is the same for every page."""
    return f"{text(AREA, key, 'ja', **fields)} / {text(AREA, key, 'en', **fields)}"


def _where(lonlat: LonLat) -> str:
    lon, lat = lonlat
    return f"{abs(lat):.1f}°{'N' if lat >= 0 else 'S'} {abs(lon):.1f}°{'E' if lon >= 0 else 'W'}"


def _marker_svg(kind: str, marker: Marker, eid: str, where: LonLat) -> str:
    x, y = marker.x, marker.y
    title = _both(f"map.{kind}", event=eid, where=_where(where))
    if marker.offmap:  # an arrow at the edge, pointing on to the true point
        title += " · " + _both("map.offmap")
        hx, hy = marker.heading
        tip, back = (x + hx * MARKER_PX, y + hy * MARKER_PX), (x - hx * 5, y - hy * 5)
        wing = (-hy * 5, hx * 5)
        d = (f"M{tip[0]:.1f},{tip[1]:.1f}L{back[0] + wing[0]:.1f},{back[1] + wing[1]:.1f}"
             f"L{back[0] - wing[0]:.1f},{back[1] - wing[1]:.1f}Z")
        return (f'<path class="{kind} offmap" data-event="{eid}" d="{d}">'
                f"<title>{escape(title)}</title></path>")
    if kind == "launch":
        d = f"M{x:.1f},{y - 6:.1f}L{x + 5:.1f},{y + 4:.1f}L{x - 5:.1f},{y + 4:.1f}Z"
    else:
        d = (f"M{x - 5:.1f},{y - 5:.1f}L{x + 5:.1f},{y + 5:.1f}"
             f"M{x - 5:.1f},{y + 5:.1f}L{x + 5:.1f},{y - 5:.1f}")
    return f'<path class="{kind}" data-event="{eid}" d="{d}"><title>{escape(title)}</title></path>'


def _track_svg(track: TrackOverlay, placed: PlacedFrame) -> list[str]:
    eid = escape(track.event_id, quote=True)
    out = []
    if track.corridor:
        out.append(f'<polygon class="corridor" data-event="{eid}" '
                   f'points="{_points(placed, track.corridor)}"/>')
    arr = np.asarray(track.track, dtype=np.float64)
    px = placed.to_px(arr[:, 0], arr[:, 1])
    out.append(f'<polyline class="track" data-event="{eid}" '
               f'data-launch="{track.launch_time.isoformat()}" '
               f'data-impact="{track.impact_time.isoformat()}" '
               f'points="{" ".join(f"{x:.1f},{y:.1f}" for x, y in px)}"/>')
    launch, impact = track_markers(layout(), placed, px)
    if launch is not None:
        out.append(_marker_svg("launch", launch, eid, track.launch))
    if impact is not None:
        out.append(_marker_svg("impact", impact, eid, track.impact))
    out.append(f'<circle class="missile" data-event="{eid}" r="4" cx="{px[0, 0]:.1f}" '
               f'cy="{px[0, 1]:.1f}" visibility="hidden"/>')
    return out


def _touches(track: TrackOverlay, placed: PlacedFrame) -> bool:
    """Whether any piece of the track can show in the frame: its pixel bounding box meets
    the frame's rectangle. Never false for a piece inside; rarely true for none."""
    coords = np.asarray([*track.track, *track.corridor, track.launch, track.impact])
    px = placed.to_px(coords[:, 0], coords[:, 1])
    (x0, y0), (x1, y1) = px.min(axis=0) - MARKER_PX, px.max(axis=0) + MARKER_PX
    return bool(x1 >= placed.left and x0 <= placed.left + placed.width
                and y1 >= placed.top and y0 <= placed.top + placed.height)


def _event_svg(track: TrackOverlay | None, placed: PlacedFrame, event_id: str) -> str:
    """One event's pieces in one frame, grouped so that a page can swap them alone. In a
    frame the track never reaches (or with no track: the event closed) the group is
    empty: a live page still replaces an older group there, and a 50-event drill sends a
    quarter of the bytes."""
    eid = escape(event_id, quote=True)
    touches = track is not None and _touches(track, placed)
    pieces = _track_svg(track, placed) if track is not None and touches else []
    return f'<g class="event-overlay" data-event="{eid}">' + "".join(pieces) + "</g>"


def _overlay_svg(overlay: MapOverlay | None, placed: PlacedFrame, clip: str) -> str:
    if overlay is None:
        return ""
    body = "".join(_event_svg(t, placed, t.event_id) for t in overlay.tracks)
    return (f'<g class="overlay" data-frame="{placed.frame.name}" clip-path="url(#{clip})">'
            f"{body}</g>")


def _inset_boxes(geo: Layout, element_id: str, lang: Lang) -> tuple[str, str]:
    """The insets' background boxes and titles (below the land), and their clip paths."""
    boxes, clips = [], []
    for f in geo.insets:
        rect = (f'x="{f.left:.1f}" y="{f.top:.1f}" width="{f.width:.1f}" '
                f'height="{f.height:.1f}"')
        key = f"map.inset.{f.frame.name}"
        boxes.append(f'<rect class="inset-box" data-inset="{f.frame.name}" {rect}/>'
                     f'<text class="inset-title" data-i18n="{key}" x="{f.left + 4:.1f}" '
                     f'y="{f.top + 11:.1f}">{escape(text(AREA, key, lang))}</text>')
        clips.append(f'<clipPath id="{element_id}-clip-{f.frame.name}"><rect {rect}/>'
                     f'</clipPath>')
    # The main frame's overlay stops at the insets' edges: they show other places.
    holes = "".join(f"M{f.left:.1f},{f.top:.1f}h{f.width:.1f}v{f.height:.1f}h{-f.width:.1f}Z"
                    for f in geo.insets)
    clips.append(f'<clipPath id="{element_id}-clip-main"><path clip-rule="evenodd" '
                 f'd="M0,0H{geo.width:.1f}V{geo.height:.1f}H0Z{holes}"/></clipPath>')
    return "".join(boxes), "".join(clips)


def _neighbours_svg(lang: Lang) -> str:
    """Other countries' land, and the Northern Territories drawn as Japan's land with no
    state (the prefecture data lacks them), titled."""
    title = escape(text(AREA, "map.northern_territories", lang))
    out = []
    for name, kinds in neighbour_paths().items():
        if kinds["land"]:
            out.append(f'<g class="neighbours" data-frame="{name}"><path d="{kinds["land"]}"/></g>')
        if kinds["northern-territories"]:
            out.append(f'<g class="unmodelled" data-frame="{name}"><title data-i18n='
                       f'"map.northern_territories">{title}</title>'
                       f'<path d="{kinds["northern-territories"]}"/></g>')
    return "".join(out)


def _label_svg(label: Label, lang: Lang) -> str:
    leader = ""
    if label.leader:  # from the anchor to the nearest point of the label's box
        (x0, y0, x1, y1), (ax, ay) = label.box, label.anchor
        ex, ey = min(max(ax, x0), x1), min(max(ay, y0), y1)
        leader = (f'<line class="label-leader" data-leader="{label.code}" x1="{ax:.1f}" '
                  f'y1="{ay:.1f}" x2="{ex:.1f}" y2="{ey:.1f}"/>')
    shown = label.ja if lang == "ja" else label.en
    return (f'{leader}<text class="pref-label" data-label="{label.code}" '
            f'data-ja="{escape(label.ja, quote=True)}" data-en="{escape(label.en, quote=True)}" '
            f'x="{label.x:.1f}" y="{label.y:.1f}">{escape(shown)}</text>')


def _prefectures_svg(states: Mapping[str, str], last: Mapping[str, str]) -> str:
    lands = []
    for shape in prefecture_shapes():
        state = states.get(shape.code, "none")
        dim = f' data-last="{last[shape.code]}"' if shape.code in last else ""
        lands.append(f'<g class="prefecture" data-code="{shape.code}" data-state="{state}"{dim}>'
                     f'<title>{shape.code} {escape(shape.name_ja)} {escape(shape.name_en)}'
                     f'</title><path d="{shape.path}"/></g>')
    return "".join(lands)


def render_map_svg(states: Mapping[str, str] | None = None, *,
                   overlay: MapOverlay | None = None, element_id: str = "japan-map",
                   lang: Lang = "ja", last: Mapping[str, str] | None = None) -> str:
    """Inline <svg> of the 47 prefectures coloured by `states` (code -> MapState), names in
    `lang`; `last`: code -> the state drawn dimmed where `states` says none."""
    states, last = states or {}, last or {}
    unknown = sorted((set(states.values()) | set(last.values())) - set(MAP_STATES))
    if unknown:
        raise ValueError(f"unknown map state(s): {', '.join(unknown)}")
    geo = layout()
    boxes, clips = _inset_boxes(geo, element_id, lang)
    labels = "".join(_label_svg(label, lang) for label in placed_labels().values())
    return (f'<svg xmlns="http://www.w3.org/2000/svg" id="{escape(element_id, quote=True)}" '
            f'class="alertsim-map" viewBox="0 0 {geo.width:.0f} {geo.height:.0f}" '
            f'role="img" data-i18n-aria-label="map.aria" '
            f'aria-label="{escape(text(AREA, "map.aria", lang), quote=True)}">'
            f"<defs>{clips}</defs>{boxes}{_neighbours_svg(lang)}"
            f'<g class="lands">{_prefectures_svg(states, last)}</g>'
            f"{render_overlay_svg(overlay, element_id=element_id)}"
            f'<g class="labels">{labels}</g></svg>')


def render_overlay_svg(overlay: MapOverlay | None, *, element_id: str = "japan-map") -> str:
    """The overlay groups alone (one per frame; none without an overlay)."""
    geo = layout()
    return "".join(_overlay_svg(overlay, f, f"{element_id}-clip-{f.frame.name}")
                   for f in geo.frames)


def render_track_svg(track: TrackOverlay) -> dict[str, str]:
    """One event's overlay group per frame (frame name -> `<g data-event>`): what a live
    page swaps in when that event's track changes, instead of the whole overlay."""
    return {f.frame.name: _event_svg(track, f, track.event_id) for f in layout().frames}


def removed_track_svg(event_id: str) -> dict[str, str]:
    """An event's empty group in every frame: what a live page swaps in to remove its
    track (the event closed)."""
    return {f.frame.name: _event_svg(None, f, event_id) for f in layout().frames}
