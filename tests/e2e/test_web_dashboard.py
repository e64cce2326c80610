"""The live dashboard in headless chromium: `alertsim drill SCENARIO --dashboard` on a real
Mosquitto, the page's prefecture states and `/api/state` followed through a drill.

Drills run as the installed console script, as an operator would start them; the tests
read the page contract only (`data-code`/`data-state`, `#status-banner`,
`data-identifier`, `/api/state`) and save screenshots (see `tests/browser.artifacts_dir`).
"""

from __future__ import annotations

import asyncio
import sys
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import aiomqtt
import pytest
import yaml

from alertsim.brokers.brokers import MosquittoBroker
from alertsim.domain.vocabulary import PREFECTURE_CODES
from alertsim.testing import eventually
from alertsim.web.live import display_state, parse_state
from tests.browser import Watched, artifacts_dir, chromium_page
from tests.helpers import restore_sigint

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = Path(sys.executable).with_name("alertsim")
SCENARIOS = ROOT / "scenarios"
START_TIMEOUT_S = 90.0  # a loaded 2-core machine: broker, 47 receivers and the page
STATE_TIMEOUT_S = 60.0  # scenario minutes at the drill's speed, plus slack
AGREE_WITHIN_S = 1.0  # acceptance: page and /api/state follow each retained state in 1 s

pytestmark = [pytest.mark.mosquitto, pytest.mark.slow]


@dataclass
class Drill:
    """A running `alertsim drill --dashboard` and what it printed so far."""

    process: asyncio.subprocess.Process
    url: str
    lines: list[str]
    root: str

    def printed(self, text: str) -> bool:
        return any(text in line for line in self.lines)


@asynccontextmanager
async def dashboard_drill(scenario: Path, tmp_path: Path, broker: MosquittoBroker, *,
                          speed: float, extra: Sequence[str] = ()) -> AsyncIterator[Drill]:
    """The drill running with its dashboard; Ctrl-C (SIGINT) and a clean exit at the end."""
    root = f"test/dashboard/{uuid.uuid4().hex[:10]}"
    stderr = (tmp_path / "drill-stderr.log").open("wb")
    process = await asyncio.create_subprocess_exec(
        str(SCRIPT), "drill", str(scenario), "--dashboard", "--port", "0",
        "--broker", broker.url, "--topic-root", root, "--speed", f"{speed:g}",
        "--reports", str(tmp_path / "reports"), *extra, stdout=asyncio.subprocess.PIPE,
        stderr=stderr, preexec_fn=restore_sigint)
    lines: list[str] = []

    async def read() -> None:
        assert process.stdout is not None
        async for raw in process.stdout:
            lines.append(raw.decode("utf-8", "replace").rstrip("\n"))

    reader = asyncio.create_task(read(), name="drill-stdout")

    def url() -> str | None:
        if process.returncode is not None:
            raise AssertionError(f"drill exited {process.returncode}: {lines}")
        return next((line.split("dashboard: ", 1)[1].strip() for line in lines
                     if "dashboard: " in line), None)

    try:
        found = await eventually(url, timeout=START_TIMEOUT_S, what="dashboard URL printed")
        yield Drill(process, found, lines, root)
    finally:
        if process.returncode is None:
            process.send_signal(2)  # SIGINT: what Ctrl-C sends
        try:
            async with asyncio.timeout(60):
                await process.wait()
        except TimeoutError:
            process.kill()
            await process.wait()
        await reader
        stderr.close()


# 2017-08-29's recipients: the Tohoku block and its related areas (docs/jalert.md).
BLOCK_2017 = ("01", "02", "03", "04", "05", "06", "07", "08", "09", "10", "15", "20")

def trimmed(scenario: Path, tmp_path: Path, *, detections: int,
            expect: dict[str, list[str]] | None = None) -> Path:
    """The scenario with only its first `detections` detections and no operator actions
    (the test sends those itself), expecting `expect` (default: as shipped); no longer the
    historical replay, so without its record."""
    doc = yaml.safe_load(scenario.read_text("utf-8"))
    doc["timeline"] = [e for e in doc["timeline"] if "detection" in e][:detections]
    doc.pop("record", None)
    if expect is not None:
        doc["expect"]["prefectures"] = expect
    path = tmp_path / scenario.name
    path.write_text(yaml.safe_dump(doc, allow_unicode=True), "utf-8")
    return path


async def api_state(page: Watched, url: str) -> dict[str, object]:
    response = await page.page.request.get(f"{url}api/state")
    assert response.ok
    body: dict[str, object] = await response.json()
    return body


async def wait_for_states(page: Watched, url: str, wanted: dict[str, str], *,
                          timeout: float = STATE_TIMEOUT_S) -> None:  # noqa: ASYNC109
    """Until the page shows `wanted`; every other prefecture must read none at every look,
    on the page and in /api/state."""

    async def check() -> bool:
        shown = await page.states()
        assert set(shown) == set(PREFECTURE_CODES)
        others = {c: s for c, s in shown.items() if c not in wanted and s != "none"}
        assert others == {}, f"only {sorted(wanted)} may change, the page shows {others}"
        api = await api_state(page, url)
        prefectures = api["prefectures"]
        assert isinstance(prefectures, dict)
        api_others = {c: s for c, s in prefectures.items() if c not in wanted and s != "none"}
        assert api_others == {}, f"/api/state shows {api_others}"
        return all(shown[c] == s and prefectures[c] == s for c, s in wanted.items())

    await eventually(check, timeout=timeout, interval=0.1, what=f"page shows {wanted}")


async def operator(broker: MosquittoBroker, root: str, action: str, event_id: str) -> None:
    """`alertsim cancel|close EVENT_ID` on the drill's tree, as the operator types it; it
    exits 0 once the service has applied the action."""
    process = await asyncio.create_subprocess_exec(
        str(SCRIPT), action, event_id, "--broker", broker.url, "--topic-root", root,
        "--timeout", "30", stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        preexec_fn=restore_sigint)
    output, _ = await process.communicate()
    assert process.returncode == 0, output.decode("utf-8", "replace")


# Every data-state change on the page, in order, as [code, state] pairs: a history the
# test reads afterwards, so a short-lived state cannot slip between two looks. It starts
# with the states already shown (a fast drill may be ahead of the page's first look).
HISTORY_JS = """() => {
    window.stateHistory = [...document.querySelectorAll('g.prefecture[data-code]')]
        .filter(g => g.dataset.state !== 'none').map(g => [g.dataset.code, g.dataset.state]);
    const observer = new MutationObserver(changes => {
        for (const change of changes) {
            const g = change.target;
            window.stateHistory.push([g.dataset.code, g.dataset.state]);
        }
    });
    for (const g of document.querySelectorAll('g.prefecture[data-code]')) {
        observer.observe(g, {attributes: true, attributeFilter: ['data-state']});
    }
}"""


def changes_of(history: list[list[str]]) -> dict[str, list[str]]:
    """Per prefecture, its states in order, repeats folded."""
    seen: dict[str, list[str]] = {}
    for code, state in history:
        states = seen.setdefault(code, [])
        if not states or states[-1] != state:
            states.append(state)
    return seen


def assert_offline_and_clean(page: Watched, url: str) -> None:
    """The page asked nothing of the outside world and logged no error."""
    assert [r for r in page.requests if not r.startswith(url)] == []
    assert page.failed == []
    assert page.console_errors == []


async def test_2023_scenario_as_shipped_runs_okinawa_through_its_stages(
        mosquitto: MosquittoBroker, tmp_path: Path) -> None:
    """The 2023-11-21 scenario file as shipped, with its own close: Okinawa (47) goes
    shelter, passed (which lifts the call, the 2023 rule), none, in that order, and no
    other prefecture ever changes (every data-state change on the page is recorded)."""
    scenario = SCENARIOS / "2023-11-21-chollima-1.yaml"
    shots = artifacts_dir(tmp_path, "dashboard-2023-11-21-shipped")
    async with dashboard_drill(scenario, tmp_path, mosquitto, speed=60) as drill, \
            chromium_page() as page:
        await page.page.goto(drill.url)
        await page.page.evaluate(HISTORY_JS)
        await wait_for_states(page, drill.url, {"47": "shelter"})
        await page.page.screenshot(path=shots / "okinawa-shelter.png")
        await eventually(lambda: drill.printed("timeline played"), timeout=STATE_TIMEOUT_S,
                         what="the timeline played, its close included")
        await wait_for_states(page, drill.url, {"47": "none"})
        history: list[list[str]] = await page.page.evaluate("() => window.stateHistory")
        assert changes_of(history) == {"47": ["shelter", "passed", "none"]}
        assert_offline_and_clean(page, drill.url)
    assert drill.process.returncode == 0, drill.lines[-20:]


async def test_okinawa_shelter_cancelled_then_none(
        mosquitto: MosquittoBroker, tmp_path: Path) -> None:
    """2023-11-21's first detection, the operator's actions typed as `alertsim cancel` and
    `alertsim close` while the drill waits (the call still standing): Okinawa (47) turns
    shelter, cancelled, and none once the event closes; every other prefecture stays none
    throughout."""
    scenario = trimmed(SCENARIOS / "2023-11-21-chollima-1.yaml", tmp_path, detections=1,
                       expect={"47": ["shelter", "cancel"]})
    shots = artifacts_dir(tmp_path, "dashboard-2023-11-21")
    async with dashboard_drill(scenario, tmp_path, mosquitto, speed=60) as drill, \
            chromium_page() as page:
        await page.page.goto(drill.url)
        banner = await page.page.locator("#status-banner").inner_text()
        assert "EXERCISE" in banner
        await wait_for_states(page, drill.url, {"47": "shelter"})
        await page.page.screenshot(path=shots / "1-okinawa-shelter.png")
        await eventually(lambda: drill.printed("timeline played"), timeout=STATE_TIMEOUT_S,
                         what="timeline played, the drill waiting for the operator")
        await operator(mosquitto, drill.root, "cancel", "2023-11-21-sohae")
        await wait_for_states(page, drill.url, {"47": "cancelled"})
        rows = page.page.locator("#message-log tr[data-identifier]")
        stages = await rows.evaluate_all("rows => rows.map(r => r.dataset.stage)")
        assert stages == ["shelter", "cancel"]  # logged before the state changed
        await page.page.screenshot(path=shots / "2-okinawa-cancelled.png")
        await operator(mosquitto, drill.root, "close", "2023-11-21-sohae")
        await wait_for_states(page, drill.url, {"47": "none"})
        assert_offline_and_clean(page, drill.url)
    assert drill.process.returncode == 0, drill.lines[-20:]  # expectations met, report written
    assert any(line.startswith("report: ") for line in drill.lines)


async def test_2017_twelve_prefectures_shelter_and_no_other(
        mosquitto: MosquittoBroker, tmp_path: Path) -> None:
    """2017-08-29 under the block rule of its day: the 12 prefectures J-Alert warned (the
    Tohoku block and its related areas), and no other, turn shelter."""
    scenario = SCENARIOS / "2017-08-29-hwasong-12.yaml"
    shots = artifacts_dir(tmp_path, "dashboard-2017-08-29")
    async with dashboard_drill(scenario, tmp_path, mosquitto, speed=30) as drill, \
            chromium_page() as page:
        await page.page.goto(drill.url)
        await wait_for_states(page, drill.url, dict.fromkeys(BLOCK_2017, "shelter"))
        # The track follows the decision in the next frame (at most 0.2 s): there before the shot.
        await page.page.locator("polyline.track").first.wait_for(state="attached",
                                                                  timeout=30_000)
        await page.page.screenshot(path=shots / "block-2017-twelve-shelter.png")
        api = await api_state(page, drill.url)
        assert api["status"] == "Exercise"
        prefectures = api["prefectures"]
        assert isinstance(prefectures, dict)
        assert {c for c, s in prefectures.items() if s == "shelter"} == set(BLOCK_2017)
        assert_offline_and_clean(page, drill.url)


async def test_salvo_page_and_api_follow_the_retained_states(
        mosquitto: MosquittoBroker, tmp_path: Path) -> None:
    """Salvo: after each retained state/{code} message, /api/state and the page agree with
    every retained state within 1 s."""
    retained = dict.fromkeys(PREFECTURE_CODES, "none")
    arrivals: list[float] = []
    shown: set[str] = set()
    loop = asyncio.get_running_loop()
    scenario = SCENARIOS / "salvo-three-launches.yaml"
    shots = artifacts_dir(tmp_path, "dashboard-salvo")
    async with dashboard_drill(scenario, tmp_path, mosquitto, speed=60) as drill, \
            aiomqtt.Client("127.0.0.1", mosquitto.port,
                           identifier=f"test-state-{uuid.uuid4().hex[:8]}") as client, \
            chromium_page() as page:
        await client.subscribe(f"{drill.root}/exercise/state/+", qos=1)

        async def listen() -> None:
            async for message in client.messages:
                code = str(message.topic).rsplit("/", 1)[1]
                payload = message.payload
                assert isinstance(payload, bytes)
                retained[code] = display_state(parse_state(payload))
                arrivals.append(loop.time())

        def over() -> bool:  # the timeline played and every event closed
            return drill.printed("timeline played") and set(retained.values()) == {"none"}

        listener = asyncio.create_task(listen(), name="retained-states")
        await page.page.goto(drill.url)
        checked = 0
        try:
            while not (over() and checked == len(arrivals) > 0):
                if checked == len(arrivals):
                    await eventually(partial(news, arrivals, checked, over),
                                     timeout=STATE_TIMEOUT_S, what="a retained state")
                    continue
                checked = len(arrivals)
                await agree_in_time(page, drill.url, retained, arrivals, checked)
                if "shelter" in retained.values() and "shelter" not in shown:
                    await page.page.screenshot(path=shots / "salvo-first-shelter.png")
                shown |= set(retained.values())
            await page.page.screenshot(path=shots / "salvo-end.png")
        finally:
            listener.cancel()
        assert_offline_and_clean(page, drill.url)
    assert checked >= 6  # shelter and passed for 01 and 47, then the closes
    assert {"shelter", "passed", "none"} <= shown


def news(arrivals: list[float], checked: int, over: Callable[[], bool]) -> bool:
    return len(arrivals) > checked or over()


def _busy(states: dict[str, str]) -> dict[str, str]:
    return {c: s for c, s in states.items() if s != "none"}


async def agree_in_time(page: Watched, url: str, retained: dict[str, str],
                        arrivals: list[float], seen: int) -> None:
    """Page and /api/state show `retained` within AGREE_WITHIN_S of the latest message (a
    newer message moves the target and the deadline with it)."""
    loop = asyncio.get_running_loop()

    async def agreed() -> bool:
        latest, want = len(arrivals), dict(retained)
        page_states = await page.states()
        api = (await api_state(page, url))["prefectures"]
        assert isinstance(api, dict)
        if page_states == want and api == want:
            return True
        if len(arrivals) == latest and loop.time() > arrivals[-1] + AGREE_WITHIN_S:
            raise AssertionError(f"{AGREE_WITHIN_S} s after message {seen} the dashboard "
                                 f"differs: retained {_busy(want)}, page {_busy(page_states)}, "
                                 f"api {_busy(api)}")
        return False

    await eventually(agreed, timeout=STATE_TIMEOUT_S, interval=0.05,
                     what=f"dashboard agrees after message {seen}")


# Each label's box as chromium draws it, and the pairs that overlap.
LABEL_OVERLAPS_JS = """() => {
    const boxes = [...document.querySelectorAll('text.pref-label')].map(t => {
        const b = t.getBBox(); return [t.dataset.label, b.x, b.y, b.x + b.width, b.y + b.height];
    });
    const overlaps = [];
    boxes.forEach((a, i) => boxes.slice(i + 1).forEach(b => {
        if (a[1] < b[3] && b[1] < a[3] && a[2] < b[4] && b[2] < a[4]) overlaps.push([a[0], b[0]]);
    }));
    return {count: boxes.length, overlaps};
}"""


async def label_overlaps(page: Watched) -> list[list[str]]:
    measured: dict[str, Any] = await page.page.evaluate(LABEL_OVERLAPS_JS)
    assert measured["count"] == 47
    overlaps: list[list[str]] = measured["overlaps"]
    return overlaps


async def text_of(page: Watched, selector: str) -> str:
    return await page.page.locator(selector).first.text_content() or ""


async def test_dashboard_in_japanese_and_english_with_events_and_reasons(
        mosquitto: MosquittoBroker, tmp_path: Path) -> None:
    """The page opens in Japanese (html lang, banner, headings, prefecture names, the
    reason in Okinawa's tooltip and table row) and the toggle shows it in English; the
    log names each message's event; chromium measures no two labels overlapping in
    either language; neighbouring land is drawn. After the operator's cancel and close,
    Okinawa reads none but keeps its last state (cancelled, dimmed) and the track is gone."""
    scenario = trimmed(SCENARIOS / "2023-11-21-chollima-1.yaml", tmp_path, detections=1,
                       expect={"47": ["shelter", "cancel"]})
    event = "2023-11-21-sohae"
    shots = artifacts_dir(tmp_path, "dashboard-ja-en")
    async with dashboard_drill(scenario, tmp_path, mosquitto, speed=60) as drill, \
            chromium_page() as page:
        await page.page.goto(drill.url)
        await wait_for_states(page, drill.url, {"47": "shelter"})
        p = page.page
        assert await p.evaluate("() => document.documentElement.lang") == "ja"
        assert "訓練" in await text_of(page, "#status-banner")
        assert await text_of(page, "#message-log thead") != ""
        assert "配信メッセージ" in await p.locator("aside").inner_text()
        assert await text_of(page, 'text.pref-label[data-label="13"]') == "東京"
        assert await p.locator("g.neighbours path").count() >= 1
        await p.locator(f'#message-log tr[data-event="{event}"] td.event').first.wait_for()
        tooltip = await p.locator('g.prefecture[data-code="47"] > title').text_content()
        assert tooltip is not None
        assert f"{event}: 上空通過" in tooltip
        assert "上空通過" in await text_of(page, '#receipts tr[data-code="47"] td.reason')
        assert await label_overlaps(page) == []
        await p.screenshot(path=shots / "1-ja.png")
        await p.click("#lang-toggle")
        assert await p.evaluate("() => document.documentElement.lang") == "en"
        assert "simulated alerts" in await text_of(page, "#status-banner")
        assert "Messages" in await p.locator("aside").inner_text()
        assert await text_of(page, 'text.pref-label[data-label="13"]') == "Tokyo"
        assert "overflight" in await text_of(page, '#receipts tr[data-code="47"] td.reason')
        assert await label_overlaps(page) == []
        await p.screenshot(path=shots / "2-en.png")
        await eventually(lambda: drill.printed("timeline played"), timeout=STATE_TIMEOUT_S,
                         what="timeline played, the drill waiting for the operator")
        await operator(mosquitto, drill.root, "cancel", event)
        await wait_for_states(page, drill.url, {"47": "cancelled"})
        await operator(mosquitto, drill.root, "close", event)
        await wait_for_states(page, drill.url, {"47": "none"})
        await p.locator('g.prefecture[data-code="47"][data-last="cancelled"]').wait_for(
            state="attached")
        await p.locator("polyline.track").first.wait_for(state="detached")
        assert "(closed)" in await text_of(page, f'#message-log tr[data-event="{event}"] td.event')
        await p.screenshot(path=shots / "3-en-closed.png")
        assert_offline_and_clean(page, drill.url)
