"""Run the live dashboard beside a service, in the same event loop, on 127.0.0.1.

    async with live_dashboard(service, store, port=8080, title=...) as url:
        ...  # the service runs; the page at `url` follows it

Fed by `Service.watch()` (every outbox row: alerts, retained states, errors, as written)
and by polling the record about once a second (sooner after any row) for what the
outbox does not carry: detections (the predicted tracks), closed events and receipts.
At start the model is seeded from the record's outbox, so `serve --dashboard` on an
existing record shows the current states at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Iterator

import structlog
import uvicorn

from alertsim.adapters.sqlite.store import Store
from alertsim.domain.detection import Detection
from alertsim.errors import InputError
from alertsim.service.service import Service
from alertsim.web.app import Hub, build_app, overlay_update
from alertsim.web.live import LiveModel
from alertsim.web.map import track_of

__all__ = ["live_dashboard"]

log = structlog.get_logger("alertsim.web")
POLL_S = 1.0
MIN_GAP_S = 0.1
STARTUP_TIMEOUT_S = 15.0


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        # The program owns its signals: Ctrl-C ends the drill or the service, which then
        # stops the page; uvicorn must not take SIGINT for itself.
        yield


class _Feed:
    """Keeps a LiveModel up to date from one service and its record."""

    def __init__(self, service: Service, store: Store, model: LiveModel, hub: Hub) -> None:
        self.service = service
        self.store = store
        self.model = model
        self.hub = hub
        self.poke = asyncio.Event()
        self.seeded = asyncio.Event()
        self._sequences: dict[str, int] = {}
        self._last_receipt = 0

    async def watch(self) -> None:
        async for row in self.service.watch():
            await self.seeded.wait()  # rows queued while seeding are applied after it
            for update in self.model.apply(row):
                self.hub.publish(update)
            self.poke.set()

    async def seed(self) -> None:
        for row in await self.store.outbox():
            self.model.apply(row)
        await self.poll()
        self.seeded.set()

    async def poll_forever(self) -> None:
        """Poll about once a second, sooner after a row, but never more than a fifth of
        the time (a big drill's receipts take a while to read)."""
        loop = asyncio.get_running_loop()
        took = 0.0
        while True:
            await asyncio.sleep(max(MIN_GAP_S, 4 * took))
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(POLL_S):
                    await self.poke.wait()
            self.poke.clear()
            started = loop.time()
            await self.poll()
            took = loop.time() - started

    async def poll(self) -> None:
        changed = False
        latest: dict[str, tuple[int, str]] = {}
        for row in await self.store.detections():
            if row.sequence >= latest.get(row.event_id, (0, ""))[0]:
                latest[row.event_id] = (row.sequence, row.parsed_json)
        for event_id, (sequence, parsed) in latest.items():
            if self._sequences.get(event_id) != sequence:
                self._sequences[event_id] = sequence
                changed |= self.model.set_track(track_of(Detection.model_validate_json(parsed)))
        closed = {e.event_id for e in await self.store.events() if e.closed}
        if closed != self.model.closed:
            self.model.closed = closed
            changed = True
        if changed:
            self.hub.publish(overlay_update(self.model))
        fresh = [(r.id, r.message_id, r.received_at) for r in await self.store.receipts()
                 if r.id > self._last_receipt]
        if fresh:
            self._last_receipt = max(r[0] for r in fresh)
        for update in self.model.add_receipts(fresh):
            self.hub.publish(update)
        self.hub.publish({"type": "clock", **self.model.clock(self.service.clock.now())})


def _bind(port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(("127.0.0.1", port))
    except OSError as exc:
        sock.close()
        raise InputError("--port", [f"cannot serve the dashboard on 127.0.0.1:{port}: "
                                    f"{exc.strerror or exc}"]) from exc
    return sock


async def _started(server: uvicorn.Server, task: asyncio.Task[None]) -> None:
    async with asyncio.timeout(STARTUP_TIMEOUT_S):
        while not server.started:
            if task.done():
                task.result()  # raises what stopped it
                raise RuntimeError("the dashboard server stopped during start-up")
            await asyncio.sleep(0.01)


@contextlib.asynccontextmanager
async def live_dashboard(service: Service, store: Store, *, port: int = 0,
                         title: str = "") -> AsyncIterator[str]:
    """Serve the dashboard of `service` while the block runs; yields the page's URL."""
    model = LiveModel(status=service.config.alert_status, title=title,
                      speed=service.clock.speed, operator_topic=service.config.topics.operator)
    hub = Hub()
    feed = _Feed(service, store, model, hub)
    sock = _bind(port)
    config = uvicorn.Config(build_app(model, hub, service.clock.now), log_level="warning",
                            lifespan="off", access_log=False, timeout_graceful_shutdown=2)
    server = _Server(config)
    tasks = [asyncio.create_task(feed.watch(), name="dashboard-watch")]
    await asyncio.sleep(0)  # let the watcher register before the record is read
    try:
        await feed.seed()
        tasks.append(asyncio.create_task(feed.poll_forever(), name="dashboard-poll"))
        tasks.append(asyncio.create_task(server.serve(sockets=[sock]), name="dashboard-http"))
        await _started(server, tasks[-1])
        url = f"http://127.0.0.1:{sock.getsockname()[1]}/"
        log.info("dashboard.started", url=url)
        yield url
    finally:
        hub.close()
        server.should_exit = True
        for task in tasks[:2]:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        sock.close()
