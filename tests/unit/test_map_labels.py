"""The map's prefecture names: no two labels' boxes overlap, in Japanese or English.

A label's box is estimated here from the rendered SVG alone: its font size (MAP_CSS), its
text's length (a full-width character 1 em wide, any other LATIN_EM) and its position
(centred: text-anchor middle, dominant-baseline middle). The e2e dashboard test measures
the real boxes in chromium as well (tests/e2e/test_web_dashboard.py).
"""

from __future__ import annotations

import re
import unicodedata
import xml.etree.ElementTree as ET

import pytest
import shapely

from alertsim.i18n import LANGS, Lang
from alertsim.web.geometry import layout, prefecture_shapes
from alertsim.web.labels import label_boxes_overlap, placed_labels, short_name_ja
from alertsim.web.map import MAP_CSS, render_map_svg

SVG = "{http://www.w3.org/2000/svg}"
LATIN_EM = 0.62  # an average sans-serif letter, a little on the wide side
LINE_EM = 1.2
Box = tuple[float, float, float, float]


def font_px() -> float:
    """The labels' font size, from the stylesheet the map ships with."""
    rule = re.search(r"\.pref-label\s*\{[^}]*font-size:\s*([\d.]+)px", MAP_CSS)
    assert rule is not None
    return float(rule.group(1))


def width_em(text: str) -> float:
    return sum(1.0 if unicodedata.east_asian_width(c) in ("W", "F") else LATIN_EM
               for c in text)


def boxes(lang: Lang) -> dict[str, Box]:
    """Each label's estimated box as the map in `lang` draws it."""
    root = ET.fromstring(render_map_svg(lang=lang))
    size = font_px()
    found = {}
    for label in root.iter(f"{SVG}text"):
        if "data-label" not in label.attrib:
            continue
        x, y = float(label.attrib["x"]), float(label.attrib["y"])
        w, h = width_em(label.text or "") * size, LINE_EM * size
        found[label.attrib["data-label"]] = (x - w / 2, y - h / 2, x + w / 2, y + h / 2)
    return found


@pytest.mark.parametrize("lang", LANGS)
def test_no_two_labels_overlap(lang: Lang) -> None:
    """No two of the 47 names' boxes overlap (Kyoto/Shiga and Tokushima/Wakayama
    included), in either language."""
    found = boxes(lang)
    assert len(found) == 47
    codes = sorted(found)
    touching = [(a, b) for i, a in enumerate(codes) for b in codes[i + 1:]
                if label_boxes_overlap(found[a], found[b])]
    assert touching == []


@pytest.mark.parametrize("lang", LANGS)
def test_labels_stay_inside_their_frame(lang: Lang) -> None:
    """Every name is inside the map, and outside the insets unless it names their land."""
    geo = layout()
    frame_of = {s.code: s.frame for s in prefecture_shapes()}
    frames = {f.frame.name: f for f in geo.frames}
    for code, box in boxes(lang).items():
        shown = geo.visible(frames[frame_of[code]])
        assert shown.covers(shapely.box(*box)), code


def test_a_label_away_from_its_land_has_a_leader() -> None:
    """A name moved off its prefecture's land (to make room) is tied to it by a line."""
    root = ET.fromstring(render_map_svg())
    leaders = {line.attrib["data-leader"] for line in root.iter(f"{SVG}line")
               if "data-leader" in line.attrib}
    shapes = {s.code: s for s in prefecture_shapes()}
    for code, label in placed_labels().items():
        on_land = shapes[code].largest.contains(shapely.Point(label.x, label.y))
        assert on_land or code in leaders, code


def test_the_checker_sees_an_overlap() -> None:
    """The overlap rule itself: boxes that share area overlap, boxes that only meet do not."""
    assert label_boxes_overlap((0, 0, 10, 10), (9, 9, 20, 20))
    assert not label_boxes_overlap((0, 0, 10, 10), (10, 0, 20, 10))
    assert width_em("京都") == 2.0
    assert short_name_ja("京都府") == "京都"
    assert short_name_ja("北海道") == "北海道"
