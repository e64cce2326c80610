"""The scenario builder in headless chromium: `alertsim builder` as an operator starts it,
a scenario built by clicks (site, target, a cancel, an update), its preview held against
the domain's decision (`alertsim decide` on the same detection), saved, loaded by
`alertsim drill --dry-run`, run from the page and followed on the drill's dashboard; the
same page in Japanese and English; bad input answered 400 with the problems."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from alertsim.builder.sites import site
from alertsim.i18n import text
from alertsim.testing import eventually
from alertsim.web.geometry import layout
from tests.browser import Watched, artifacts_dir, chromium_page
from tests.helpers import restore_sigint

SCRIPT = Path(sys.executable).with_name("alertsim")
START_TIMEOUT_S = 60.0
DRILL_TIMEOUT_S = 150.0  # the drill's embedded broker, 47 receivers and its dashboard
TARGET = (41.5, 146.0)  # east of Hokkaido: the track crosses northern Japan

pytestmark = [pytest.mark.slow]


@asynccontextmanager
async def builder(out: Path) -> AsyncIterator[str]:
    """`alertsim builder` running; its URL. Ctrl-C at the end, which also ends its drills."""
    process = await asyncio.create_subprocess_exec(
        str(SCRIPT), "builder", "--port", "0", "--out", str(out),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        preexec_fn=restore_sigint)
    lines: list[str] = []

    async def read() -> None:
        assert process.stdout is not None
        async for raw in process.stdout:
            lines.append(raw.decode("utf-8", "replace").rstrip("\n"))

    reader = asyncio.create_task(read(), name="builder-stdout")

    def url() -> str | None:
        if process.returncode is not None:
            raise AssertionError(f"builder exited {process.returncode}: {lines}")
        return next((line.split("builder: ", 1)[1].strip() for line in lines
                     if line.startswith("builder: ")), None)

    try:
        yield await eventually(url, timeout=START_TIMEOUT_S, what="builder URL printed")
    finally:
        if process.returncode is None:
            process.send_signal(2)
        try:
            async with asyncio.timeout(90):
                await process.wait()
        except TimeoutError:
            process.kill()
            await process.wait()
        await reader
    assert process.returncode == 0, lines


async def ready(page: Watched) -> None:
    """Wait until the preview shows the form as it is now."""
    await page.page.wait_for_function(
        "document.querySelector('#preview').dataset.state === 'ready'", timeout=30_000)


async def click_map(page: Watched, lat: float, lon: float) -> None:
    """Click the map where (lat, lon) is drawn."""
    x, y = layout().point(lon, lat)
    await page.page.evaluate("window.scrollTo(0, 0)")
    screen = await page.page.evaluate(
        """([x, y]) => { const svg = document.getElementById('builder-map');
            const p = svg.createSVGPoint(); p.x = x; p.y = y;
            const s = p.matrixTransform(svg.getScreenCTM()); return [s.x, s.y]; }""", [x, y])
    await page.page.mouse.click(screen[0], screen[1])


async def warned(page: Watched, sequence: int) -> list[str]:
    codes: list[str] = await page.page.eval_on_selector_all(
        f'#detections li[data-sequence="{sequence}"] li[data-code]',
        "items => items.map(i => i.dataset.code)")
    return codes


async def form_detection(page: Watched, sequence: int, at_s: float) -> dict[str, Any]:
    """The detection the form describes, assembled here from its fields."""
    value = page.page.input_value
    launched = datetime.fromisoformat(f"{await value('#launch_time')}:00+09:00")
    falls = launched + timedelta(minutes=float(await value("#flight_min")))
    return {"event_id": await value("#event_id"), "sequence": sequence,
            "observed_at": (launched + timedelta(seconds=at_s)).isoformat(),
            "object": "ballistic_missile",
            "launch": {"lat": float(await value("#launch_lat")),
                       "lon": float(await value("#launch_lon")), "time": launched.isoformat()},
            "predicted": {"impact": {"lat": float(await value("#target_lat")),
                                     "lon": float(await value("#target_lon"))},
                          "impact_time": falls.isoformat()},
            "uncertainty": {"cross_track_km": float(await value("#cross")),
                            "along_track_km": float(await value("#along"))}}


async def run(*args: str) -> tuple[int, str]:
    """The installed `alertsim` with `args`: its exit code and output."""
    process = await asyncio.create_subprocess_exec(
        str(SCRIPT), *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    async with asyncio.timeout(120):
        out, _ = await process.communicate()
    assert process.returncode is not None
    return process.returncode, out.decode("utf-8", "replace")


async def decided(detection: dict[str, Any], tmp_path: Path) -> list[str]:
    """`alertsim decide` on the detection, under the rule in force on its date."""
    path = tmp_path / f"detection-{detection['sequence']}.json"
    path.write_text(json.dumps(detection), "utf-8")
    code, out = await run("decide", str(path), "--policy", "auto")
    assert code == 0, out
    shelter: list[str] = json.loads(out)["shelter"]
    return shelter


async def heading(page: Watched) -> tuple[str, str]:
    lang = await page.page.evaluate("document.documentElement.lang")
    return lang, (await page.page.inner_text("h1")).strip()


async def build_by_clicks(page: Watched) -> None:
    """Musudan-ri from the list, a 12-minute flight, the target clicked on the map, then
    a cancel and an update added by their buttons."""
    await page.page.select_option("#site", "musudan")
    await page.page.fill("#flight_min", "12")
    await ready(page)
    await click_map(page, *TARGET)
    await ready(page)
    await page.page.click("#add-cancel")
    await ready(page)
    await page.page.click("#add-update")
    await ready(page)


async def test_build_preview_save_and_run(tmp_path: Path) -> None:
    """Clicks make a scenario whose preview is the domain's decision; it saves, loads in
    the CLI, and its drill runs from the page and sends what the preview showed."""
    out = tmp_path / "out"
    async with builder(out) as url, chromium_page() as page:
        await page.page.goto(url)
        await ready(page)
        await build_by_clicks(page)
        musudan = site("musudan")
        assert musudan is not None
        assert float(await page.page.input_value("#launch_lat")) == musudan.lat
        target = (float(await page.page.input_value("#target_lat")),
                  float(await page.page.input_value("#target_lon")))
        assert target[0] == pytest.approx(TARGET[0], abs=0.05)
        assert target[1] == pytest.approx(TARGET[1], abs=0.05)
        first = await decided(await form_detection(page, 1, 120.0), tmp_path)
        assert first, "the clicked target should warn someone"
        assert await warned(page, 1) == first
        update_at = await page.page.input_value("#updates .at")
        h, m, s = (int(p) for p in update_at.split(":"))
        assert await warned(page, 2) == await decided(
            await form_detection(page, 2, h * 3600 + m * 60 + s), tmp_path)
        stages = await page.page.eval_on_selector_all(
            "#prefectures tr[data-code]", """rows => Object.fromEntries(rows.map(r => [
                r.dataset.code, [...r.querySelectorAll('li[data-stage]')].map(
                    li => li.dataset.stage)]))""")
        # The cancel comes before any window: each warned prefecture is told to shelter,
        # then the call is lifted; the later update sends nothing more.
        assert stages == {code: ["shelter", "cancel"] for code in first}
        await page.page.screenshot(path=str(artifacts_dir(tmp_path, "builder") / "ja.png"),
                                   full_page=True)

        await page.page.fill("#file", "built-drill")
        await page.page.click("#save")
        await page.page.wait_for_function("document.querySelector('#saved').dataset.path")
        saved = Path(await page.page.get_attribute("#saved", "data-path") or "")
        assert saved == out / "built-drill.yaml"
        code, dry = await run("drill", str(saved), "--dry-run")
        assert code == 0, dry
        assert "expectations: met" in dry

        await page.page.click("#start-drill")
        link = page.page.locator("#dashboard-link")
        await link.wait_for(state="visible", timeout=DRILL_TIMEOUT_S * 1000)
        dashboard = await link.get_attribute("href")
        assert dashboard is not None
        await follow_drill(page, dashboard, {(code, stage) for code in first
                                             for stage in ("shelter", "cancel")})
        assert page.console_errors == []


async def follow_drill(page: Watched, dashboard: str, expected: set[tuple[str, str]]) -> None:
    """The drill's dashboard logs every message the preview listed."""
    async def logged() -> bool:
        response = await page.page.request.get(f"{dashboard}api/state")
        if not response.ok:
            return False
        rows = (await response.json())["log"]
        return expected <= {(row["prefecture"], row["stage"]) for row in rows}

    await eventually(logged, timeout=DRILL_TIMEOUT_S, what="the drill sent the preview's messages")


async def test_the_same_page_in_japanese_and_english(tmp_path: Path) -> None:
    """Japanese first; the toggle switches every string, the preview's included, and back;
    ?lang=en opens in English."""
    async with builder(tmp_path / "out") as url, chromium_page() as page:
        await page.page.goto(url)
        await ready(page)
        assert await heading(page) == ("ja", text("builder", "page.title", "ja"))
        row = page.page.locator("#prefectures tr[data-code]").first
        reason = await row.get_attribute("data-code")
        assert reason is not None
        cell = (await row.locator("td").nth(1).inner_text()).strip()
        assert cell in {text("builder", f"reason.{r}", "ja") for r in
                        ("overflight", "impact_area", "adjacent", "block")}
        await page.page.click("#lang-toggle")
        assert await heading(page) == ("en", text("builder", "page.title", "en"))
        cell_en = (await row.locator("td").nth(1).inner_text()).strip()
        assert cell_en in {text("builder", f"reason.{r}", "en") for r in
                           ("overflight", "impact_area", "adjacent", "block")}
        assert (await page.page.inner_text('label:has(#site) span')).strip() == text(
            "builder", "field.site", "en")
        await page.page.screenshot(path=str(artifacts_dir(tmp_path, "builder") / "en.png"),
                                   full_page=True)
        await page.page.click("#lang-toggle")
        assert await heading(page) == ("ja", text("builder", "page.title", "ja"))
        await page.page.goto(f"{url}?lang=en")
        await ready(page)
        assert await heading(page) == ("en", text("builder", "page.title", "en"))
        assert page.console_errors == []


@pytest.mark.parametrize(("path", "body", "problem"), [
    ("api/preview", b"not json", "body: not JSON"),
    ("api/preview", b'{"title": "x"}', "event_id: Field required"),
    ("api/preview", b"[1, 2]", "Input should be a valid dictionary"),
    ("api/save", b'{"draft": {}}', "name: field required"),
    ("api/save", b'{"draft": {}, "name": "x"}', "draft.event_id: Field required"),
    ("api/drill", b'{"name": "never-saved"}', "save it first"),
    ("api/locate", b'{"x": "a", "y": 1}', "x and y: numbers"),
    ("api/locate", b'{"x": -50, "y": -50}', "off the map"),
])
async def test_bad_input_is_answered_400_with_its_problems(
        tmp_path: Path, path: str, body: bytes, problem: str) -> None:
    """Each endpoint refuses bad input with 400 and problems that say what is wrong."""
    async with builder(tmp_path / "out") as url, aiohttp.ClientSession() as session, \
            session.post(f"{url}{path}", data=body) as response:
        assert response.status == 400
        answer = await response.json()
        assert any(problem in line for line in answer["errors"]), answer
