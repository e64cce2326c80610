"""Helpers shared by the broker and drill tests."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from pathlib import Path

import aiomqtt

from alertsim.adapters.mqtt.receiver import Receiver
from alertsim.adapters.sqlite.store import Store
from alertsim.data import load_atlas
from alertsim.domain.timeline import Note, simulate
from alertsim.drills.dry_run import service_config
from alertsim.drills.scenario import load_scenario


async def receive(client: aiomqtt.Client, count: int,
                  timeout_s: float = 5.0) -> list[aiomqtt.Message]:
    """The next `count` messages the client gets, or TimeoutError."""
    received: list[aiomqtt.Message] = []
    async with asyncio.timeout(timeout_s):
        async for message in client.messages:
            received.append(message)
            if len(received) == count:
                break
    return received


@asynccontextmanager
async def running(receiver: Receiver, timeout_s: float = 10.0) -> AsyncIterator[Receiver]:
    """The receiver running and subscribed (within `timeout_s`); stopped on exit."""
    ready = asyncio.Event()
    task = asyncio.create_task(receiver.run(ready), name=f"test:{receiver.client_id}")
    try:
        async with asyncio.timeout(timeout_s):
            await ready.wait()
        yield receiver
    finally:
        receiver.stop()
        await task


async def live_and_dry(db_path: Path, scenario_path: Path) -> tuple[
        list[tuple[str, str, datetime]], list[tuple[str, str, datetime]], int, int]:
    """(live alerts, dry-run alerts, live refusals, dry-run refusals) of one drill: each
    alert as (place, stage, scenario time), in the order sent per place."""
    scenario = load_scenario(scenario_path)
    engine = service_config(scenario).engine(load_atlas())
    notes: list[Note] = []
    inputs = scenario.timeline_inputs()
    dry = [(s.alert.prefecture or "national", s.alert.stage, s.at)
           for s in simulate(inputs, engine, nonce="dry", notes=notes, until=inputs[-1][0])]
    async with await Store.open(db_path) as store:
        rows = await store.outbox(kind="alert")
        refused = len(await store.rejected())
    live = [(r.prefecture or "national", str(r.stage), r.sim_time) for r in rows
            if r.sim_time is not None]
    return live, dry, refused, len(notes)


def assert_same_sends(live: list[tuple[str, str, datetime]],
                      dry: list[tuple[str, str, datetime]], tolerance: timedelta) -> None:
    """The same stages per place, in the same order, each within `tolerance` of its time."""
    def by_place(sent: list[tuple[str, str, datetime]]) -> dict[str, list[tuple[str, datetime]]]:
        out: dict[str, list[tuple[str, datetime]]] = {}
        for place, stage, at in sent:
            out.setdefault(place, []).append((stage, at))
        return out

    got, want = by_place(live), by_place(dry)
    assert {p: [s for s, _ in v] for p, v in got.items()} == {
        p: [s for s, _ in v] for p, v in want.items()}
    for place, sends in want.items():
        for (stage, dry_at), (_, live_at) in zip(sends, got[place], strict=True):
            assert abs(live_at - dry_at) <= tolerance, (place, stage, live_at, dry_at)
