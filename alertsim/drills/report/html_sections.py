"""The HTML report's judging sections, in Japanese or English: the drill's facts, the
expectations (with the reason of every failed check), the drill held against J-Alert's
record, refused inputs (kept and counted) and the per-place table.

Labels come from the report catalogue (`labels`); what the record says in words (reasons,
topics, sources) is escaped and shown as recorded.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from html import escape

from alertsim.drills.report.against_record import signed_duration
from alertsim.drills.report.labels import (
    label,
    place_name,
    stage_words,
    stages_label,
    when,
)
from alertsim.drills.report.model import Check, DrillReport, RecordRow
from alertsim.drills.report.render import topic_below_root
from alertsim.i18n import Lang

__all__ = ["Cell", "expectations_html", "facts_html", "per_place_html", "record_html",
           "refusals_html", "table_html"]

Cell = str | tuple[str, str]  # text, or (text, css class); escaped by table_html


def table_html(headers: Sequence[str], rows: Iterable[Sequence[Cell]], element_id: str) -> str:
    """A table with a header row (repeated on every printed page), cells escaped."""
    def cell(value: Cell) -> str:
        said, css = (value, "") if isinstance(value, str) else value
        return f"<td class='{css}'>{escape(said)}</td>" if css else f"<td>{escape(said)}</td>"

    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(cell(c) for c in row) + "</tr>" for row in rows)
    return f"<table id='{element_id}'><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _result(passed: bool, lang: Lang) -> Cell:
    return (label("result.pass", lang), "pass") if passed else (label("result.fail", lang),
                                                                  "fail")


def facts_html(report: DrillReport, lang: Lang) -> str:
    """The drill's settings as a list; unknown ones are left out."""
    scenario = report.scenario
    facts = [("fact.drill", report.drill_id), ("fact.scenario", scenario and scenario.path),
             ("fact.kind", scenario and scenario.kind), ("fact.date", scenario and scenario.date),
             ("fact.policy", report.policy), ("fact.speed", report.speed and f"{report.speed:g}x"),
             ("fact.broker", report.broker), ("fact.topic_root", report.topic_root),
             ("fact.started", report.started_at and when(report.started_at)),
             ("fact.finished", report.finished_at and when(report.finished_at)),
             ("fact.event", report.event_id)]
    items = "".join(f"<li>{escape(label(key, lang))}: {escape(str(value))}</li>"
                    for key, value in facts if value)
    return f"<ul class='facts'>{items}<li>{escape(label('fact.times', lang))}</li></ul>"


def _basis(basis: str, lang: Lang) -> str:
    """What a check compared, in `lang` (the judge's three wordings; others as given)."""
    who = basis.removeprefix("acknowledged by ")
    if who != basis:
        return label("basis.acknowledged", lang, receivers=who)
    known = {"stages sent": "basis.sent", "stages sent (no receiver)": "basis.no_receiver"}
    return label(known[basis], lang) if basis in known else basis


def _reason(check: Check, lang: Lang) -> str:
    if check.passed:
        return ""
    return label("check.reason", lang, expected=stage_words(check.expected, lang),
                 actual=stage_words(check.actual, lang))


def expectations_html(report: DrillReport, lang: Lang) -> str:
    """The checks, each failed one with its reason, then every failure as recorded."""
    results = report.expectations
    if not results.judged:
        return f"<p>{escape(label('expect.not_judged', lang, note=results.note))}</p>"
    rows = ([place_name(c.subject, lang) if c.subject != "silent" else
             label("check.silent", lang), stage_words(c.expected, lang),
             stage_words(c.actual, lang), _basis(c.basis, lang), _result(c.passed, lang),
             (_reason(c, lang), "fail")] for c in results.checks)
    headers = [label(k, lang) for k in ("col.check", "col.expected", "col.actual",
                                        "col.basis", "col.result", "col.reason")]
    return table_html(headers, rows, "expectations")


def _record_row(row: RecordRow, lang: Lang) -> list[Cell]:
    verdict = label(f"verdict.{row.verdict.replace(' ', '_')}", lang)
    return [place_name(row.prefecture, lang), stages_label([row.stage], lang),
            when(row.record_at), when(row.drill_at),
            "—" if row.difference_s is None else signed_duration(row.difference_s),
            (verdict, "pass" if row.verdict == "within tolerance" else "fail")]


def record_html(report: DrillReport, lang: Lang) -> str:
    """The drill beside J-Alert's record, or nothing when the scenario has none."""
    comparison = report.record
    if comparison is None:
        return ""
    areas = comparison.areas
    verdict = "PASSED" if comparison.matched else "FAILED"
    said = label("record.matched" if comparison.matched else "record.not_matched", lang,
                 tolerance=signed_duration(comparison.tolerance_s).lstrip("+"))
    names = ", ".join
    lines = [label("record.areas", lang, record=names(areas.record) or "—",
                   drill=names(areas.drill) or "—",
                   only_record=names(areas.only_in_record) or "—",
                   only_drill=names(areas.only_in_drill) or "—")]
    sources = "".join(f"<li>{escape(s)}</li>" for s in comparison.sources)
    notes = (f"<p class='notes'>{escape(label('record.notes', lang))}: "
             f"{escape(comparison.notes)}</p>" if comparison.notes else "")
    headers = [label(k, lang) for k in ("col.prefecture", "col.stage", "col.record_at",
                                        "col.drill_at", "col.difference", "col.verdict")]
    return (f"<h2>{escape(label('section.record', lang))}</h2>"
            f"<p class='{verdict}' id='record-verdict'>{escape(said)}</p>"
            f"<p>{escape(lines[0])}</p><p>{escape(label('record.sources', lang))}:</p>"
            f"<ul class='sources'>{sources}</ul>{notes}"
            + table_html(headers, (_record_row(r, lang) for r in comparison.rows), "record"))


def _count_line(report: DrillReport, lang: Lang) -> tuple[str, str]:
    results = report.refusals
    count = len(results.rows)
    said = (label("refusals.count", lang, count=count) if results.expected is None else
            label("refusals.count_expected", lang, count=count, expected=results.expected))
    verdict = {True: label("refusals.as_expected", lang), False: label("result.fail", lang),
               None: ""}[results.passed]
    css = {True: "pass", False: "fail", None: ""}[results.passed]
    return f"{said}{' — ' + verdict if verdict else ''}", css


def refusals_html(report: DrillReport, lang: Lang) -> str:
    """Every refusal note with its reason, then the refusals only counted, per client."""
    said, css = _count_line(report, lang)
    results, root = report.refusals, report.topic_root
    headers = [label(k, lang) for k in ("col.number", "col.received", "col.topic",
                                        "col.reason_recorded")]
    kept = table_html(headers, ([str(n), when(r.received_at, ms=True),
                                 topic_below_root(r.source, root), r.reason]
                                for n, r in enumerate(results.rows, start=1)),
                      "refusals") if results.rows else ""
    counted = ""
    if results.counted:
        headers = [label(k, lang) for k in ("col.topic", "col.count", "col.bytes",
                                            "col.first", "col.last")]
        counted = (f"<p>{escape(label('refusals.counted', lang))}</p>" + table_html(
            headers, ([topic_below_root(c.source, root), str(c.count), str(c.bytes),
                       when(c.first_at), when(c.last_at)] for c in results.counted),
            "refusal-counts"))
    return (f"<h2>{escape(label('section.refusals', lang))}</h2>"
            f"<p class='{css}' id='refusal-count'>{escape(said)}</p>{kept}{counted}")


def per_place_html(report: DrillReport, lang: Lang) -> str:
    """Each place that was sent or acknowledged anything: stages, deliveries, latency."""
    headers = [label(k, lang) for k in ("col.place", "col.stages_sent", "col.deliveries",
                                        "col.missed", "col.duplicates", "col.p50")]
    rows = ([place_name(p.place, lang), stages_label(p.stages_sent, lang), str(p.deliveries),
             str(p.missed), str(p.duplicates),
             "—" if p.latency.p50_ms is None else f"{p.latency.p50_ms:g}"]
            for p in (*report.per_prefecture, report.national) if p.stages_sent or p.deliveries)
    return table_html(headers, rows, "per-place")
