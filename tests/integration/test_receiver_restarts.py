"""Receivers and the service link stop within 2 s however a broker restart catches them.

Regression: `Receiver.stop()` never returned when it came just as a restarted broker
answered the reconnect (Python 3.11's `asyncio.wait_for` inside aiomqtt dropped the
cancellation and the session carried on).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
from structlog.typing import EventDict

from alertsim.adapters.mqtt.link import run_link
from alertsim.adapters.sqlite.store import Store
from alertsim.brokers.brokers import MosquittoBroker
from alertsim.clients.receiver import Receiver, ReceiverOptions
from alertsim.domain import texts, topics
from alertsim.domain.messages import build_alert
from alertsim.domain.prefectures import Atlas
from alertsim.domain.publication import Publication
from alertsim.logs import captured_logs
from alertsim.mqtt.client import MqttSettings, connect
from alertsim.mqtt.messages import publish
from alertsim.service.clock import ScaledClock
from alertsim.service.config import ServiceConfig
from alertsim.service.service import Service
from alertsim.testing import DEFAULT_LAUNCH_TIME, eventually

pytestmark = pytest.mark.mosquitto

RESTARTS = 50
STOP_LIMIT_S = 2.0


def _logged(logs: list[EventDict], since: int, event: str) -> Callable[[], bool]:
    return lambda: any(e["event"] == event for e in logs[since:])


async def _burst(url: str, count: int) -> None:
    """`count` fresh alerts for prefecture 45, so the receiver reads and acknowledges."""
    async with connect(MqttSettings(url=url, client_id=f"pub-{uuid.uuid4().hex[:8]}")) as pub:
        for _ in range(count):
            alert = build_alert(identifier=f"id-{uuid.uuid4().hex[:10]}", sender="test",
                                status="Exercise", sent=datetime.now(UTC), msg_type="Alert",
                                stage="shelter", texts=texts.shelter(), event_id="ev",
                                sequence=1, object_kind="ballistic_missile", code="45")
            await publish(pub, Publication(topics.alerts("exercise", "45"),
                                           alert.model_dump_json().encode()))


async def _catch(moment: str, broker: MosquittoBroker, receiver: Receiver,
                 ready: asyncio.Event, logs: list[EventDict]) -> None:
    """Bring the receiver to `moment` of a broker restart."""
    since = len(logs)
    if moment == "broker down":  # connecting to, or backing off from, a closed port
        await asyncio.to_thread(broker.stop)
        await eventually(_logged(logs, since, "broker.disconnected"), what="loss noticed")
    elif moment == "broker just back":  # backing off or connecting, to a fresh broker
        await asyncio.to_thread(broker.restart)
    elif moment == "mid-reconnect":  # a reconnect failed; the broker comes back meanwhile
        await asyncio.to_thread(broker.stop)
        await eventually(_logged(logs, since, "broker.unreachable"), what="a failed retry")
        await asyncio.to_thread(broker.start)
    else:  # "resubscribed", "mid-read": the new session is up
        ready.clear()
        await asyncio.to_thread(broker.restart)
        await asyncio.wait_for(ready.wait(), 10)
        if moment == "mid-read":
            seen = len(receiver.deliveries)
            await _burst(broker.url, 20)
            await eventually(lambda: len(receiver.deliveries) > seen, what="reading")


async def test_receiver_stops_within_2s_across_50_broker_restarts(tmp_path: Path) -> None:
    """50 times: subscribe, restart the broker, stop at a varied moment; run() ends in 2 s."""
    moments = ["broker down", "broker just back", "mid-reconnect", "resubscribed", "mid-read"]
    loop = asyncio.get_running_loop()
    stop_times: list[float] = []
    async with MosquittoBroker(data_dir=tmp_path / "broker") as broker:
        receiver = Receiver(ReceiverOptions(url=broker.url, protocol="5", codes=["45"],
                                            client_id=f"rx-restarts-{uuid.uuid4().hex[:8]}"))
        with captured_logs() as logs:
            for n in range(RESTARTS):
                ready = asyncio.Event()
                run = asyncio.create_task(receiver.run(ready), name=f"receiver run {n}")
                await asyncio.wait_for(ready.wait(), 10)
                await _catch(moments[n % len(moments)], broker, receiver, ready, logs)
                started = loop.time()
                receiver.stop()
                async with asyncio.timeout(STOP_LIMIT_S):
                    await run
                stop_times.append(loop.time() - started)
                if not broker.running:
                    await asyncio.to_thread(broker.start)
    print(f"receiver stop time over {RESTARTS} broker restarts: "
          f"max {max(stop_times) * 1000:.1f} ms")
    assert len(stop_times) == RESTARTS


class _ConnackRelay:
    """A TCP relay to the broker that calls `on_connack` `turns` loop turns after a CONNACK.

    Stopping a receiver then lands while aiomqtt is handing the CONNACK over: the moment the
    original bug needed, made to happen on every run instead of once in hundreds.
    """

    def __init__(self, broker_port: int, on_connack: Callable[[], None], turns: int) -> None:
        self.broker_port = broker_port
        self.on_connack = on_connack
        self.turns = turns
        self.port = 0
        self._tasks: set[asyncio.Task[None]] = set()

    async def __aenter__(self) -> _ConnackRelay:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._server.close()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._server.wait_closed()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.broker_port)
        for source, sink, down in ((reader, up_writer, False), (up_reader, writer, True)):
            task = asyncio.create_task(self._pump(source, sink, down))
            self._tasks.add(task)

    async def _pump(self, source: asyncio.StreamReader, sink: asyncio.StreamWriter,
                    down: bool) -> None:
        try:
            while data := await source.read(65536):
                sink.write(data)
                if down and data[0] & 0xF0 == 0x20:  # CONNACK
                    self._later(self.turns)
        finally:
            sink.close()

    def _later(self, turns: int) -> None:
        loop = asyncio.get_running_loop()
        if turns == 0:
            self.on_connack()
        else:
            loop.call_soon(self._later, turns - 1)


@pytest.mark.parametrize("turns", [0, 1, 2, 3, 4])
async def test_receiver_stopped_as_the_connack_arrives(mosquitto: MosquittoBroker,
                                                       turns: int) -> None:
    """stop() landing just as the CONNACK is read still ends run() (it hung: lost cancel)."""
    receiver: Receiver | None = None

    def stop() -> None:
        assert receiver is not None
        receiver.stop()

    async with _ConnackRelay(mosquitto.port, stop, turns) as relay:
        receiver = Receiver(ReceiverOptions(url=f"mqtt://127.0.0.1:{relay.port}", protocol="5",
                                            codes=["45"],
                                            client_id=f"rx-connack-{uuid.uuid4().hex[:8]}",
                                            persistent=False))
        async with asyncio.timeout(STOP_LIMIT_S):
            await receiver.run()


async def _stop_link(start: Callable[[], asyncio.Task[None]],
                     moment: Callable[[asyncio.Event], Awaitable[None]],
                     connected: asyncio.Event) -> float:
    """Start a link, wait until connected, bring it to `moment`, cancel; the seconds it took."""
    link = start()
    await asyncio.wait_for(connected.wait(), 10)
    await moment(connected)
    loop = asyncio.get_running_loop()
    started = loop.time()
    link.cancel()
    async with asyncio.timeout(STOP_LIMIT_S):
        with pytest.raises(asyncio.CancelledError):
            await link
    return loop.time() - started


async def test_link_stops_within_2s_during_and_after_a_broker_restart(
        atlas: Atlas, tmp_path: Path) -> None:
    """run_link, cancelled with the broker down, just back, or reconnected, ends in 2 s."""
    async with MosquittoBroker(data_dir=tmp_path / "broker") as broker, \
            await Store.open(tmp_path / "svc.db") as store:
        service = Service(atlas=atlas, store=store.record, config=ServiceConfig(),
                          clock=ScaledClock(start=DEFAULT_LAUNCH_TIME, speed=1.0))
        connected = asyncio.Event()

        def start() -> asyncio.Task[None]:
            return asyncio.create_task(run_link(service, url=broker.url, protocol="5",
                                                client_id="svc-restarts", connected=connected))

        async def down(up: asyncio.Event) -> None:
            await asyncio.to_thread(broker.stop)
            await eventually(lambda: not up.is_set(), what="link lost")

        async def just_back(up: asyncio.Event) -> None:
            await asyncio.to_thread(broker.restart)

        async def reconnected(up: asyncio.Event) -> None:
            await down(up)
            await asyncio.to_thread(broker.start)
            await asyncio.wait_for(up.wait(), 10)

        stop_times = []
        for moment in (down, just_back, reconnected) * 3:
            stop_times.append(await _stop_link(start, moment, connected))
            if not broker.running:
                await asyncio.to_thread(broker.start)
    print(f"link stop time: max {max(stop_times) * 1000:.1f} ms")
