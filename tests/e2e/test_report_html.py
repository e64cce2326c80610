"""The HTML drill report of every shipped scenario: written beside the .md and .json by the
drill, rebuilt identically by `alertsim report --format html`, and opened from disk in
headless Debian chromium with no request leaving the file, no console error, and a map
whose `data-state`s are the record's final states."""

from __future__ import annotations

import asyncio
import io
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import pytest

from alertsim.adapters.sqlite.store import Store
from alertsim.brokers.brokers import MosquittoBroker
from alertsim.cli import main
from alertsim.domain.vocabulary import PREFECTURE_CODES
from alertsim.drills.report.render import MAX_LINE
from alertsim.drills.runner import DrillOptions, DrillOutcome, run_drill
from alertsim.i18n import text

T = TypeVar("T")
ROOT = Path(__file__).resolve().parents[2]
SCENARIOS = sorted((ROOT / "scenarios").glob("*.yaml"))
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
SPEED = 1200.0
# The map state a prefecture is left in by the last stage it was sent (the test's own copy).
STATE_AFTER = {"shelter": "shelter", "imminent": "shelter", "passed": "passed",
               "fell_land": "fell", "fell_sea": "fell", "cancel": "cancelled"}


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Debian's chromium, headless, through Playwright (no browser is downloaded)."""
    from playwright.sync_api import sync_playwright

    assert CHROMIUM.exists(), "Debian's chromium is missing: scripts/test installs it"
    with sync_playwright() as driver:
        launched = driver.chromium.launch(executable_path=str(CHROMIUM), headless=True,
                                          args=CHROMIUM_ARGS)
        yield launched
        launched.close()


def final_states(db: Path) -> dict[str, str]:
    """Each prefecture's state after the last alert the record shows it was sent."""
    async def read() -> dict[str, str]:
        async with await Store.open(db) as store:
            rows = await store.views.outbox(kind="alert")
        states = dict.fromkeys(PREFECTURE_CODES, "none")
        for row in rows:
            if row.prefecture is not None:
                states[row.prefecture] = STATE_AFTER[str(row.stage)]
        return states

    return in_thread(asyncio.run, read())


def open_page(browser: Any, path: Path, shot: Path) -> tuple[Any, list[str]]:
    """The page loaded from disk, and every problem seen: failed or non-file requests,
    console errors, page errors."""
    page = browser.new_page(viewport={"width": 1280, "height": 800})
    problems: list[str] = []
    page.on("requestfailed", lambda r: problems.append(f"request failed: {r.url}"))
    page.on("request", lambda r: None if r.url.startswith("file://")
            else problems.append(f"request: {r.url}"))
    page.on("console", lambda m: problems.append(f"console {m.type}: {m.text}")
            if m.type in ("error", "warning") else None)
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    page.goto(path.as_uri(), wait_until="load")
    page.screenshot(path=str(shot), full_page=True)
    return page, problems


def in_thread(function: Callable[..., T], *args: Any) -> T:
    """Run `function` in a thread of its own: Playwright's sync API holds this thread's
    event loop, and the drill and the CLI run theirs with asyncio.run."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(function, *args).result()


def drill(path: Path, reports: Path, url: str) -> DrillOutcome:
    return in_thread(asyncio.run, run_drill(DrillOptions(
        scenario_path=path, speed=SPEED, broker_url=url, reports_dir=reports,
        out=io.StringIO(), settle_timeout_s=10.0, quiet_s=0.3)))


OVERFLOW_JS = """(width) => [...document.querySelectorAll('body *')]
  .filter(e => !(e.ownerSVGElement))
  .map(e => [e.tagName + (e.id ? '#' + e.id : ''), e.getBoundingClientRect().right])
  .filter(([, right]) => right > width + 0.5)
  .concat(document.documentElement.scrollWidth > width
          ? [['scrollWidth', document.documentElement.scrollWidth]] : [])"""
# SVG shapes are clipped by their <svg>: the <svg> box counts, not the shapes inside.
PRINTABLE_PX = round((210.0 - 2 * 12.0) / 25.4 * 96)  # A4 less html_style's 12 mm margins


@pytest.mark.mosquitto
@pytest.mark.parametrize("path", SCENARIOS, ids=[p.stem for p in SCENARIOS])
def test_html_report_renders_with_the_end_state(path: Path, tmp_path: Path, browser: Any,
                                                mosquitto: MosquittoBroker) -> None:
    """Every scenario's drill writes report.html; it renders cleanly and shows the end state."""
    outcome = drill(path, tmp_path / "reports", mosquitto.url)
    html = outcome.html_path
    assert html is not None
    assert (html.parent, html.stem) == (outcome.markdown_path.parent, outcome.json_path.stem)
    # The drill's own report knows when it finished, and its Markdown keeps to 160 columns.
    markdown = outcome.markdown_path.read_text("utf-8")
    assert outcome.report.finished_at is not None
    assert "\n- Finished: " in markdown
    assert max(map(len, markdown.splitlines())) <= MAX_LINE

    rebuilt = tmp_path / "rebuilt.html"
    argv = ["report", str(outcome.db_path), "--format", "html", "--out", str(rebuilt)]
    assert in_thread(main, argv) == 0
    assert rebuilt.read_text("utf-8") == html.read_text("utf-8")

    page, problems = open_page(browser, html, tmp_path / f"{path.stem}.png")
    try:
        shown = dict(page.eval_on_selector_all(
            "#end-state [data-code]", "els => els.map(e => [e.dataset.code, e.dataset.state])"))
        steps = page.locator(".steps figure").count()
        banner = page.locator("#status-banner").inner_text()
        banner_status = page.locator("#status-banner").get_attribute("data-status")
        # Printed on A4: no element wider than the printable width (every scenario's maps,
        # timeline and tables; tests/e2e/test_report_document.py prints the PDF itself).
        page.set_viewport_size({"width": PRINTABLE_PX, "height": 1000})
        page.emulate_media(media="print")
        too_wide = page.evaluate(OVERFLOW_JS, PRINTABLE_PX)
    finally:
        page.close()
    assert problems == []
    assert too_wide == []
    assert shown == final_states(outcome.db_path)
    assert (steps > 0) == any(row.prefecture for row in outcome.report.timeline)
    # The drill's page is in Japanese, the pages' default: 訓練 (Exercise) or 試験 (Test).
    status = outcome.report.status or "exercise"
    assert (banner_status, banner.split(":")[0]) == (status, text("common", f"status.{status}",
                                                                  "ja"))
    assert "<script" not in html.read_text("utf-8")
