"""Views follow the service's events, never the record: a whole drill with its dashboard,
progress lines and settle runs while every view query on its SQLite record raises.

The drill's runner closes `store.views` for the live part of the run (`closed_while_live`);
this test keeps a handle on that store, proves a view read fails while the drill is live,
and meanwhile watches the dashboard's stream and the progress lines move.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
import signal
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from alertsim.adapters.sqlite.store import Store
from alertsim.brokers.brokers import MosquittoBroker
from alertsim.drills.runner import DrillOptions, run_drill
from alertsim.errors import LiveReadError
from alertsim.testing import eventually

pytestmark = [pytest.mark.mosquitto, pytest.mark.timeout(120)]

SCENARIO = Path(__file__).resolve().parents[2] / "scenarios" / "false-alarm-cancel-60s.yaml"


@contextlib.asynccontextmanager
async def sse_lines(url: str) -> AsyncIterator[list[str]]:
    """The dashboard's /api/stream read in the background: its `data:` lines so far."""
    parts = urlsplit(url)
    reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
    writer.write(f"GET /api/stream HTTP/1.1\r\nHost: {parts.netloc}\r\n"
                 "Accept: text/event-stream\r\n\r\n".encode())
    await writer.drain()
    lines: list[str] = []

    async def read() -> None:
        while line := await reader.readline():
            text = line.decode("utf-8", "replace")
            if text.startswith("data:"):
                lines.append(text)

    task = asyncio.create_task(read())
    try:
        yield lines
    finally:
        task.cancel()
        writer.close()
        await asyncio.gather(task, return_exceptions=True)


async def test_dashboard_progress_and_settle_with_the_record_closed(
        mosquitto: MosquittoBroker, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    opened: list[Store] = []
    original = Store.open.__func__  # type: ignore[attr-defined]

    async def open_and_keep(cls: type[Store], *args: Any, **kwargs: Any) -> Store:
        store: Store = await original(cls, *args, **kwargs)
        opened.append(store)
        return store

    monkeypatch.setattr(Store, "open", classmethod(open_and_keep))
    out = io.StringIO()
    drill = asyncio.create_task(run_drill(DrillOptions(
        scenario_path=SCENARIO, speed=60.0, broker_url=mosquitto.url, dashboard_port=0,
        topic_root=f"test/views/{uuid.uuid4().hex[:8]}", reports_dir=tmp_path, out=out,
        db=tmp_path / "drill.db")))

    def printed(marker: str) -> str | None:
        if drill.done():
            drill.result()  # raises what ended it
            raise AssertionError(f"the drill ended early: {out.getvalue()}")
        return next((line.split(marker, 1)[1].strip()
                     for line in out.getvalue().splitlines() if marker in line), None)

    url = await eventually(lambda: printed("dashboard: "), timeout=30, what="dashboard URL")
    async with sse_lines(url) as stream:
        # The dashboard pushes the shelter call as it happens (no record read behind it)
        await eventually(lambda: any("shelter" in line for line in stream[1:]), timeout=30,
                         what="a shelter state pushed to the page")
        await eventually(lambda: printed("timeline played"), timeout=60,
                         what="the timeline played and delivery settled")
        # The progress lines counted receipts from events, and the page was told of them
        assert printed("receipts so far: ") or await eventually(
            lambda: printed("receipts so far: "), timeout=10, what="a receipts line")
        await eventually(lambda: any("receipt" in line for line in stream[1:]),
                         what="receipts pushed to the page")
        with pytest.raises(LiveReadError):  # the record really was closed to views
            await opened[0].views.receipts()
    os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C: the drill settles again and reports
    outcome = await asyncio.wait_for(drill, 60)
    assert outcome.passed, out.getvalue()
    async with await Store.open(outcome.db_path) as store:  # open again after the run
        assert await store.views.receipts()
