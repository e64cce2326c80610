"""Where each prefecture's name is written on the map, so that no two names overlap.

A label's box is estimated from its text (`text_width`: a width per character class at
FONT_PX, on the wide side for the sans-serif fonts a browser picks) and is the wider of
its Japanese and English names, so the page's language toggle never makes two overlap.

Placement is greedy and deterministic: the prefectures with the smallest shapes choose
first; each takes, among offsets around its anchor (a point inside its largest island),
the cheapest whose box stays inside its frame (never under an inset), overlaps no label
placed before it, and, for a penalty, lies outside its own land. A label that ends up off
its land, or far from its anchor, gets a leader line to the anchor.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from functools import cache

import numpy as np
import shapely
from numpy.typing import NDArray

from alertsim.web.geometry import Layout, PrefectureShape, layout, prefecture_shapes

__all__ = ["FONT_PX", "Label", "label_boxes_overlap", "placed_labels", "short_name_ja",
           "text_width"]

FONT_PX = 9.0
LINE_PX = FONT_PX * 1.3  # a label's box height (the white halo included)
HALO_PX = 2.0  # the white stroke around the letters, both sides together
GAP_PX = 1.0  # space kept between two labels' boxes
OFF_LAND_PENALTY = 30.0  # in pixels of distance: a label prefers its own land
LEADER_FROM_PX = 10.0  # a label this far from its anchor (or off its land) gets a leader
_STEPS = np.arange(-72.0, 72.1, 2.0)
FloatArray = NDArray[np.float64]


def short_name_ja(name_ja: str) -> str:
    """The map's Japanese name: without 都/府/県 (北海道 stays whole), as maps write it."""
    return name_ja[:-1] if name_ja[-1:] in ("都", "府", "県") else name_ja


def _char_em(char: str) -> float:
    if unicodedata.east_asian_width(char) in ("W", "F"):
        return 1.0
    if char in "iljtfr.,' ":
        return 0.36
    if char in "mwMW":
        return 0.95
    return 0.72 if char.isupper() else 0.6


def text_width(text: str, font_px: float = FONT_PX) -> float:
    """Estimated width in pixels of `text` at `font_px` (on the wide side)."""
    return sum(_char_em(c) for c in text) * font_px


@dataclass(frozen=True)
class Label:
    """One prefecture's name: centred on (x, y), in a `width` x `height` box."""

    code: str
    ja: str
    en: str
    x: float
    y: float
    width: float
    height: float
    anchor: tuple[float, float]
    leader: bool

    @property
    def box(self) -> tuple[float, float, float, float]:
        """left, top, right, bottom."""
        return (self.x - self.width / 2, self.y - self.height / 2,
                self.x + self.width / 2, self.y + self.height / 2)


def label_boxes_overlap(a: tuple[float, float, float, float],
                        b: tuple[float, float, float, float]) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def _candidates() -> FloatArray:
    """Offsets around an anchor, nearest first (vertical moves count a little more)."""
    dx, dy = np.meshgrid(_STEPS, _STEPS)
    offsets = np.column_stack([dx.ravel(), dy.ravel()])
    cost = np.hypot(offsets[:, 0], offsets[:, 1] * 1.4)
    return np.asarray(offsets[np.argsort(cost, kind="stable")], dtype=np.float64)


def _free(centres: FloatArray, w: float, h: float, taken: FloatArray) -> NDArray[np.bool_]:
    """Which candidate centres give a box clear of every box in `taken` (plus GAP_PX)."""
    if len(taken) == 0:
        return np.ones(len(centres), dtype=bool)
    left = centres[:, :1] - w / 2 - GAP_PX
    top = centres[:, 1:] - h / 2 - GAP_PX
    right, bottom = left + w + 2 * GAP_PX, top + h + 2 * GAP_PX
    hits = ((left < taken[:, 2]) & (taken[:, 0] < right)
            & (top < taken[:, 3]) & (taken[:, 1] < bottom))
    return np.asarray(~hits.any(axis=1))


def _inside(centres: FloatArray, w: float, h: float, geo: Layout, frame: str,
            ) -> NDArray[np.bool_]:
    """Which candidate boxes lie wholly inside what their frame shows."""
    placed = next(f for f in geo.frames if f.frame.name == frame)
    boxes = shapely.box(centres[:, 0] - w / 2, centres[:, 1] - h / 2,
                        centres[:, 0] + w / 2, centres[:, 1] + h / 2)
    return np.asarray(shapely.contains(geo.visible(placed), boxes))


def _place(shape: PrefectureShape, taken: FloatArray, offsets: FloatArray) -> Label:
    ja, en = short_name_ja(shape.name_ja), shape.name_en
    w = max(text_width(ja), text_width(en)) + HALO_PX
    h = LINE_PX
    centres = np.asarray(shape.anchor) + offsets
    ok = _free(centres, w, h, taken) & _inside(centres, w, h, layout(), shape.frame)
    on_land = shapely.contains_xy(shape.largest, centres[:, 0], centres[:, 1])
    cost = np.hypot(offsets[:, 0], offsets[:, 1] * 1.4) + np.where(on_land, 0.0,
                                                                   OFF_LAND_PENALTY)
    if not ok.any():
        raise RuntimeError(f"no room for the label of prefecture {shape.code}")
    best = int(np.argmin(np.where(ok, cost, np.inf)))
    x, y = (float(v) for v in centres[best])
    far = float(np.hypot(*offsets[best])) > LEADER_FROM_PX
    return Label(shape.code, ja, en, x, y, w, h, shape.anchor, far or not bool(on_land[best]))


@cache
def placed_labels() -> dict[str, Label]:
    """Every prefecture's label (code -> Label), none overlapping another."""
    offsets = _candidates()
    taken = np.empty((0, 4))
    labels: dict[str, Label] = {}
    for shape in sorted(prefecture_shapes(), key=lambda s: (s.largest.area, s.code)):
        label = _place(shape, taken, offsets)
        labels[shape.code] = label
        taken = np.vstack([taken, np.asarray([label.box])])
    return dict(sorted(labels.items()))
