"""The drill report as Markdown (`render_markdown`) and as files (`write_report`: the
report's JSON beside its Markdown).

Sections: the verdict and facts, Expectations, Held against the record (with a record),
Refused inputs and withheld messages, Per prefecture, Timeline, Faults (with faults).

Readable as plain text too: no line is longer than `MAX_LINE` characters (a table whose rows
would be wider is written as a list instead, and long values are wrapped), every time is in
JST without microseconds, and the timeline is numbered 1, 2, 3.
"""

from __future__ import annotations

import asyncio
import textwrap
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from pathlib import Path

from alertsim.domain.model import JST
from alertsim.drills.report.against_record import signed_duration
from alertsim.drills.report.model import (
    NATIONAL,
    DrillReport,
    PlaceSummary,
    ReceiverSummary,
    RecordComparison,
    stages_text,
)
from alertsim.drills.report.refusals import refusals_text
from alertsim.drills.scenario import Expectations

__all__ = ["MAX_LINE", "areas_text", "expectation_lines", "jst", "record_verdict",
           "render_markdown", "topic_below_root", "write_report"]

MAX_LINE = 160


def jst(moment: datetime | None, *, ms: bool = False) -> str | None:
    """An instant in JST (+09:00), to the second (or millisecond), never microseconds."""
    if moment is None:
        return None
    return moment.astimezone(JST).isoformat(timespec="milliseconds" if ms else "seconds")


def topic_below_root(topic: str, root: str | None) -> str:
    """The topic relative to the drill's topic root (named once in the facts)."""
    if root and topic.startswith(root + "/"):
        return topic[len(root) + 1:]
    return topic


def _cell(value: object) -> str:
    text = "—" if value is None or value == "" else str(value)
    # A pipe or a newline would break the table row.
    return text.replace("|", "\\|").replace("\n", " ")


def _num(value: float | None) -> str:
    return "—" if value is None else f"{value:g}"


def _wrapped(text: str, first: str, rest: str) -> list[str]:
    """`text` after `first`, wrapped at MAX_LINE; continuation lines start with `rest`."""
    return textwrap.wrap(text, width=MAX_LINE, initial_indent=first, subsequent_indent=rest,
                         break_on_hyphens=False) or [first.rstrip()]


def _as_list(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    """A table too wide for MAX_LINE, as one bullet per row with one line per column."""
    lines: list[str] = []
    for row in rows:
        lines += _wrapped(f"{header[0]} {row[0]}", "- ", "  ")
        for name, value in zip(header[1:], row[1:], strict=True):
            lines += _wrapped(f"{name}: {value}", "  - ", "    ")
    return lines


def _table(header: Sequence[str], rows: Iterable[Sequence[object]]) -> list[str]:
    cells = [[_cell(v) for v in row] for row in rows]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in cells]
    if max(map(len, lines)) > MAX_LINE:
        return _as_list(header, cells)
    return lines


def _who(receivers: Sequence[ReceiverSummary]) -> str:
    """Client ids, or how many when there are more than three."""
    if len(receivers) > 3:
        return f"{len(receivers)} receivers"
    return ", ".join(r.client_id for r in receivers)


def _flag(receiver: ReceiverSummary) -> str:
    if receiver.outside_fleet:
        return " (outside the drill's fleet)"
    return "" if receiver.subscribed else " (not subscribed)"


def _receivers_cell(place: PlaceSummary) -> str:
    """Who acknowledged what: receivers that agree are one phrase ("all 4 receivers: ...")."""
    if not place.receivers:
        return "no receiver"
    groups: dict[tuple[str, tuple[str, ...]], list[ReceiverSummary]] = {}
    for r in place.receivers:
        groups.setdefault((_flag(r), r.stages), []).append(r)
    if len(groups) == 1 and len(place.receivers) > 3:
        (flag, stages), = groups
        return f"all {len(place.receivers)} receivers{flag}: {stages_text(stages)}"
    return "; ".join(f"{_who(rs)}{flag}: {stages_text(stages)}"
                     for (flag, stages), rs in groups.items())


def _quiet(place: PlaceSummary) -> bool:
    """Nothing sent, nothing acknowledged, nothing missed: a row a summary can fold."""
    return (not place.stages_sent and not place.missed and not place.duplicates
            and all(not r.stages for r in place.receivers))


def _headline(report: DrillReport) -> list[str]:
    """The title and the verdict with the totals."""
    title = report.scenario.title if report.scenario else (report.drill_id or "alertsim record")
    verdict = {True: "PASSED", False: "FAILED", None: "NOT JUDGED"}[report.passed]
    missed = sum(p.missed for p in (*report.per_prefecture, report.national))
    duplicates = sum(p.duplicates for p in (*report.per_prefecture, report.national))
    summary = (f"**{verdict}** — {len(report.timeline)} alert(s) sent, "
               f"{report.latency.count} delivery(ies) acknowledged, {missed} missed, "
               f"{duplicates} duplicate(s); latency p50 {_num(report.latency.p50_ms)} ms, "
               f"p99 {_num(report.latency.p99_ms)} ms, max {_num(report.latency.max_ms)} ms"
               f"; {refusals_text(len(report.refusals.rows), report.refusals.expected)}")
    if report.record_matched is not None:
        summary += f"; {record_verdict(report.record_matched)}"
    return [*_wrapped(f"# Drill report: {title}", "", "  "), "",
            *_wrapped(summary, "", ""), ""]


def _facts(report: DrillReport) -> list[str]:
    """The drill's settings as a bullet list; unknown ones are left out."""
    scenario = report.scenario
    facts = [("Drill", report.drill_id), ("Scenario file", scenario and scenario.path),
             ("Kind", scenario and scenario.kind), ("Date", scenario and scenario.date),
             ("Policy", report.policy), ("Status", report.status),
             ("Speed", report.speed and f"{report.speed:g}x"), ("Broker", report.broker),
             ("Topic root", report.topic_root),
             ("Started", jst(report.started_at)), ("Finished", jst(report.finished_at)),
             ("Times", "JST (+09:00)"),
             ("Event", report.event_id), ("Receivers from", report.receivers_source)]
    lines = [line for name, value in facts if value
             for line in _wrapped(f"{name}: {value}", "- ", "  ")]
    if scenario and scenario.sources:
        lines += _wrapped(f"Sources: {'; '.join(scenario.sources)}", "- ", "  ")
    outside = sorted({r.client_id for p in (*report.per_prefecture, report.national)
                      for r in p.receivers if r.outside_fleet})
    if outside:
        lines += _wrapped(f"Subscribers outside the drill's fleet: {', '.join(outside)}",
                          "- ", "  ")
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
        lines += ["", "Failures:", ""]
        lines += [line for failure in report.failures
                  for line in _wrapped(failure, "- ", "  ")]
    return lines


def record_verdict(matched: bool) -> str:
    """The record's verdict in words, for the headline and the section."""
    return "matches J-Alert's record" if matched else "does NOT match J-Alert's record"


def areas_text(comparison: RecordComparison) -> str:
    """The record's areas against the prefectures the drill warned, differences named."""
    areas = comparison.areas
    said = (f"J-Alert addressed {len(areas.record)} prefecture(s), the drill warned "
            f"{len(areas.drill)}")
    if not areas.only_in_record and not areas.only_in_drill:
        return f"{said}: the same ones."
    return (f"{said}: in the record, not warned in the drill: "
            f"{', '.join(areas.only_in_record) or 'none'}; warned in the drill, not in the "
            f"record: {', '.join(areas.only_in_drill) or 'none'}.")


def _against_record(report: DrillReport) -> list[str]:
    """The drill beside J-Alert's record, per prefecture and stage (nothing without one)."""
    comparison = report.record
    if comparison is None:
        return []
    tolerance = signed_duration(comparison.tolerance_s).lstrip("+")
    lines = ["", "## Held against the record", "",
             *_wrapped(f"The drill {record_verdict(comparison.matched)} (tolerance "
                       f"{tolerance}; times are the alerts' sent times, JST).", "", ""), "",
             *_wrapped(f"Areas: {areas_text(comparison)}", "", ""), "",
             *_wrapped(f"Record sources: {'; '.join(comparison.sources)}", "- ", "  ")]
    if comparison.notes:
        lines += _wrapped(f"Record notes: {comparison.notes}", "- ", "  ")
    lines += ["", *_table(
        ["Prefecture", "Stage", "Record", "Drill", "Difference", "Verdict"],
        ([r.prefecture, r.stage, jst(r.record_at), jst(r.drill_at),
          None if r.difference_s is None else signed_duration(r.difference_s), r.verdict]
         for r in comparison.rows))]
    return lines


def _refusals(report: DrillReport) -> list[str]:
    """Every refusal note of the drill, and their count judged against expect.refused."""
    results = report.refusals
    count = refusals_text(len(results.rows), results.expected)
    verdict = {True: " (as expected)", False: ": FAIL", None: ""}[results.passed]
    lines = ["", "## Refused inputs and withheld messages", "", f"{count}{verdict}."]
    if results.rows:
        lines += ["", *_table(
            ["#", "Received (real)", "Topic", "Reason"],
            ([n, jst(r.received_at, ms=True), topic_below_root(r.source, report.topic_root),
              r.reason] for n, r in enumerate(results.rows, start=1)))]
    return lines


def _folded_line(report: DrillReport, shown: Sequence[PlaceSummary]) -> list[str]:
    """One line for the quiet rows left out: prefectures counted, the national topic named."""
    prefectures = len(report.per_prefecture) - sum(p.place != NATIONAL for p in shown)
    national = report.national not in shown
    if not prefectures and not national:
        return []
    parts = [f"{prefectures} other prefecture(s)"] if prefectures else []
    parts += ["the national topic"] if national else []
    return ["", f"{' and '.join(parts)}: nothing sent, nothing acknowledged."]


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
    return lines + _folded_line(report, shown)


def _timeline(report: DrillReport) -> list[str]:
    """Two tables, numbered alike: what was sent when, then each alert's identifier and topic."""
    rows = list(enumerate(report.timeline, start=1))
    when = _table(
        ["#", "Sim time", "Created (real)", "Event", "Prefecture", "Stage", "msgType",
         "Published"],
        ([n, jst(e.sim_time), jst(e.created_at, ms=True), e.event_id, e.prefecture or NATIONAL,
          e.stage, e.msg_type, "yes" if e.published else "no"] for n, e in rows))
    names = _table(["#", "Identifier", "Topic"],
                   ([n, e.identifier, topic_below_root(e.topic, report.topic_root)]
                    for n, e in rows))
    below = f" (below {report.topic_root}/)" if report.topic_root else ""
    return ["", "## Timeline", "", *when, "", f"### Identifiers and topics{below}", "",
            *names]


def render_markdown(report: DrillReport, *, compact: bool = False) -> str:
    """The report as Markdown: summary, expectations, the record, refusal notes,
    per-prefecture table, timeline.

    `compact` folds the prefectures that were sent and received nothing into one line
    (the console summary); the written report keeps every row.
    """
    lines = [*_headline(report), *_facts(report), *_expectations(report),
             *_against_record(report), *_refusals(report),
             *_per_prefecture(report, compact), *_timeline(report), *_faults(report)]
    return "\n".join(lines) + "\n"


def _faults(report: DrillReport) -> list[str]:
    """The faults `drill --fault` injected, in order (nothing without faults)."""
    if not report.faults:
        return []
    counts = ", ".join(f"{kind} {n}" for kind, n in sorted(
        Counter(f.kind for f in report.faults).items()))
    return ["", "## Faults", "", f"{len(report.faults)} applied: {counts}", "",
            *_table(["#", "Fault", "Target", "What"],
                    ((n, f.kind, f.target, f.detail)
                     for n, f in enumerate(report.faults, 1)))]


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


def _stage_words(stages: Sequence[str]) -> str:
    return stages_text(stages) if stages else "nothing"


def expectation_lines(expect: Expectations, got: Mapping[str, Sequence[str]],
                      national: bool) -> list[str]:
    """The expectations against what was sent, in words, one line per prefecture checked,
    then the silent prefectures and the national message (for `drill --dry-run`)."""
    lines = []
    for code in sorted({*expect.prefectures, *got}):
        wanted, sent = list(expect.prefectures.get(code, ())), list(got.get(code, ()))
        if code not in expect.prefectures and code in expect.silent_codes():
            continue  # reported with the silent ones below
        verdict = "as expected" if sent == wanted else f"expected {_stage_words(wanted)}"
        lines.append(f"  {code}: sent {_stage_words(sent)} ({verdict})")
    silent = sorted(expect.silent_codes())
    noisy = [f"{code} was sent {_stage_words(got[code])}" for code in silent if got.get(code)]
    label = ", ".join(silent) or "no prefecture"
    if expect.silent == "others":
        label = (f"the {len(silent)} other prefecture(s)" if expect.prefectures
                 else f"all {len(silent)} prefectures")
    lines.append(f"  silent, {label}: " + ("; ".join(noisy) + " (expected nothing)"
                                           if noisy else "nothing sent (as expected)"))
    said = "a national message was sent" if national else "no national message was sent"
    wanted_national = "as expected" if national == expect.national else (
        f"expected {'one' if expect.national else 'none'}")
    lines.append(f"  national: {said} ({wanted_national})")
    return lines
