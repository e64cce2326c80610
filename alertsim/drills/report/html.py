"""The drill report as one self-contained HTML page: inline CSS and SVG, no script, no
font or image from anywhere, so it opens from disk with no network request.

    the verdict and the drill's facts (EXERCISE or TEST in a banner)
    the map at the end state: every prefecture an element with `data-code` and
        `data-state` (none, shelter, passed, fell, cancelled), the state named by the
        last alert it was sent (none when it was sent nothing), drawn by
        `alertsim.web.map.render_map_svg`, the dashboard's map
    the map after each moment alerts were sent (small multiples)
    a timeline per prefecture (charts.timeline_svg), a latency histogram, the
        expectations table
    held against the record (with a record): per prefecture and stage, the record's time
        beside the drill's, and the areas
    refused inputs and withheld messages: every refusal note, the count judged

`build_html(store, report)` reads what the report does not hold (each alert's receipts,
the decisions' over-territory windows) from the same SQLite record.
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
from alertsim.data import load_atlas
from alertsim.domain.detection import Detection
from alertsim.domain.model import JST
from alertsim.domain.vocabulary import PREFECTURE_CODES
from alertsim.domain.warnings import Decision
from alertsim.drills.report.against_record import signed_duration
from alertsim.drills.report.charts import (
    Mark,
    Row,
    histogram_svg,
    legend_html,
    state_of_stage,
    timeline_svg,
)
from alertsim.drills.report.model import NATIONAL, DrillReport, TimelineRow, stages_text
from alertsim.drills.report.refusals import refusals_text
from alertsim.drills.report.render import areas_text, jst, record_verdict, topic_below_root
from alertsim.web.map import MAP_CSS, MapOverlay, overlay_of, render_map_svg

__all__ = ["MAX_STEPS", "build_html", "final_states", "write_html"]

MAX_STEPS = 16  # small multiples shown; later moments are folded into the last one

_CSS = """
body{font:14px/1.45 system-ui,sans-serif;margin:0 auto;max-width:1100px;padding:0 16px 40px;
color:#222}
h1{font-size:22px;margin:12px 0 4px}h2{font-size:18px;margin:28px 0 8px;border-bottom:1px solid
#ccc}#status-banner{background:#b00020;color:#fff;font-weight:bold;padding:6px 12px;
letter-spacing:.05em;margin:0 -16px}.verdict{font-size:16px;font-weight:bold}.PASSED{color:#1a7f37}
.FAILED{color:#b00020}.facts{columns:2;font-size:13px}table{border-collapse:collapse;
font-size:13px}td,th{border:1px solid #ccc;padding:3px 6px;text-align:left;vertical-align:top}
.fail{color:#b00020;font-weight:bold}.pass{color:#1a7f37}.key{margin-right:14px;
white-space:nowrap}.key i{display:
inline-block;width:12px;height:12px;margin-right:4px;vertical-align:-1px;border:1px solid #888}
#end-state svg{width:100%;max-width:900px;height:auto}.steps{display:flex;flex-wrap:wrap;gap:8px}
.steps figure{margin:0;width:260px;font-size:12px}.steps svg{width:260px;height:auto}
.chart text{font-size:11px;fill:#333}.chart .grid{stroke:#e4e4e4}.chart .lane{stroke:#bbb}
.chart .over{fill:#ffe08a}.chart .receipt{stroke:#1a7f37}.chart .bar{fill:#4575b4}
.chart .axis{stroke:#666}
"""


def final_states(timeline: Iterable[TimelineRow]) -> dict[str, str]:
    """Every prefecture's state at the end: the one named by the last alert it was sent."""
    states = dict.fromkeys(PREFECTURE_CODES, "none")
    for row in timeline:
        if row.prefecture is not None:
            states[row.prefecture] = state_of_stage(row.stage)
    return states


def _map(states: Mapping[str, str], element_id: str, overlay: MapOverlay | None) -> str:
    return render_map_svg(states, overlay=overlay, element_id=element_id)


def _steps(timeline: Sequence[TimelineRow]) -> list[tuple[str, dict[str, str]]]:
    """(caption, states) after each moment of the scenario clock at which alerts went out."""
    states = dict.fromkeys(PREFECTURE_CODES, "none")
    steps: list[tuple[str, dict[str, str]]] = []
    rows = [r for r in timeline if r.prefecture is not None]
    for moment, group in groupby(rows, key=lambda r: r.sim_time or r.created_at):
        sent = list(group)
        for row in sent:
            states[str(row.prefecture)] = state_of_stage(row.stage)
        what = ", ".join(f"{r.prefecture} {r.stage}" for r in sent)
        steps.append((f"{moment.astimezone(JST):%H:%M:%S} JST: {what}", dict(states)))
    if len(steps) > MAX_STEPS:  # keep the first ones and the end state
        steps = [*steps[:MAX_STEPS - 1], (f"… and {len(steps) - MAX_STEPS + 1} more moments, "
                                           "ending in the state above", steps[-1][1])]
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
          latencies: Mapping[str, Sequence[float]]) -> list[Row]:
    """The timeline chart's rows: every prefecture sent an alert or flown over."""
    speed = report.speed or 1.0
    marks: dict[str, list[Mark]] = defaultdict(list)
    for r in report.timeline:
        at = r.sim_time or r.created_at
        receipts = tuple(at + timedelta(milliseconds=ms * speed)
                         for ms in latencies.get(r.identifier, ()))
        marks[r.prefecture or NATIONAL].append(Mark(at, r.stage or "?", receipts))
    names = {p.code: p.name_en for p in load_atlas().prefectures}
    codes = sorted({*marks, *windows} - {NATIONAL}) + ([NATIONAL] if NATIONAL in marks else [])
    return [Row(code, f"{code} {names[code]}" if code in names else code, windows.get(code),
                tuple(marks.get(code, ()))) for code in codes]


def _facts(report: DrillReport) -> str:
    scenario = report.scenario
    facts = [("Drill", report.drill_id), ("Scenario", scenario and scenario.path),
             ("Date", scenario and scenario.date), ("Policy", report.policy),
             ("Speed", report.speed and f"{report.speed:g}x"), ("Broker", report.broker),
             ("Topic root", report.topic_root), ("Started", jst(report.started_at)),
             ("Finished", jst(report.finished_at)), ("Event", report.event_id)]
    return "<ul class='facts'>" + "".join(
        f"<li>{name}: {escape(str(value))}</li>" for name, value in facts if value) + "</ul>"


def _expectations(report: DrillReport) -> str:
    if not report.expectations.judged:
        return f"<p>Not judged: {escape(report.expectations.note)}.</p>"
    rows = "".join(
        f"<tr><td>{escape(c.subject)}</td><td>{escape(c.expected)}</td>"
        f"<td>{escape(c.actual)}</td><td>{escape(c.basis)}</td>"
        f"<td class='{'pass' if c.passed else 'fail'}'>{'pass' if c.passed else 'FAIL'}</td></tr>"
        for c in report.expectations.checks)
    return ("<table id='expectations'><tr><th>Check</th><th>Expected</th><th>Actual</th>"
            f"<th>Basis</th><th>Result</th></tr>{rows}</table>")


def _against_record(report: DrillReport) -> str:
    """The record section, or nothing when the scenario has no record."""
    comparison = report.record
    if comparison is None:
        return ""
    ok = "within tolerance"
    rows = "".join(
        f"<tr><td>{escape(r.prefecture)}</td><td>{escape(r.stage)}</td>"
        f"<td>{escape(jst(r.record_at) or '—')}</td><td>{escape(jst(r.drill_at) or '—')}</td>"
        f"<td>{'—' if r.difference_s is None else signed_duration(r.difference_s)}</td>"
        f"<td class='{'pass' if r.verdict == ok else 'fail'}'>{escape(r.verdict)}</td></tr>"
        for r in comparison.rows)
    tolerance = signed_duration(comparison.tolerance_s).lstrip("+")
    verdict = "PASSED" if comparison.matched else "FAILED"
    notes = f"<p>Record notes: {escape(comparison.notes)}</p>" if comparison.notes else ""
    return (f"<h2>Held against the record</h2><p class='{verdict}' id='record-verdict'>"
            f"The drill {escape(record_verdict(comparison.matched))} (tolerance {tolerance}; "
            "times are the alerts' sent times, JST).</p>"
            f"<p>Areas: {escape(areas_text(comparison))}</p>"
            f"<p>Record sources: {escape('; '.join(comparison.sources))}</p>{notes}"
            "<table id='record'><tr><th>Prefecture</th><th>Stage</th><th>Record</th>"
            f"<th>Drill</th><th>Difference</th><th>Verdict</th></tr>{rows}</table>")


def _refusals(report: DrillReport) -> str:
    """Every refusal note and the count judged against the scenario's expect.refused."""
    results = report.refusals
    count = refusals_text(len(results.rows), results.expected)
    css = {True: "pass", False: "fail", None: ""}[results.passed]
    said = {True: " (as expected)", False: ": FAIL", None: ""}[results.passed]
    rows = "".join(
        f"<tr><td>{n}</td><td>{escape(jst(r.received_at, ms=True) or '')}</td>"
        f"<td>{escape(topic_below_root(r.source, report.topic_root))}</td>"
        f"<td>{escape(r.reason)}</td></tr>" for n, r in enumerate(results.rows, start=1))
    table = ("<table id='refusals'><tr><th>#</th><th>Received (real)</th><th>Topic</th>"
             f"<th>Reason</th></tr>{rows}</table>") if rows else ""
    return (f"<h2>Refused inputs and withheld messages</h2>"
            f"<p class='{css}' id='refusal-count'>{escape(count)}{said}.</p>{table}")


def _per_prefecture(report: DrillReport) -> str:
    rows = "".join(
        f"<tr><td>{p.place}</td><td>{escape(stages_text(p.stages_sent))}</td>"
        f"<td>{p.deliveries}</td><td>{p.missed}</td><td>{p.duplicates}</td>"
        f"<td>{p.latency.p50_ms if p.latency.p50_ms is not None else '—'}</td></tr>"
        for p in (*report.per_prefecture, report.national) if p.stages_sent or p.deliveries)
    return ("<table><tr><th>Place</th><th>Stages sent</th><th>Deliveries</th><th>Missed</th>"
            f"<th>Duplicates</th><th>p50 ms</th></tr>{rows}</table>")


def _head(report: DrillReport) -> str:
    title = report.scenario.title if report.scenario else (report.drill_id or "alertsim record")
    status = (report.status or "exercise").upper()
    verdict = {True: "PASSED", False: "FAILED", None: "NOT JUDGED"}[report.passed]
    record = ("" if report.record_matched is None
              else f"; {escape(record_verdict(report.record_matched))}")
    failures = ("<ul class='failures'>" + "".join(
        f"<li class='fail'>{escape(line)}</li>" for line in report.failures) + "</ul>"
                if report.failures else "")
    return (f"<div id='status-banner'>{escape(status)}: a simulated drill, not a real alert"
            f"</div><h1>Drill report: {escape(title)}</h1>"
            f"<p class='verdict {verdict}'>{verdict}: {len(report.timeline)} alert(s) sent, "
            f"{report.latency.count} delivery(ies) acknowledged, "
            f"{escape(refusals_text(len(report.refusals.rows), report.refusals.expected))}"
            f"{record}</p>{failures}{_facts(report)}")


def render_html(report: DrillReport, windows: Mapping[str, tuple[datetime, datetime]],
                latencies: Mapping[str, Sequence[float]],
                overlay: MapOverlay | None = None) -> str:
    """The page, from the report and what `build_html` read beside it."""
    steps = "".join(f"<figure>{_map(states, f'step-{n}', overlay)}"
                    f"<figcaption>{escape(caption)}</figcaption></figure>"
                    for n, (caption, states) in enumerate(_steps(report.timeline), start=1))
    end_map = _map(final_states(report.timeline), "end-map", overlay)
    all_ms = [ms for values in latencies.values() for ms in values]
    histogram = histogram_svg(all_ms) or "<p>No delivery was timed.</p>"
    chart = timeline_svg(_rows(report, windows, latencies)) or "<p>No alert was sent.</p>"
    return (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>Drill report: {escape(report.drill_id or 'alertsim record')}</title>"
        f"<style>{_CSS}{MAP_CSS}</style></head><body>{_head(report)}"
        "<h2>End state</h2><p>Each prefecture in the last stage it was told (once an event "
        "closes its retained state is empty; this map keeps what happened).</p>"
        f"<p>{legend_html()}</p>"
        f"<section id='end-state'>{end_map}</section>"
        f"<h2>Stage by stage</h2><div class='steps'>{steps or '<p>No alert was sent.</p>'}</div>"
        "<h2>Timeline per prefecture</h2><p>Scenario clock (JST). Band: the missile over its "
        "territory; dot: an alert sent, in its state's colour; tick: a receipt, at its latency "
        f"times the drill's speed.</p>{chart}"
        f"<h2>Latency</h2>{histogram}<h2>Expectations</h2>{_expectations(report)}"
        f"{_against_record(report)}{_refusals(report)}"
        f"<h2>Per place</h2>{_per_prefecture(report)}</body></html>\n")


async def build_html(store: Store, report: DrillReport) -> str:
    """The HTML report of `report`, with receipts and decisions read from `store`."""
    windows = await _windows(store, report)
    latencies = await _receipts(store, report)
    events = {r.event_id for r in report.timeline}
    overlay = overlay_of(Detection.model_validate_json(row.parsed_json)
                         for row in await store.views.detections() if row.event_id in events)
    # The map's geometry is built once per process, off the event loop.
    return await asyncio.to_thread(render_html, report, windows, latencies, overlay)


async def write_html(store: Store, report: DrillReport, path: Path) -> Path:
    """Write the HTML report to `path` (its folder created if needed)."""
    text = await build_html(store, report)

    def write() -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")

    await asyncio.to_thread(write)
    return path
