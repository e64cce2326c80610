"""The shared prefecture map: 47 labelled prefecture elements, islands kept, neighbouring
land drawn, insets sized to their islands, overlay drawn with every marker in frame."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
import shapely

from alertsim.drills.scenario import DetectionEntry, load_scenario
from alertsim.web.geometry import layout, prefecture_shapes
from alertsim.web.map import (
    MAP_CSS,
    MAP_STATES,
    overlay_of,
    removed_track_svg,
    render_map_svg,
    render_track_svg,
)
from alertsim.web.markers import MARKER_PX

SVG = "{http://www.w3.org/2000/svg}"
SCENARIOS = Path(__file__).resolve().parents[2] / "scenarios"


def parse(svg: str) -> ET.Element:
    return ET.fromstring(svg)


def prefecture_groups(root: ET.Element) -> dict[str, ET.Element]:
    return {g.attrib["data-code"]: g for g in root.iter(f"{SVG}g") if "data-code" in g.attrib}


def islands(path_data: str) -> list[tuple[float, float]]:
    """The mean vertex of every ring in an SVG path (one ring per M ... Z)."""
    centres = []
    for ring in re.findall(r"M([^Z]*)Z", path_data):
        points = [tuple(map(float, p.split(","))) for p in ring.split("L")]
        centres.append((sum(x for x, _ in points) / len(points),
                        sum(y for _, y in points) / len(points)))
    return centres


def has_island_at(root: ET.Element, code: str, lon: float, lat: float, tol_px: float = 6.0,
                  ) -> bool:
    path = prefecture_groups(root)[code].find(f"{SVG}path")
    assert path is not None
    x, y = layout().point(lon, lat)
    return any(abs(cx - x) <= tol_px and abs(cy - y) <= tol_px
               for cx, cy in islands(path.attrib["d"]))


def test_47_prefectures_with_codes_states_and_labels() -> None:
    """One element per prefecture with data-code 01..47, its state, and a visible label."""
    root = parse(render_map_svg({"47": "shelter", "01": "passed"}))
    groups = prefecture_groups(root)
    assert sorted(groups) == [f"{n:02d}" for n in range(1, 48)]
    assert groups["47"].attrib["data-state"] == "shelter"
    assert groups["01"].attrib["data-state"] == "passed"
    assert {g.attrib["data-state"] for c, g in groups.items() if c not in ("01", "47")} == {"none"}
    labels = {t.attrib["data-label"]: t for t in root.iter(f"{SVG}text")
              if "data-label" in t.attrib}
    assert len(labels) == 47
    assert (labels["13"].text, labels["13"].attrib["data-en"]) == ("東京", "Tokyo")
    assert (labels["01"].text, labels["47"].attrib["data-ja"]) == ("北海道", "沖縄")
    assert all(t.text for t in labels.values())
    english = {t.attrib["data-label"]: t.text for t in parse(render_map_svg(lang="en")).iter(
        f"{SVG}text") if "data-label" in t.attrib}
    assert (english["13"], english["47"]) == ("Tokyo", "Okinawa")


@pytest.mark.parametrize(("code", "place", "lon", "lat"), [
    ("47", "Okinawa Island", 127.9, 26.5),
    ("47", "Ishigaki", 124.2, 24.45),
    ("47", "Yonaguni", 122.99, 24.45),
    ("47", "Minami-Daito", 131.24, 25.84),
    ("13", "Hachijojima (Izu)", 139.8, 33.1),
    ("13", "Oshima (Izu)", 139.4, 34.74),
    ("13", "Chichijima (Ogasawara)", 142.2, 27.07),
    ("13", "Iwo Jima (Volcano Is.)", 141.32, 24.78),
    ("13", "Minamitorishima", 153.98, 24.29),
    ("01", "Okushiri", 139.47, 42.15),
    ("01", "Rishiri", 141.24, 45.18),
    ("46", "Amami Oshima", 129.4, 28.32),
])
def test_islands_are_kept(code: str, place: str, lon: float, lat: float) -> None:
    """Small and far islands stay on the map, in the main frame or an inset."""
    assert has_island_at(parse(render_map_svg()), code, lon, lat), place


def test_far_islands_are_in_insets() -> None:
    """Okinawa and Ogasawara are drawn inside their inset boxes, which the SVG shows."""
    geo = layout()
    frames = {f.frame.name: f for f in geo.frames}
    assert geo.frame_of(127.9, 26.5).frame.name == "okinawa"
    assert geo.frame_of(142.2, 27.07).frame.name == "ogasawara"
    assert geo.frame_of(139.8, 33.1).frame.name == "main"
    for name in ("okinawa", "ogasawara", "minamitorishima"):
        f = frames[name]
        assert f.left >= 0
        assert f.left + f.width <= geo.width
        assert f.top >= 0
        assert f.top + f.height <= geo.height
    root = parse(render_map_svg())
    boxes = {r.attrib["data-inset"] for r in root.iter(f"{SVG}rect") if "data-inset" in r.attrib}
    assert boxes == {"okinawa", "ogasawara", "minamitorishima"}


def test_overlay_draws_track_corridor_launch_and_impact() -> None:
    """A scenario's detections become a track, corridor, launch and impact in every frame."""
    scenario = load_scenario(SCENARIOS / "2023-11-21-chollima-1.yaml")
    detections = [e.detection for e in scenario.timeline if isinstance(e, DetectionEntry)]
    root = parse(render_map_svg(overlay=overlay_of(detections)))
    tracks = [p for p in root.iter(f"{SVG}polyline") if p.attrib.get("class") == "track"]
    assert len(tracks) == 2  # one event, drawn in the main frame and the Okinawa inset
    assert {t.attrib["data-event"] for t in tracks} == {"2023-11-21-sohae"}
    assert tracks[0].attrib["data-launch"].startswith("2023-11-21T22:43:00")
    classes = {c for e in root.iter() for c in e.attrib.get("class", "").split()}
    assert {"corridor", "launch", "impact", "missile"} <= classes


def test_unknown_state_is_refused() -> None:
    """A state outside the contract is a programming error, named."""
    with pytest.raises(ValueError, match="sheltering"):
        render_map_svg({"01": "sheltering"})


def test_css_colours_every_state() -> None:
    """The exported stylesheet gives each state its own fill."""
    for state in MAP_STATES:
        assert f'[data-state="{state}"]' in MAP_CSS


def test_a_track_is_drawn_only_in_the_frames_it_reaches() -> None:
    """A live frame carries an event's pieces only where they can show: over Hokkaido the
    insets get an empty group (which still replaces an older one), and the bytes a
    dashboard sends per track shrink; a track down to Okinawa fills that inset too."""
    def frames_drawn(name: str) -> set[str]:
        scenario = load_scenario(SCENARIOS / name)
        detections = [e.detection for e in scenario.timeline if isinstance(e, DetectionEntry)]
        (track,) = overlay_of(detections).tracks
        groups = {frame: parse(f'<svg xmlns="http://www.w3.org/2000/svg">{svg}</svg>')[0]
                  for frame, svg in render_track_svg(track).items()}
        assert set(groups) == {"main", "okinawa", "ogasawara", "minamitorishima"}
        assert all(g.attrib["data-event"] == track.event_id for g in groups.values())
        return {frame for frame, g in groups.items() if len(g)}

    assert frames_drawn("2017-08-29-hwasong-12.yaml") == {"main"}
    assert frames_drawn("2023-11-21-chollima-1.yaml") == {"main", "okinawa"}


def test_neighbouring_land_is_drawn() -> None:
    """The Korean peninsula, China's coast, Russia's Far East and Taiwan are drawn as land
    (Natural Earth), so the launch sites sit on land; Japan's own land stays the
    prefectures'; the Northern Territories are drawn apart, in no country's colour."""
    root = parse(render_map_svg())
    groups = [g for g in root.iter(f"{SVG}g") if g.attrib.get("class") == "neighbours"]
    assert [g.attrib["data-frame"] for g in groups] == ["main"]
    (path,) = groups[0].iter(f"{SVG}path")
    land = shapely.union_all([shapely.Polygon(ring) for ring in rings(path.attrib["d"])])
    geo = layout()
    for lon, lat, place in [(124.705, 39.66, "Sohae"), (125.75, 39.0, "Pyongyang"),
                            (129.67, 40.86, "Musudan-ri"), (127.0, 37.5, "Seoul"),
                            (122.4, 37.1, "Shandong"), (131.9, 43.1, "Vladivostok"),
                            (142.0, 46.2, "Sakhalin")]:
        assert land.contains(shapely.Point(geo.point(lon, lat))), place
    assert not land.contains(shapely.Point(geo.point(139.7, 35.7)))  # Tokyo: a prefecture's
    unmodelled = [g for g in root.iter(f"{SVG}g") if g.attrib.get("class") == "unmodelled"]
    assert unmodelled
    assert not land.contains(shapely.Point(geo.point(146.0, 43.9)))


def rings(path_data: str) -> list[list[tuple[float, float]]]:
    """Every ring of an SVG path (M x,y L x,y ... Z)."""
    return [[(float(x), float(y)) for x, y in (p.split(",") for p in ring.split("L"))]
            for ring in re.findall(r"M([^Z]*)Z", path_data)]


def test_insets_are_sized_to_their_islands() -> None:
    """Each inset is no larger than its islands' extent, a small margin and its title
    (a scatter of islands stays a scatter, but no empty sea is added); no inset overlaps
    another or the main frame's land."""
    geo = layout()
    polygons = {name: [] for name in ("okinawa", "ogasawara", "minamitorishima")}
    for shape in prefecture_shapes():
        for ring in rings(shape.path):
            x, y = np.mean(ring, axis=0)
            inset = next((f for f in geo.insets if f.left <= x <= f.left + f.width
                          and f.top <= y <= f.top + f.height), None)
            if inset is not None:
                polygons[inset.frame.name].append(shapely.Polygon(ring))
            else:
                assert not any(shapely.Polygon(ring).intersects(shapely.box(*f.rect))
                               for f in geo.insets), shape.code
    for f in geo.insets:
        x0, y0, x1, y1 = shapely.union_all(polygons[f.frame.name]).bounds
        assert f.width <= max(x1 - x0 + 2 * PAD_PX, TITLE_WIDTH_PX) + 1, f.frame.name
        assert f.height <= y1 - y0 + 2 * PAD_PX + TITLE_PX + 1, f.frame.name
    for i, a in enumerate(geo.insets):
        for b in geo.insets[i + 1:]:
            assert not shapely.box(*a.rect).intersects(shapely.box(*b.rect))
    ogasawara = next(f for f in geo.insets if f.frame.name == "ogasawara")
    assert ogasawara.width * ogasawara.height < 160 * 390 / 2  # half the old inset or less


PAD_PX = 6.0  # room around an inset's islands
TITLE_PX = 14.0  # an inset's title band
TITLE_WIDTH_PX = 96.0  # an inset is at least as wide as its title


def marker_boxes(root: ET.Element) -> list[tuple[str, str, tuple[float, ...]]]:
    """(frame, class, pixel bounds) of every launch and impact marker drawn."""
    found = []
    for overlay in root.iter(f"{SVG}g"):
        if overlay.attrib.get("class") != "overlay":
            continue
        for marker in overlay.iter(f"{SVG}path"):
            kind = marker.attrib.get("class", "")
            numbers = [float(v) for v in re.findall(r"-?\d+(?:\.\d+)?", marker.attrib["d"])]
            xs, ys = numbers[0::2], numbers[1::2]
            found.append((overlay.attrib["data-frame"], kind,
                          (min(xs), min(ys), max(xs), max(ys))))
    return found


@pytest.mark.parametrize("name", sorted(p.name for p in SCENARIOS.glob("*.yaml")))
def test_every_marker_is_in_frame(name: str) -> None:
    """For every shipped scenario, every launch and impact marker is drawn whole inside
    what its frame shows (never cut at the map's edge or under an inset); the main frame
    has both of each event's, a far one marked offmap at the edge."""
    scenario = load_scenario(SCENARIOS / name)
    detections = [e.detection for e in scenario.timeline if isinstance(e, DetectionEntry)]
    overlay = overlay_of(detections)
    root = parse(render_map_svg(overlay=overlay))
    geo = layout()
    frames = {f.frame.name: f for f in geo.frames}
    found = marker_boxes(root)
    for frame, kind, (x0, y0, x1, y1) in found:
        shown = geo.visible(frames[frame])
        assert shown.covers(shapely.box(x0, y0, x1, y1)), (frame, kind, (x0, y0, x1, y1))
    main = [kind.split()[0] for frame, kind, _ in found if frame == "main"]
    assert sorted(main) == sorted(["launch", "impact"] * len(overlay.tracks))
    for track in overlay.tracks:
        x, y = geo.main.to_px(np.array([track.impact[0]]), np.array([track.impact[1]]))[0]
        inside = MARKER_PX <= x <= geo.width - MARKER_PX and MARKER_PX <= y <= geo.height - MARKER_PX
        offmap = any("offmap" in kind and f'data-event="{track.event_id}"' for _, kind, _ in found)
        assert inside or offmap


def test_a_closed_event_leaves_an_empty_group_in_every_frame() -> None:
    """Removing a track: the event's group, empty, for each frame (a page swaps it in)."""
    groups = removed_track_svg("e-1")
    assert set(groups) == {f.frame.name for f in layout().frames}
    assert set(groups.values()) == {'<g class="event-overlay" data-event="e-1"></g>'}
