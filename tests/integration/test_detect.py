"""`alertsim detect` against a real Mosquitto and a running service: the service's answer
and the exit code it gives (0 accepted, 1 refused, 3 taken without a new alert, 4 no
service), `--no-wait`, `--now` and the README's example on any day."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import sys
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from alertsim.bootstrap import ServeOptions, serve
from alertsim.brokers.brokers import MosquittoBroker
from alertsim.clients.detection import shifted_to
from alertsim.domain.detection import Detection
from alertsim.domain.model import JST
from alertsim.domain.topics import TopicTree
from alertsim.service.config import ServiceConfig
from alertsim.testing import make_detection

README = Path(__file__).parents[2] / "README.md"
pytestmark = pytest.mark.mosquitto


@contextlib.asynccontextmanager
async def running_service(broker: MosquittoBroker, root: str,
                          db: Path) -> AsyncIterator[None]:
    """`serve` under `root` until the block ends (`detect` waits for its online status)."""
    options = ServeOptions(config=ServiceConfig(status="test", topics=TopicTree(root)), db=db,
                           broker_url=broker.url, client_id=f"detect-{uuid.uuid4().hex[:8]}")
    task = asyncio.create_task(serve(options), name="serve")
    try:
        yield
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def detect(broker: MosquittoBroker, root: str, *args: str,
                 file: Path, lang: str = "en") -> tuple[int, str]:
    """Run `alertsim detect` in a process of its own; its exit code and its output."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "alertsim", "--lang", lang, "detect",
        str(file), "--broker", broker.url, "--topic-root", root, *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    out, _ = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode is not None
    return process.returncode, out.decode()


def written(tmp_path: Path, detection: Detection, name: str = "d.json") -> Path:
    path = tmp_path / name
    path.write_text(detection.model_dump_json(), "utf-8")
    return path


def fresh(event_id: str, *, minutes_ago: float = 1) -> Detection:
    """A detection over Hokkaido and Aomori, observed `minutes_ago` before now."""
    return make_detection((40.6, 126.4), (34.33, 178.57), 30, 100, event_id=event_id,
                          launch_time=datetime.now(UTC) - timedelta(minutes=minutes_ago + 2))


async def test_accepted_then_duplicate(mosquitto: MosquittoBroker, prefix: str,
                                       tmp_path: Path) -> None:
    """A new detection exits 0 with the alert that showed it; the same file again exits 3."""
    file = written(tmp_path, fresh("det-ok"))
    async with running_service(mosquitto, prefix, tmp_path / "s.db"):
        code, out = await detect(mosquitto, prefix, file=file)
        assert (code, out.splitlines()[-1]) == (0, "accepted: det-ok #1 (shelter sent to 01)")
        code, out = await detect(mosquitto, prefix, "--timeout", "2", file=file)
        assert code == 3, out
        assert "taken without a new alert: det-ok #1" in out


async def test_refused_with_the_reason(mosquitto: MosquittoBroker, prefix: str,
                                       tmp_path: Path) -> None:
    """A stale detection exits 1 and prints the service's reason; in Japanese with --lang ja."""
    file = written(tmp_path, fresh("det-stale", minutes_ago=30))
    async with running_service(mosquitto, prefix, tmp_path / "s.db"):
        code, out = await detect(mosquitto, prefix, file=file)
        assert code == 1, out
        assert re.search(r"refused: det-stale #1: observed_at: .* is stale", out), out
        code, out = await detect(mosquitto, prefix, file=file, lang="ja")
        assert code == 1, out
        assert "拒否: det-stale 第1報: observed_at:" in out


async def test_no_service(mosquitto: MosquittoBroker, prefix: str, tmp_path: Path) -> None:
    """With no service under the root, detect exits 4 and sends nothing."""
    file = written(tmp_path, fresh("det-alone"))
    code, out = await detect(mosquitto, prefix, "--timeout", "1", file=file)
    assert code == 4, out
    assert f"no service answered: no online service status under {prefix}" in out


async def test_no_wait(mosquitto: MosquittoBroker, prefix: str, tmp_path: Path) -> None:
    """--no-wait publishes and exits 0 without a service."""
    file = written(tmp_path, fresh("det-nowait"))
    code, out = await detect(mosquitto, prefix, "--no-wait", file=file)
    assert code == 0, out
    assert f"published {file} (det-nowait #1) to {prefix}/detections" in out


def readme_detection() -> str:
    """The detection JSON shown in the README, as written there."""
    text = README.read_text("utf-8")
    section = text.split("## A detection and the decision it produces", 1)[1]
    return section.split("```json\n", 1)[1].split("```", 1)[0]


async def test_readme_example_works_today(mosquitto: MosquittoBroker, prefix: str,
                                          tmp_path: Path) -> None:
    """The README's 2023 detection, sent as its README line says (`--now`), is accepted today."""
    text = README.read_text("utf-8")
    assert "$ alertsim detect detection.json --now" in text
    file = tmp_path / "detection.json"
    file.write_text(readme_detection(), "utf-8")
    async with running_service(mosquitto, prefix, tmp_path / "s.db"):
        code, out = await detect(mosquitto, prefix, "--now", file=file)
    assert code == 0, out
    assert "accepted: 2023-11-21-sohae #1 (shelter sent to 47)" in out


def test_shifted_to_keeps_the_flight() -> None:
    """--now moves every time by the same amount, to now, in JST; the flight is unchanged."""
    original = Detection.model_validate_json(readme_detection())
    now = datetime(2031, 5, 6, 7, 8, 9, 123456, tzinfo=UTC)
    moved = shifted_to(original, now)
    assert moved.observed_at == now.replace(microsecond=0)
    assert moved.observed_at.utcoffset() == JST.utcoffset(None)
    assert moved.launch.time - moved.observed_at == original.launch.time - original.observed_at
    assert (moved.predicted.impact_time - moved.launch.time
            == original.predicted.impact_time - original.launch.time)
    assert json.loads(moved.model_dump_json())["event_id"] == original.event_id
