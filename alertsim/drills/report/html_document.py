"""The HTML report's document sections, in Japanese or English: the heading (the
exercise banner, the verdict and why the drill failed), the scenario's notes and sources,
the texts every alert carried (always both languages, as the alerts did) and the audit log
of operator actions.

The scenario's notes and sources, the failure reasons and the service's answers are shown
as recorded (they are the record's words, not labels).
"""

from __future__ import annotations

from html import escape

from alertsim.drills.report.html_sections import Cell, table_html
from alertsim.drills.report.labels import (
    action_name,
    label,
    place_name,
    stage_name,
    when,
)
from alertsim.drills.report.model import AlertWording, AuditEntry, DrillReport, MessageText
from alertsim.drills.report.render import topic_below_root
from alertsim.i18n import Lang, text

__all__ = ["audit_html", "head_html", "messages_html", "scenario_html", "title_of"]

VERDICT_KEYS = {True: "PASSED", False: "FAILED", None: "NOT_JUDGED"}


def title_of(report: DrillReport) -> str:
    """The scenario's title, else the drill's id, else the record's name."""
    if report.scenario is not None:
        return report.scenario.title
    return report.drill_id or "alertsim"


def _status(report: DrillReport, lang: Lang) -> str:
    status = report.status or "exercise"
    key = f"status.{status}"
    return text("common", key, lang) if status in ("exercise", "test") else status.upper()


def _failures(report: DrillReport, lang: Lang) -> str:
    if not report.failures:
        return ""
    items = "".join(f"<li class='fail'>{escape(line)}</li>" for line in report.failures)
    return (f"<h2 id='failures-title'>{escape(label('section.failures', lang))}</h2>"
            f"<p class='as-recorded'>{escape(label('failures.as_recorded', lang))}</p>"
            f"<ul class='failures' id='failures'>{items}</ul>")


def head_html(report: DrillReport, lang: Lang) -> str:
    """The banner, the title, the verdict with its totals and every reason it failed."""
    verdict = VERDICT_KEYS[report.passed]
    refusals = len(report.refusals.rows)
    summary = label("verdict.summary", lang, verdict=label(f"verdict.{verdict}", lang),
                    alerts=len(report.timeline), deliveries=report.latency.count,
                    refusals=refusals)
    if report.record_matched is not None:
        summary += label("verdict.record_matched" if report.record_matched
                         else "verdict.record_not_matched", lang)
    return (f"<div id='status-banner' data-status='{escape(report.status or 'exercise')}'>"
            f"{escape(_status(report, lang))}: {escape(label('banner.simulated', lang))}</div>"
            f"<h1>{escape(label('title', lang, title=title_of(report)))}</h1>"
            f"<p class='verdict {verdict}'>{escape(summary)}</p>{_failures(report, lang)}")


def scenario_html(report: DrillReport, lang: Lang) -> str:
    """The scenario's notes and sources (nothing without a scenario)."""
    scenario = report.scenario
    if scenario is None:
        return ""
    notes = (f"<p class='notes' id='scenario-notes'>{escape(scenario.notes)}</p>"
             if scenario.notes else f"<p>{escape(label('scenario.no_notes', lang))}</p>")
    sources = ("<ul class='sources' id='scenario-sources'>" + "".join(
        f"<li>{escape(s)}</li>" for s in scenario.sources) + "</ul>"
               if scenario.sources else f"<p>{escape(label('scenario.no_sources', lang))}</p>")
    return (f"<h2>{escape(label('section.scenario', lang))}</h2>"
            f"<h3>{escape(label('scenario.notes', lang))}</h3>{notes}"
            f"<h3>{escape(label('scenario.sources', lang))}</h3>{sources}")


def _wording_rows(ja: AlertWording, en: AlertWording, lang: Lang) -> str:
    parts = ("headline", "description", "instruction")
    return "".join(f"<tr><th>{escape(label(f'text.{part}', lang))}</th>"
                   f"<td lang='ja'>{escape(getattr(ja, part))}</td>"
                   f"<td lang='en'>{escape(getattr(en, part))}</td></tr>" for part in parts)


def _message(number: int, message: MessageText, lang: Lang) -> str:
    places = ("、" if lang == "ja" else ", ").join(place_name(p, lang) for p in message.places)
    said = label("message.caption", lang, number=number, stage=stage_name(message.stage, lang),
                 sent=when(message.sent), places=places, count=len(message.places))
    event = (f" <span class='as-recorded'>{escape(label('message.event', lang))}: "
             f"{escape(message.event_id)}</span>" if message.event_id else "")
    return (f"<div class='message' data-stage='{escape(message.stage or '')}'>"
            f"<h3>{escape(said)}{event}</h3><table><thead><tr><th></th>"
            f"<th class='lang'>{escape(label('text.ja', lang))}</th>"
            f"<th class='lang'>{escape(label('text.en', lang))}</th></tr></thead>"
            f"<tbody>{_wording_rows(message.ja, message.en, lang)}</tbody></table></div>")


def messages_html(report: DrillReport, lang: Lang) -> str:
    """Every wording the drill sent, in Japanese and English, with where it went."""
    body = "".join(_message(n, m, lang) for n, m in enumerate(report.messages, start=1))
    empty = f"<p>{escape(label('messages.none', lang))}</p>"
    return (f"<h2>{escape(label('section.messages', lang))}</h2>"
            f"<section id='messages'>{body or empty}</section>")


def _answer(answer: str | None, lang: Lang) -> Cell:
    """The service's answer: applied, or the reason it refused, as recorded."""
    if answer is None:
        return label("audit.no_answer", lang)
    return (label("audit.applied", lang), "pass") if answer == "applied" else (answer, "fail")


def _audit_row(number: int, entry: AuditEntry, report: DrillReport, lang: Lang) -> list[Cell]:
    return [str(number), when(entry.received_at, ms=True),
            entry.by or label("audit.unknown_by", lang), action_name(entry.action, lang),
            entry.event_id, _answer(entry.answer, lang),
            topic_below_root(entry.source, report.topic_root)]


def audit_html(report: DrillReport, lang: Lang) -> str:
    """The operator actions of the drill, in order, with the service's answers."""
    title = f"<h2>{escape(label('section.audit', lang))}</h2>"
    if not report.audit:
        return f"{title}<p id='audit-none'>{escape(label('audit.none', lang))}</p>"
    headers = [label(k, lang) for k in ("col.number", "col.received", "col.by", "col.action",
                                        "col.event", "col.answer", "col.topic")]
    rows = (_audit_row(n, a, report, lang) for n, a in enumerate(report.audit, start=1))
    return title + table_html(headers, rows, "audit")
