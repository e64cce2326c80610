"""The drill report as one self-contained HTML page, the document handed to a superior:
inline CSS and SVG, no script, no font or image from anywhere, so it opens from disk with
no network request, and prints on A4 with nothing cut (`html_style`). In Japanese by
default (`lang="ja"`, like every page), or English; the alert texts always in both.

    the banner (EXERCISE or TEST), the verdict and every reason the drill failed
    the drill's facts; the scenario's notes and sources
    the map at the end state: every prefecture an element with `data-code` and
        `data-state` (none, shelter, passed, fell, cancelled), the state named by the
        last alert it was sent (none when it was sent nothing), drawn by
        `alertsim.web.map.render_map_svg`, the dashboard's map
    the warned area zoomed (`alertsim.web.map_zoom`): every prefecture sent an alert
    the texts sent, Japanese beside English, with the places each went to
    the map after each moment alerts were sent (small multiples)
    a timeline per prefecture (charts.timeline_svg), a latency histogram, the
        expectations table with the reason of every failed check
    held against the record (with a record): per prefecture and stage, the record's time
        beside the drill's, and the areas
    refused inputs and withheld messages: every refusal note and counter, the count judged
    operator actions: the audit log, with who, when, what and the service's answer

`build_html(store, report)` reads what the report does not hold (each alert's receipts,
the decisions' over-territory windows, the detections' tracks) from the same record.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from html import escape
from itertools import groupby
from pathlib import Path

from alertsim.adapters.sqlite.store import Store
from alertsim.domain.detection import Detection
from alertsim.domain.model import JST
from alertsim.domain.vocabulary import PREFECTURE_CODES
from alertsim.domain.warnings import Decision
from alertsim.drills.report.charts import (
    STATE_COLOURS,
    ChartWords,
    Mark,
    Row,
    histogram_svg,
    legend_html,
    state_of_stage,
    timeline_svg,
)
from alertsim.drills.report.html_document import (
    audit_html,
    head_html,
    messages_html,
    scenario_html,
    title_of,
)
from alertsim.drills.report.html_sections import (
    expectations_html,
    facts_html,
    per_place_html,
    record_html,
    refusals_html,
)
from alertsim.drills.report.html_style import REPORT_CSS
from alertsim.drills.report.labels import label, place_name, stage_name, state_name
from alertsim.drills.report.model import NATIONAL, DrillReport, TimelineRow
from alertsim.i18n import DEFAULT_PAGE_LANG, Lang
from alertsim.web.map import MapOverlay, overlay_of, render_map_svg
from alertsim.web.map_zoom import render_zoom_svg

__all__ = ["MAX_STEPS", "build_html", "final_states", "render_html", "write_html"]

MAX_STEPS = 16  # small multiples shown; later moments are folded into the last one


def final_states(timeline: Iterable[TimelineRow]) -> dict[str, str]:
    """Every prefecture's state at the end: the one named by the last alert it was sent."""
    states = dict.fromkeys(PREFECTURE_CODES, "none")
    for row in timeline:
        if row.prefecture is not None:
            states[row.prefecture] = state_of_stage(row.stage)
    return states


def _map(states: Mapping[str, str], element_id: str, overlay: MapOverlay | None,
         lang: Lang) -> str:
    return render_map_svg(states, overlay=overlay, element_id=element_id, lang=lang)


def _steps(timeline: Sequence[TimelineRow], lang: Lang) -> list[tuple[str, dict[str, str]]]:
    """(caption, states) after each moment of the scenario clock at which alerts went out."""
    states = dict.fromkeys(PREFECTURE_CODES, "none")
    steps: list[tuple[str, dict[str, str]]] = []
    rows = [r for r in timeline if r.prefecture is not None]
    for moment, group in groupby(rows, key=lambda r: r.sim_time or r.created_at):
        sent = list(group)
        for row in sent:
            states[str(row.prefecture)] = state_of_stage(row.stage)
        what = ", ".join(f"{place_name(str(r.prefecture), lang)} {stage_name(r.stage, lang)}"
                         for r in sent)
        steps.append((f"{moment.astimezone(JST):%H:%M:%S} JST: {what}", dict(states)))
    if len(steps) > MAX_STEPS:  # keep the first ones and the end state
        more = label("steps.more", lang, count=len(steps) - MAX_STEPS + 1)
        steps = [*steps[:MAX_STEPS - 1], (more, steps[-1][1])]
    return steps


async def _windows(store: Store, report: DrillReport) -> dict[str, tuple[datetime, datetime]]:
    """Prefecture -> when the missile was over its territory, by each event's last decision
    (adjacent and block prefectures are warned for other prefectures' windows, not their
    own)."""
    windows: dict[str, tuple[datetime, datetime]] = {}
    for event_id in dict.fromkeys(r.event_id for r in report.timeline if r.event_id):
        rows = await store.views.decisions(event_id)
        if not rows:
            continue
        decision = Decision.model_validate_json(rows[-1].decision_json)
        for pref in decision.prefectures:
            if pref.reason not in ("adjacent", "block"):
                windows[pref.code] = (pref.window.start, pref.window.end)
    return windows


async def _receipts(store: Store, report: DrillReport) -> dict[str, list[float]]:
    """Alert identifier -> latency in ms of each receiver's first receipt of it."""
    created = {r.identifier: r.created_at for r in report.timeline}
    seen: set[tuple[str, str]] = set()
    latencies: dict[str, list[float]] = defaultdict(list)
    for receipt in await store.views.receipts():
        key = (receipt.client_id, receipt.message_id)
        if receipt.message_id in created and key not in seen:
            seen.add(key)
            delta = receipt.received_at - created[receipt.message_id]
            latencies[receipt.message_id].append(delta / timedelta(milliseconds=1))
    return latencies


def _rows(report: DrillReport, windows: Mapping[str, tuple[datetime, datetime]],
          latencies: Mapping[str, Sequence[float]], lang: Lang) -> list[Row]:
    """The timeline chart's rows: every prefecture sent an alert or flown over."""
    speed = report.speed or 1.0
    marks: dict[str, list[Mark]] = defaultdict(list)
    for r in report.timeline:
        at = r.sim_time or r.created_at
        receipts = tuple(at + timedelta(milliseconds=ms * speed)
                         for ms in latencies.get(r.identifier, ()))
        marks[r.prefecture or NATIONAL].append(Mark(at, r.stage or "?", receipts))
    codes = sorted({*marks, *windows} - {NATIONAL}) + ([NATIONAL] if NATIONAL in marks else [])
    return [Row(code, place_name(code, lang), windows.get(code), tuple(marks.get(code, ())))
            for code in codes]


def _words(lang: Lang) -> ChartWords:
    return ChartWords(*(label(f"chart.{k}", lang) for k in (
        "timeline", "over", "sent", "receipts", "histogram", "latency_axis")))


def _maps(report: DrillReport, overlay: MapOverlay | None, lang: Lang) -> str:
    """The end state, the warned area zoomed, and the state after each moment."""
    legend = legend_html({s: state_name(s, lang) for s in STATE_COLOURS})
    states = final_states(report.timeline)
    warned = sorted({r.prefecture for r in report.timeline if r.prefecture is not None})
    zoom = render_zoom_svg(states, warned, overlay=overlay, lang=lang)
    steps = "".join(f"<figure>{_map(shown, f'step-{n}', overlay, lang)}"
                    f"<figcaption>{escape(caption)}</figcaption></figure>"
                    for n, (caption, shown) in enumerate(_steps(report.timeline, lang), 1))
    zoomed = (f"<h2>{escape(label('section.zoom', lang))}</h2><p>"
              f"{escape(label('zoom.caption', lang, places=', '.join(warned)))}</p>"
              f"<section id='zoom'>{zoom}</section>" if zoom else "")
    return (f"<h2>{escape(label('section.end_state', lang))}</h2>"
            f"<p>{escape(label('end_state.caption', lang))}</p><p>{legend}</p>"
            f"<section id='end-state'>{_map(states, 'end-map', overlay, lang)}</section>"
            f"{zoomed}"
            f"<h2>{escape(label('section.steps', lang))}</h2><div class='steps'>"
            f"{steps or escape(label('none.alerts', lang))}</div>")


def _charts(report: DrillReport, windows: Mapping[str, tuple[datetime, datetime]],
            latencies: Mapping[str, Sequence[float]], lang: Lang) -> str:
    """The timeline per prefecture and the latency histogram."""
    words = _words(lang)
    all_ms = [ms for values in latencies.values() for ms in values]
    histogram = histogram_svg(all_ms, words=words) or (
        f"<p>{escape(label('none.timed', lang))}</p>")
    chart = timeline_svg(_rows(report, windows, latencies, lang), words=words) or (
        f"<p>{escape(label('none.alerts', lang))}</p>")
    return (f"<h2>{escape(label('section.timeline', lang))}</h2>"
            f"<p>{escape(label('timeline.caption', lang))}</p>{chart}"
            f"<h2>{escape(label('section.latency', lang))}</h2>{histogram}")


def render_html(report: DrillReport, windows: Mapping[str, tuple[datetime, datetime]],
                latencies: Mapping[str, Sequence[float]],
                overlay: MapOverlay | None = None, lang: Lang = DEFAULT_PAGE_LANG) -> str:
    """The page in `lang`, from the report and what `build_html` read beside it."""
    return (
        f"<!DOCTYPE html><html lang='{lang}'><head><meta charset='utf-8'>"
        f"<title>{escape(label('title', lang, title=title_of(report)))}</title>"
        f"<style>{REPORT_CSS}</style></head><body>{head_html(report, lang)}"
        f"<h2>{escape(label('section.facts', lang))}</h2>{facts_html(report, lang)}"
        f"{scenario_html(report, lang)}{_maps(report, overlay, lang)}"
        f"{messages_html(report, lang)}{_charts(report, windows, latencies, lang)}"
        f"<h2>{escape(label('section.expectations', lang))}</h2>"
        f"{expectations_html(report, lang)}{record_html(report, lang)}"
        f"{refusals_html(report, lang)}{audit_html(report, lang)}"
        f"<h2>{escape(label('section.per_place', lang))}</h2>{per_place_html(report, lang)}"
        "</body></html>\n")


async def build_html(store: Store, report: DrillReport, lang: Lang = DEFAULT_PAGE_LANG) -> str:
    """The HTML report of `report` in `lang`, with receipts, decisions and detections read
    from `store`."""
    windows = await _windows(store, report)
    latencies = await _receipts(store, report)
    events = {r.event_id for r in report.timeline}
    overlay = overlay_of(Detection.model_validate_json(row.parsed_json)
                         for row in await store.views.detections() if row.event_id in events)
    # The map's geometry is built once per process, off the event loop.
    return await asyncio.to_thread(render_html, report, windows, latencies, overlay, lang)


async def write_html(store: Store, report: DrillReport, path: Path,
                     lang: Lang = DEFAULT_PAGE_LANG) -> Path:
    """Write the HTML report in `lang` to `path` (its folder created if needed)."""
    page = await build_html(store, report, lang)

    def write() -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(page, encoding="utf-8")

    await asyncio.to_thread(write)
    return path
