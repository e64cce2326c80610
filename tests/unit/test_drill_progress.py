"""A drill's progress: the live Rich view (rendered in-process to a recording console), fed
by the service's own stream of outbox rows. (Plain lines from a real `alertsim drill`, which
starts a broker: tests/integration/test_drill_progress_cli.py.)"""

from __future__ import annotations

import asyncio
import io
from datetime import timedelta
from pathlib import Path

from rich.console import Console

from alertsim.adapters.sqlite.store import Store
from alertsim.domain.prefectures import Atlas
from alertsim.drills.progress import DrillProgress
from alertsim.drills.scenario import load_scenario
from alertsim.service.config import ServiceConfig
from alertsim.service.events import ReceiptSeen
from alertsim.service.service import Service
from alertsim.testing import FixedClock, eventually

ROOT = Path(__file__).resolve().parents[2]
CHOLLIMA = ROOT / "scenarios" / "2023-11-21-chollima-1.yaml"


async def test_live_view_follows_the_service(atlas: Atlas, tmp_path: Path) -> None:
    """The Rich view shows the scenario clock, the next event, stages sent, receipts and
    failures, from the service's own events (Service.events), never the record."""
    scenario = load_scenario(CHOLLIMA)
    first = scenario.detections()[0]
    clock = FixedClock(current=scenario.time_of(first) + timedelta(seconds=1))
    console = Console(record=True, force_terminal=True, width=140, file=io.StringIO())
    progress = DrillProgress(scenario, clock.now, io.StringIO(), speed=60.0, live=True,
                             console=console)
    async with await Store.open(tmp_path / "progress.db") as store:
        service = Service(atlas=atlas, store=store.record, clock=clock,
                          config=ServiceConfig(policy=scenario.policy))
        task = asyncio.create_task(progress.run(service.events))
        try:
            await eventually(lambda: progress._shown is not None, what="the live view up")
            progress.say("[22:46:00 +   180s] detection 2023-11-21-sohae #1")
            assert await service.accept_detection(first.detection.model_dump_json().encode())
            assert not await service.accept_operator(b'{"action": "cancel", "event_id": "x"}')
            await service.record_receipts([ReceiptSeen("rx-47", "m1", clock.now())])
            await eventually(lambda: progress.receipts == 1 and progress.failures,
                             what="the alert, the refusal and the receipt taken in")
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
    assert progress.stages == {"shelter": 1}
    console.print(progress.view())
    text = console.export_text(clear=False)
    assert "EXERCISE" in text
    assert "Scenario clock  22:46:01 JST (x60)" in text
    assert "Next event      23:14:00 detection 2023-11-21-sohae #2 (outcome orbit)" in text
    assert "Stages sent     shelter 1; last 47 shelter at 22:46:01" in text
    assert "Receipts        1" in text
    assert "Failures        1: event_id: no event 'x' is known" in text
    assert "[22:46:00 +   180s] detection 2023-11-21-sohae #1" in text  # above the view
    assert "\x1b[" in console.export_text(styles=True)  # drawn for a terminal


def test_plain_progress_says_lines_and_the_next_event() -> None:
    """Off a terminal, the drill's own lines are plain lines; the next event is in words."""
    scenario = load_scenario(CHOLLIMA)
    out = io.StringIO()
    progress = DrillProgress(scenario, FixedClock(current=scenario.start).now, out)
    assert progress.live is False  # a StringIO is not a terminal
    progress.say("[22:46:00 +   180s] detection 2023-11-21-sohae #1")
    assert out.getvalue() == "[22:46:00 +   180s] detection 2023-11-21-sohae #1\n"
    assert progress.next_event() == ("22:46:00 detection 2023-11-21-sohae #1 "
                                     "(in 180 s scenario time)")
