"""The dashboard's stream under load: a page that stops reading is dropped, the others and
the service carry on; a dashboard opened on an existing record shows it at once."""

from __future__ import annotations

import asyncio
import json
import socket
import urllib.request
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest

from alertsim.adapters.sqlite.store import Store
from alertsim.domain.prefectures import Atlas
from alertsim.service.clock import ScaledClock
from alertsim.service.config import ServiceConfig
from alertsim.service.service import Service
from alertsim.testing import DEFAULT_LAUNCH_TIME, InMemoryPublisher, eventually
from alertsim.testing.bursts import burst
from alertsim.web.dashboard import live_dashboard

REQUEST = b"GET /api/stream HTTP/1.1\r\nHost: test\r\n\r\n"


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    async with await Store.open(tmp_path / "web.db") as opened:
        yield opened


def make_service(atlas: Atlas, store: Store) -> Service:
    clock = ScaledClock(start=DEFAULT_LAUNCH_TIME + timedelta(minutes=2))
    return Service(atlas=atlas, store=store.record, clock=clock,
                   config=ServiceConfig(national_info=True))


def port_of(url: str) -> int:
    return int(url.rstrip("/").rsplit(":", 1)[1])


class Reader:
    """A page's stream, read as fast as it comes: the events whose track it has seen."""

    def __init__(self) -> None:
        self.tracks: set[str] = set()
        self.messages = 0
        self.ended = False

    async def run(self, port: int) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port, limit=1 << 24)
        try:
            writer.write(REQUEST)
            async for line in reader:  # one frame is one line (a track is tens of KB)
                if line.startswith(b"data: "):
                    self.messages += 1
                    self.tracks |= set(json.loads(line[6:]).get("tracks", {}))
            self.ended = True
        finally:
            writer.close()


def stalled(port: int) -> socket.socket:
    """A client that asks for the stream and never reads (a 4 KB receive buffer)."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", port))
    sock.sendall(REQUEST)
    return sock


def ended_by_server(sock: socket.socket) -> bool:
    """Read what is buffered: True when the stream then ends (reset or EOF), False when it
    is still open after 5 s of silence."""
    sock.settimeout(5)
    try:
        while sock.recv(1 << 20):
            pass
    except TimeoutError:
        return False
    except OSError:
        return True
    finally:
        sock.close()
    return True


async def test_a_stalled_page_is_dropped_and_nothing_else_waits(atlas: Atlas,
                                                                store: Store) -> None:
    """A client that never reads is disconnected once it has left 64 KB unread (beyond
    the kernel's buffers) when a frame is due, while a
    reading client gets every event's track and the service publishes every alert."""
    service = make_service(atlas, store)
    publisher = InMemoryPublisher()
    pump = asyncio.create_task(service.pump(publisher), name="test-pump")
    # Enough tracks to overflow the kernel's buffers and 64 KB more (about 6 KB each).
    detections = burst(80, seed=3)
    async with live_dashboard(service, port=0, max_buffered=64 * 1024) as url:
        slow = stalled(port_of(url))
        reader = Reader()
        reading = asyncio.create_task(reader.run(port_of(url)), name="test-reader")
        await eventually(lambda: reader.messages, timeout=10, what="the reader's snapshot")
        for detection in detections:  # a few per frame: the stalled page falls behind
            assert await service.accept_detection(detection.model_dump_json().encode())
            await asyncio.sleep(0.05)
        await eventually(service.drained, timeout=30, what="every alert published")
        wanted = {d.event_id for d in detections}
        await eventually(lambda: reader.tracks >= wanted, timeout=30,
                         what="the reader saw every track")
        assert await asyncio.to_thread(ended_by_server, slow)
        assert not reader.ended
        reading.cancel()
    pump.cancel()
    await asyncio.gather(pump, reading, return_exceptions=True)
    alerts = [m for m in publisher.messages if "/alerts/" in m.topic]
    assert {json.loads(m.payload)["alertsim"]["event_id"] for m in alerts} == wanted


async def test_an_existing_record_shows_at_once(atlas: Atlas, store: Store) -> None:
    """Opened on a record that already holds an event, /api/state shows its states with
    no new input (the seed is read from the record's views)."""
    service = make_service(atlas, store)
    [detection] = burst(1, seed=5)
    assert await service.accept_detection(detection.model_dump_json().encode())
    shown = {row.prefecture for row in await store.views.outbox(kind="alert")}
    async with live_dashboard(service, seed=store.views, port=0, isolated=False) as url:
        body = await asyncio.to_thread(lambda: urllib.request.urlopen(f"{url}api/state").read())
    state = json.loads(body)
    busy = {c for c, s in state["prefectures"].items() if s != "none"}
    assert busy == shown - {None}
    assert [e["event_id"] for e in state["events"]] == [detection.event_id]
