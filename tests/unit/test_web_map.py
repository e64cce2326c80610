"""The shared prefecture map: 47 labelled prefecture elements, islands kept, overlay drawn."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from alertsim.drills.scenario import DetectionEntry, load_scenario
from alertsim.web.geometry import layout
from alertsim.web.map import MAP_CSS, MAP_STATES, overlay_of, render_map_svg, render_track_svg

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
    labels = {t.attrib["data-label"]: t.text for t in root.iter(f"{SVG}text")
              if "data-label" in t.attrib}
    assert len(labels) == 47
    assert labels["13"] == "Tokyo"
    assert labels["47"] == "Okinawa"
    assert all(labels.values())


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
    classes = [e.attrib.get("class") for e in root.iter()]
    assert {"corridor", "launch", "impact", "missile"} <= set(classes)


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
