"""The drill report as Markdown (`render_markdown`) and as files (`write_report`: the
report's JSON beside its Markdown)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence
from pathlib import Path

from alertsim.drills.report.model import NATIONAL, DrillReport, PlaceSummary, stages_text

__all__ = ["render_markdown", "write_report"]


def _cell(value: object) -> str:
    text = "—" if value is None or value == "" else str(value)
    # A pipe or a newline would break the table row.
    return text.replace("|", "\\|").replace("\n", " ")


def _num(value: float | None) -> str:
    return "—" if value is None else f"{value:g}"


def _table(header: Sequence[str], rows: Iterable[Sequence[object]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_cell(v) for v in row) + " |" for row in rows]
    return lines


def _receivers_cell(place: PlaceSummary) -> str:
    """Who acknowledged what; many receivers that all agree read as one phrase."""
    cells = {(r.subscribed, r.stages) for r in place.receivers}
    if len(place.receivers) > 3 and len(cells) == 1:
        subscribed, stages = cells.pop()
        flag = "" if subscribed else " (not subscribed)"
        return f"all {len(place.receivers)} receivers{flag}: {stages_text(stages)}"
    parts = []
    for r in place.receivers:
        flag = "" if r.subscribed else " (not subscribed)"
        parts.append(f"{r.client_id}{flag}: {stages_text(r.stages)}")
    return "; ".join(parts) or "no receiver"


def _quiet(place: PlaceSummary) -> bool:
    """Nothing sent, nothing acknowledged, nothing missed: a row a summary can fold."""
    return (not place.stages_sent and not place.missed and not place.duplicates
            and all(not r.stages for r in place.receivers))


def _headline(report: DrillReport) -> list[str]:
    """The title and the one-line verdict with the totals."""
    title = report.scenario.title if report.scenario else (report.drill_id or "alertsim record")
    verdict = {True: "PASSED", False: "FAILED", None: "NOT JUDGED"}[report.passed]
    missed = sum(p.missed for p in (*report.per_prefecture, report.national))
    duplicates = sum(p.duplicates for p in (*report.per_prefecture, report.national))
    return [f"# Drill report: {title}", "",
            f"**{verdict}** — {len(report.timeline)} alert(s) sent, "
            f"{report.latency.count} delivery(ies) acknowledged, {missed} missed, "
            f"{duplicates} duplicate(s); latency p50 {_num(report.latency.p50_ms)} ms, "
            f"p99 {_num(report.latency.p99_ms)} ms, max {_num(report.latency.max_ms)} ms", ""]


def _facts(report: DrillReport) -> list[str]:
    """The drill's settings as a bullet list; unknown ones are left out."""
    scenario = report.scenario
    facts = [("Drill", report.drill_id), ("Scenario file", scenario and scenario.path),
             ("Kind", scenario and scenario.kind), ("Date", scenario and scenario.date),
             ("Policy", report.policy), ("Status", report.status),
             ("Speed", report.speed and f"{report.speed:g}x"), ("Broker", report.broker),
             ("Started", report.started_at), ("Finished", report.finished_at),
             ("Event", report.event_id), ("Receivers from", report.receivers_source)]
    lines = [f"- {name}: {value}" for name, value in facts if value]
    if scenario and scenario.sources:
        lines.append(f"- Sources: {'; '.join(scenario.sources)}")
    if report.unmatched_receipts:
        lines.append(f"- Receipts naming no alert in the outbox: {report.unmatched_receipts}")
    return lines


def _expectations(report: DrillReport) -> list[str]:
    lines = ["", "## Expectations", ""]
    if not report.expectations.judged:
        return [*lines, f"Not judged: {report.expectations.note}."]
    lines += _table(["Check", "Expected", "Actual", "Basis", "Result"],
                    ([c.subject, c.expected, c.actual, c.basis, "pass" if c.passed else "FAIL"]
                     for c in report.expectations.checks))
    if report.failures:
        lines += ["", "Failures:", ""] + [f"- {line}" for line in report.failures]
    return lines


def _per_prefecture(report: DrillReport, compact: bool) -> list[str]:
    lines = ["", "## Per prefecture", ""]
    places = [*report.per_prefecture, report.national]
    shown = [p for p in places if not (compact and _quiet(p))]
    lines += _table(
        ["Prefecture", "Stages sent", "Acknowledged", "p50 ms", "p99 ms", "max ms", "Missed",
         "Duplicates"],
        ([p.place, stages_text(p.stages_sent), _receivers_cell(p), _num(p.latency.p50_ms),
          _num(p.latency.p99_ms), _num(p.latency.max_ms), p.missed, p.duplicates]
         for p in shown))
    folded = len(places) - len(shown)
    if folded:
        lines += ["", f"{folded} other place(s): nothing sent, nothing acknowledged."]
    return lines


def _timeline(report: DrillReport) -> list[str]:
    return ["", "## Timeline", "", *_table(
        ["#", "Sim time", "Created (real)", "Event", "Prefecture", "Stage", "msgType",
         "Identifier", "Topic", "Published"],
        ([e.seq, e.sim_time and e.sim_time.isoformat(timespec="seconds"),
          e.created_at.isoformat(timespec="milliseconds"), e.event_id,
          e.prefecture or NATIONAL, e.stage, e.msg_type, e.identifier, e.topic,
          "yes" if e.published else "no"] for e in report.timeline))]


def render_markdown(report: DrillReport, *, compact: bool = False) -> str:
    """The report as Markdown: summary, expectations, per-prefecture table, timeline.

    `compact` folds the prefectures that were sent and received nothing into one line
    (the console summary); the written report keeps every row.
    """
    lines = [*_headline(report), *_facts(report), *_expectations(report),
             *_per_prefecture(report, compact), *_timeline(report)]
    return "\n".join(lines) + "\n"


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


async def write_report(report: DrillReport, directory: Path, stem: str) -> tuple[Path, Path]:
    """Write `stem.json` and `stem.md` into `directory` (created if needed)."""
    json_path, md_path = directory / f"{stem}.json", directory / f"{stem}.md"
    # File writes block: keep them off the event loop.
    await asyncio.to_thread(_write, json_path, report.model_dump_json(indent=2) + "\n")
    await asyncio.to_thread(_write, md_path, render_markdown(report))
    return json_path, md_path
