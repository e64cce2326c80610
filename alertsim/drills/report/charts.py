"""Hand-drawn SVG charts for the HTML drill report: no script, no font, no request.

    timeline_svg   one row per prefecture on the scenario clock: when the missile was over
                   its territory (a band), each alert sent (a dot in its state's colour)
                   and each receipt (a tick, at the alert's time plus its latency scaled by
                   the drill's speed, i.e. on the scenario clock too)
    histogram_svg  delivery latencies in milliseconds, in equal bins from 0
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from html import escape

from alertsim.domain.model import JST

__all__ = ["STATE_COLOURS", "ChartWords", "Mark", "Row", "histogram_svg", "legend_html",
           "state_of_stage", "timeline_svg"]

# One colour per map state, the map's own (alertsim.web.map.MAP_CSS): legend, dots and map agree.
STATE_COLOURS = {"none": "#efeadf", "shelter": "#d62828", "passed": "#f4a259",
                 "fell": "#7b2cbf", "cancelled": "#8ab6d6"}
_STAGE_STATE = {"shelter": "shelter", "imminent": "shelter", "passed": "passed",
                "fell_land": "fell", "fell_sea": "fell", "cancel": "cancelled"}


def state_of_stage(stage: str | None) -> str:
    """The map state a prefecture is in after receiving `stage` (none for anything else)."""
    return _STAGE_STATE.get(stage or "", "none")


@dataclass(frozen=True)
class Mark:
    """One alert on a prefecture's row: when it was sent and when each receipt came."""

    at: datetime
    stage: str
    receipts: tuple[datetime, ...] = ()


@dataclass(frozen=True)
class Row:
    """One prefecture's row: the over-territory window (if any) and its alerts."""

    code: str
    label: str
    window: tuple[datetime, datetime] | None
    marks: tuple[Mark, ...]


@dataclass(frozen=True)
class ChartWords:
    """The words the charts write, in the report's language (English by default)."""

    timeline: str = "timeline per prefecture"
    over: str = "missile over its territory"
    sent: str = "sent"
    receipts: str = "receipt(s)"
    histogram: str = "latency histogram"
    latency_axis: str = "latency (ms): alert written to the outbox until the receipt"


LEFT, RIGHT, ROW_H, TOP = 170.0, 20.0, 26.0, 30.0


def _span(rows: Sequence[Row]) -> tuple[datetime, datetime]:
    moments = [m for r in rows for m in (*(r.window or ()),
                                          *(x.at for x in r.marks),
                                          *(t for x in r.marks for t in x.receipts))]
    start, end = min(moments), max(moments)
    pad = max((end - start) * 0.03, timedelta(seconds=5))
    return start - pad, end + pad


def _ticks(start: datetime, end: datetime, width: float) -> list[tuple[float, str]]:
    """Axis ticks at a round number of minutes (or seconds) across the span."""
    seconds = (end - start).total_seconds()
    step = next((s for s in (5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200)
                 if seconds / s <= 8), 14400)
    first = math.ceil(start.timestamp() / step) * step
    out = []
    for t in range(int(first), int(end.timestamp()) + 1, step):
        x = LEFT + (t - start.timestamp()) / seconds * width
        moment = datetime.fromtimestamp(t, JST)
        out.append((x, f"{moment:%H:%M:%S}" if step < 60 else f"{moment:%H:%M}"))
    return out


def _row_svg(row: Row, y: float, x_of: Callable[[datetime | None], float],
             words: ChartWords) -> list[str]:
    mid = y + ROW_H / 2
    parts = [f'<text x="{LEFT - 8}" y="{mid + 4:.1f}" text-anchor="end">{escape(row.label)}'
             "</text>",
             f'<line x1="{LEFT}" x2="{x_of(None)}" y1="{mid}" y2="{mid}" class="lane"/>']
    if row.window is not None:
        x0, x1 = x_of(row.window[0]), x_of(row.window[1])
        parts.append(f'<rect class="over" x="{x0:.1f}" y="{y + 3}" width="{max(x1 - x0, 2):.1f}" '
                     f'height="{ROW_H - 6}"><title>{escape(words.over)} '
                     f'{row.window[0].astimezone(JST):%H:%M:%S}-'
                     f'{row.window[1].astimezone(JST):%H:%M:%S} JST</title></rect>')
    for mark in row.marks:
        for receipt in mark.receipts:
            xr = x_of(receipt)
            parts.append(f'<line class="receipt" x1="{xr:.1f}" x2="{xr:.1f}" y1="{mid + 4}" '
                         f'y2="{mid + 10}"/>')
        colour = STATE_COLOURS[state_of_stage(mark.stage)]
        parts.append(f'<circle cx="{x_of(mark.at):.1f}" cy="{mid}" r="5" fill="{colour}">'
                     f"<title>{escape(mark.stage)} {escape(words.sent)} "
                     f"{mark.at.astimezone(JST):%H:%M:%S} JST, {len(mark.receipts)} "
                     f"{escape(words.receipts)}</title></circle>")
    return parts


def timeline_svg(rows: Sequence[Row], width: float = 900.0,
                 words: ChartWords = ChartWords()) -> str:
    """The per-prefecture timeline chart; an empty string when there is nothing to draw."""
    if not rows:
        return ""
    start, end = _span(rows)
    inner = width - LEFT - RIGHT
    seconds = (end - start).total_seconds()

    def x_of(moment: datetime | None) -> float:
        if moment is None:
            return LEFT + inner
        return LEFT + (moment - start).total_seconds() / seconds * inner

    height = TOP + ROW_H * len(rows) + 10
    parts = [f'<svg class="chart timeline" xmlns="http://www.w3.org/2000/svg" '
             f'viewBox="0 0 {width:.0f} {height:.0f}" width="{width:.0f}" '
             f'height="{height:.0f}" role="img" aria-label="{escape(words.timeline)}">']
    for x, label in _ticks(start, end, inner):
        parts.append(f'<line class="grid" x1="{x:.1f}" x2="{x:.1f}" y1="{TOP - 6}" '
                     f'y2="{height - 10:.0f}"/><text x="{x:.1f}" y="{TOP - 10}" '
                     f'text-anchor="middle">{label}</text>')
    for i, row in enumerate(rows):
        parts += _row_svg(row, TOP + i * ROW_H, x_of, words)
    return "".join(parts) + "</svg>"


def _bins(values: Sequence[float], count: int = 12) -> tuple[float, list[int]]:
    """A round bin width from 0 to the largest value, and the count in each bin."""
    top = max(values)
    raw = top / count if top > 0 else 1.0
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    counts = [0] * (int(top // step) + 1)
    for value in values:
        counts[int(value // step)] += 1
    return step, counts


def histogram_svg(latencies_ms: Sequence[float], width: float = 600.0,
                  height: float = 220.0, words: ChartWords = ChartWords()) -> str:
    """Bars of delivery latencies; an empty string when nothing was timed."""
    if not latencies_ms:
        return ""
    step, counts = _bins(latencies_ms)
    left, bottom, top = 50.0, 40.0, 15.0
    inner_w, inner_h = width - left - 15, height - bottom - top
    bar_w, highest = inner_w / len(counts), max(counts)
    parts = [f'<svg class="chart histogram" xmlns="http://www.w3.org/2000/svg" '
             f'viewBox="0 0 {width:.0f} {height:.0f}" width="{width:.0f}" '
             f'height="{height:.0f}" role="img" aria-label="{escape(words.histogram)}">',
             f'<line class="axis" x1="{left}" x2="{left + inner_w:.1f}" '
             f'y1="{top + inner_h:.1f}" y2="{top + inner_h:.1f}"/>',
             f'<text x="{left - 6}" y="{top + 4}" text-anchor="end">{highest}</text>',
             f'<text x="{left - 6}" y="{top + inner_h:.1f}" text-anchor="end">0</text>',
             f'<text x="{left + inner_w / 2:.1f}" y="{height - 4}" text-anchor="middle">'
             f"{escape(words.latency_axis)}</text>"]
    for i, count in enumerate(counts):
        h = inner_h * count / highest
        x = left + i * bar_w
        parts.append(f'<rect class="bar" x="{x + 1:.1f}" y="{top + inner_h - h:.1f}" '
                     f'width="{max(bar_w - 2, 1):.1f}" height="{h:.1f}"><title>'
                     f"{i * step:g}-{(i + 1) * step:g} ms: {count}</title></rect>")
        if i % max(1, len(counts) // 6) == 0:
            parts.append(f'<text x="{x:.1f}" y="{top + inner_h + 14:.1f}" '
                         f'text-anchor="middle">{i * step:g}</text>')
    return "".join(parts) + "</svg>"


def legend_html(states: Mapping[str, str] | None = None) -> str:
    """The colour key of the map states and chart dots."""
    names = states or {s: s for s in STATE_COLOURS}
    return "".join(f'<span class="key"><i style="background:{STATE_COLOURS[s]}"></i>'
                   f"{escape(label)}</span>" for s, label in names.items())
