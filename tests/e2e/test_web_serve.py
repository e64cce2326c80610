"""`alertsim serve --dashboard`: the page and /api/state follow a running service; flags."""

from __future__ import annotations

import asyncio
import json
import sys
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiomqtt
import pytest
import structlog

from alertsim.brokers.brokers import MosquittoBroker
from alertsim.cli import main
from alertsim.testing import eventually, make_detection
from tests.browser import artifacts_dir, chromium_page
from tests.helpers import restore_sigint

SCRIPT = Path(sys.executable).with_name("alertsim")


@pytest.mark.mosquitto
async def test_serve_dashboard_follows_a_detection(mosquitto: MosquittoBroker,
                                                   tmp_path: Path) -> None:
    """The URL is logged at start; a detection sent to the service turns Okinawa shelter on
    the page and in /api/state, under a TEST banner for a test-status service."""
    root = f"test/serve-dashboard/{uuid.uuid4().hex[:10]}"
    log = tmp_path / "serve.log"
    with log.open("wb") as stderr:
        process = await asyncio.create_subprocess_exec(
            str(SCRIPT), "serve", "--dashboard", "--port", "0", "--broker", mosquitto.url,
            "--db", str(tmp_path / "serve.db"), "--topic-root", root, "--status", "test",
            stdout=asyncio.subprocess.DEVNULL, stderr=stderr, preexec_fn=restore_sigint)
        try:
            url = await eventually(lambda: dashboard_url(log), timeout=60,
                                   what="dashboard.started logged")
            async with chromium_page() as page:
                await page.page.goto(url)
                assert "TEST" in await page.page.locator("#status-banner").inner_text()
                assert set((await page.states()).values()) == {"none"}
                await send_detection(mosquitto, root)

                async def okinawa_shelters() -> bool:
                    response = await page.page.request.get(f"{url}api/state")
                    api = await response.json()
                    states = await page.states()
                    return (api["status"] == "Test" and api["prefectures"]["47"] == "shelter"
                            and states["47"] == "shelter")

                await eventually(okinawa_shelters, timeout=30, interval=0.1,
                                 what="Okinawa shelter on the page and in /api/state")
                await page.page.screenshot(path=artifacts_dir(tmp_path, "serve-dashboard")
                                           / "serve-okinawa-shelter.png")
                assert page.console_errors == []
        finally:
            process.send_signal(2)
            async with asyncio.timeout(30):
                await process.wait()


def dashboard_url(log: Path) -> str | None:
    for line in log.read_text("utf-8", "replace").splitlines():
        if '"dashboard.started"' in line:
            url: str = json.loads(line)["url"]
            return url
    return None


async def send_detection(broker: MosquittoBroker, root: str) -> None:
    """A launch from Sohae toward the Philippine Sea over Okinawa, observed just now."""
    launch_time = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=2)
    detection = make_detection((39.66, 124.705), (12.8, 128.1), 50, 300,
                               event_id=f"serve-{uuid.uuid4().hex[:6]}",
                               launch_time=launch_time, flight=timedelta(minutes=22))
    async with aiomqtt.Client("127.0.0.1", broker.port,
                              identifier=f"test-sensor-{uuid.uuid4().hex[:8]}") as client:
        await client.publish(f"{root}/detections",
                             detection.model_dump_json(exclude_none=True), qos=1)


@pytest.mark.parametrize("command", [["serve"], ["drill", "scenarios/salvo-three-launches.yaml"]])
def test_port_needs_dashboard(command: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    """--port without --dashboard is bad input (exit 2), named, before anything starts."""
    saved = structlog.get_config()
    try:
        assert main([*command, "--port", "8080"]) == 2
    finally:
        structlog.configure(**saved)
    assert (f"alertsim {command[0]}: invalid input in --port:\n  only with --dashboard"
            in capsys.readouterr().err)
