"""The HTML report as the document handed to a superior, from a real drill's record: the
alert texts in Japanese and English, the scenario's notes and sources, the reason of every
failed check, refused inputs with their reasons, the audit log, in Japanese (the default)
and English; and printed by Debian chromium to A4 with no element wider than the page.

The drill is the Okinawa demo (2023-11-21) expecting one stage too few, so a check fails
for a real reason. After it, a refused input, a refusal counter and two operator actions
(one applied, one refused) are written to its record through the store's own write
methods, as the service writes them, and the report is rebuilt from the record.
"""

from __future__ import annotations

import asyncio
import io
import json
import re
from dataclasses import dataclass
from datetime import timedelta
from html import escape
from pathlib import Path
from typing import Any

import pytest

from alertsim.adapters.sqlite.store import Store
from alertsim.brokers.brokers import MosquittoBroker
from alertsim.cli import main
from alertsim.drills.report import DrillReport, build_report
from alertsim.drills.report.html import build_html
from alertsim.drills.report.labels import label
from alertsim.drills.runner import DrillOptions, run_drill
from alertsim.i18n import LANGS
from alertsim.service.clock import real_now
from alertsim.service.records import RefusalCount
from tests.e2e.test_report_html import OVERFLOW_JS, PRINTABLE_PX, in_thread
from tests.e2e.test_report_html import browser as fixture_browser

ROOT = Path(__file__).resolve().parents[2]
OKINAWA = ROOT / "scenarios" / "2023-11-21-chollima-1.yaml"
REFUSAL = "detection: launch.time is after observed_at"
REFUSED_ACTION = "close: no open event 2023-11-21-sohae"

browser = fixture_browser  # the module-scoped chromium of test_report_html


@dataclass(frozen=True)
class Document:
    report: DrillReport
    pages: dict[str, Path]  # lang -> the HTML file


async def _annotate(db: Path) -> None:
    """Write what the drill did not produce, as the service would have recorded it."""
    now = real_now()
    async with await Store.open(db) as store:
        drill = (await store.drills.drills())[-1]
        root = json.loads(drill.settings_json)["topic_root"]
        await store.record.record_rejected(raw=b'{"event_id": "x"}', reason=REFUSAL,
                                           source=f"{root}/detections", received_at=now)
        await store.record.count_refusals([RefusalCount(
            source=f"{root}/detections", count=7, bytes=700, at=now)])
        await store.record.record_operator_action(
            raw=b"{}", event_id="2023-11-21-sohae", action="cancel",
            source=f"{root}/operator", received_at=now + timedelta(seconds=1), by="operator")
        await store.record.record_refused_action(
            raw=b"{}", event_id="2023-11-21-sohae", action="close",
            source=f"{root}/operator", received_at=now + timedelta(seconds=2), by="operator",
            reason=REFUSED_ACTION)


async def _pages(db: Path, folder: Path) -> tuple[DrillReport, dict[str, Path]]:
    async with await Store.open(db) as store:
        report = await build_report(store)
        pages: dict[str, Path] = {}
        for lang in LANGS:
            pages[lang] = folder / f"report-{lang}.html"
            pages[lang].write_text(await build_html(store, report, lang), "utf-8")
    return report, pages


@pytest.fixture(scope="module")
def document(tmp_path_factory: pytest.TempPathFactory,
             mosquitto: MosquittoBroker) -> Document:
    """The Okinawa drill (one check made to fail), annotated, reported in ja and en."""
    folder = tmp_path_factory.mktemp("document")
    scenario = folder / OKINAWA.name
    scenario.write_text(OKINAWA.read_text("utf-8").replace(
        '"47": [shelter, passed]', '"47": [shelter]'), "utf-8")
    outcome = in_thread(asyncio.run, run_drill(DrillOptions(
        scenario_path=scenario, speed=1200.0, broker_url=mosquitto.url,
        reports_dir=folder / "reports", out=io.StringIO(), settle_timeout_s=10.0,
        quiet_s=0.3)))
    in_thread(asyncio.run, _annotate(outcome.db_path))
    report, pages = in_thread(asyncio.run, _pages(outcome.db_path, folder))
    return Document(report, pages)


def test_the_document_holds_texts_notes_sources_reasons_refusals_and_actions(
        document: Document) -> None:
    """Both languages' pages hold the texts in ja and en, the scenario's notes and sources,
    every failure reason, the refused input and counter, and both operator actions."""
    report = document.report
    assert report.passed is False
    assert report.scenario is not None
    assert any(f.startswith("47: ") for f in report.failures)  # the check made to fail
    assert [m.stage for m in report.messages] == ["shelter", "passed"]
    # The scenario's own close, as the drill sent it, then the two written after it.
    assert [(a.action, a.answer, a.by) for a in report.audit] == [
        ("close", "applied", None), ("cancel", None, "operator"),
        ("close", REFUSED_ACTION, "operator")]
    assert [(c.count, c.bytes) for c in report.refusals.counted] == [(7, 700)]
    for lang in LANGS:
        path = document.pages[lang]
        page = path.read_text("utf-8")
        assert f"<html lang='{lang}'>" in page
        for message in report.messages:
            for said in (message.ja.description, message.en.description,
                         message.ja.instruction, message.en.headline):
                assert escape(said) in page, (lang, said)
        assert escape(report.scenario.notes) in page
        assert all(escape(source) in page for source in report.scenario.sources)
        assert all(f"<li class='fail'>{escape(f)}</li>" in page for f in report.failures)
        assert escape(REFUSAL) in page
        assert "<table id='refusal-counts'>" in page
        audit = page[page.index("<table id='audit'>"):]
        audit = audit[:audit.index("</table>")]
        assert audit.count("<tr>") == 1 + len(report.audit)
        assert f"<td>{escape(label('audit.unknown_by', lang))}</td>" in audit  # the drill's
        assert f"<td class='fail'>{escape(REFUSED_ACTION)}</td>" in audit
        assert "<section id='zoom'><svg" in page


def test_the_pages_speak_their_language(document: Document) -> None:
    """Japanese by default: the CLI's rebuild is the ja page; labels differ by language."""
    ja, en = (document.pages[lang].read_text("utf-8") for lang in ("ja", "en"))
    assert all(word in ja for word in ("訓練報告書", "伝達した文面", "操作記録"))
    assert all(word in en for word in ("Drill report", "The texts sent", "Operator actions"))
    assert all(word not in en for word in ("訓練報告書", "伝達した文面", "操作記録"))
    db = next(document.pages["ja"].parent.glob("reports/*.db"))
    rebuilt = document.pages["ja"].parent / "rebuilt.html"
    assert in_thread(main, ["report", str(db), "--format", "html", "--out", str(rebuilt)]) == 0
    assert rebuilt.read_text("utf-8") == ja


def _overflow(browser: Any, path: Path, pdf: Path) -> list[list[Any]]:
    """Elements wider than A4's printable width in print media; the PDF printed too."""
    page = browser.new_page(viewport={"width": PRINTABLE_PX, "height": 1000})
    try:
        page.goto(path.as_uri(), wait_until="load")
        page.emulate_media(media="print")
        wide: list[list[Any]] = page.evaluate(OVERFLOW_JS, PRINTABLE_PX)
        page.pdf(path=str(pdf), format="A4")
        # The check can fail: a planted element wider than the page is caught.
        page.evaluate("document.body.insertAdjacentHTML('beforeend', "
                      "`<div id='planted' style='width:2000px'>x</div>`)")
        planted = page.evaluate(OVERFLOW_JS, PRINTABLE_PX)
    finally:
        page.close()
    assert ["DIV#planted", pytest.approx(2000, abs=40)] in [[n, r] for n, r in planted]
    return wide


@pytest.mark.parametrize("lang", ["ja", "en"])
def test_the_document_prints_on_a4_with_nothing_wider_than_the_page(
        document: Document, browser: Any, lang: str, tmp_path: Path) -> None:
    """Printed by chromium at A4: a PDF of A4 pages, and in print media no element's right
    edge passes the printable width (the timeline, maps and tables included)."""
    pdf = tmp_path / f"report-{lang}.pdf"
    assert _overflow(browser, document.pages[lang], pdf) == []
    data = pdf.read_bytes()
    assert data.startswith(b"%PDF")
    # Every page A4 in PDF points (595.28 x 841.89), give or take chromium's rounding.
    boxes = re.findall(rb"/MediaBox\s*\[\s*0 0 ([\d.]+) ([\d.]+)\s*\]", data)
    assert len(boxes) >= 3  # a document of several pages, not one cut page
    assert all(abs(float(w) - 595.28) < 2 and abs(float(h) - 841.89) < 2 for w, h in boxes)
