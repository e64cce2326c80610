"""Helpers shared by the broker and drill tests."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Self

import aiomqtt

from alertsim.adapters.sqlite.store import Store
from alertsim.clients.receiver import Receiver
from alertsim.data import load_atlas
from alertsim.domain.messages import Alert
from alertsim.domain.timeline import Note, simulate
from alertsim.drills.dry_run import service_config
from alertsim.drills.scenario import load_scenario
from alertsim.mqtt.url import parse_broker_url


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
        rows = await store.views.outbox(kind="alert")
        refused = len(await store.views.rejected())
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


def restore_sigint() -> None:
    """`preexec_fn` for a child that must stop on Ctrl-C: SIGINT back to its default.

    A test run started as a background job inherits SIGINT ignored, and Python in the child
    then never raises KeyboardInterrupt."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


class Observer:
    """A plain aiomqtt client (MQTT 3.1.1) recording every message on the given filters, as
    (topic, payload, retain) in arrival order; `seen` is the hook a subclass extends."""

    def __init__(self, url: str, filters: list[str], client_id: str,
                 clean: bool = True) -> None:
        broker = parse_broker_url(url)
        self.client = aiomqtt.Client(broker.host, broker.port, identifier=client_id,
                                     protocol=aiomqtt.ProtocolVersion.V311, clean_session=clean)
        self.filters = filters
        self.messages: list[tuple[str, bytes, bool]] = []
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Self:
        await self.client.__aenter__()
        for topic_filter in self.filters:
            await self.client.subscribe(topic_filter, qos=1)
        self._task = asyncio.create_task(self._read(), name=f"observer:{self.client.identifier}")
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)
        await self.client.__aexit__(None, None, None)

    async def _read(self) -> None:
        async for message in self.client.messages:
            payload = message.payload if isinstance(message.payload, bytes) else b""
            self.seen(str(message.topic), payload, message.retain)

    def seen(self, topic: str, payload: bytes, retain: bool) -> None:
        """One message arrived: recorded."""
        self.messages.append((topic, payload, retain))

    def alerts(self) -> list[tuple[str, Alert]]:
        """(topic, alert) of every message on an alerts topic, duplicates included."""
        return [(t, Alert.model_validate_json(p)) for t, p, _ in self.messages
                if "/alerts/" in t]
