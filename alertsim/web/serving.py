"""The dashboard itself, wherever it runs: a model fed from a queue of service events,
frames, and the HTTP server on a bound socket (`web.dashboard` picks the place)."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

import structlog
from aiohttp import web

from alertsim.domain.vocabulary import PolicyChoice
from alertsim.service.events import ServiceEvent
from alertsim.web.app import DashboardServer
from alertsim.web.console import ConsoleSpec, add_console
from alertsim.web.frames import MAX_BUFFERED, Broadcaster
from alertsim.web.live import LiveModel
from alertsim.web.seed import DashboardSeed

__all__ = ["ClockSample", "DashboardSpec", "EventQueue", "follow", "serve_dashboard"]

log = structlog.get_logger("alertsim.web")
EventQueue = asyncio.Queue[ServiceEvent | None]
BACKLOG = 512  # connections waiting to be accepted (a crowd of pages reconnecting at once)
STOP_TIMEOUT_S = 2.0  # at stop, how long a stream may take to flush before it is cut


@dataclass(frozen=True)
class ClockSample:
    """The scenario clock at one moment (monotonic seconds), running `speed` times real
    time: another process reads the same clock from it."""

    sim_now: datetime
    monotonic: float
    speed: float

    def now(self) -> datetime:
        return self.sim_now + timedelta(seconds=(time.monotonic() - self.monotonic)
                                        * self.speed)


@dataclass(frozen=True)
class DashboardSpec:
    """Everything the dashboard needs of the service, as plain (picklable) data."""

    status: str
    title: str
    speed: float
    operator_topic: str
    clock: ClockSample
    seed: DashboardSeed | None
    max_buffered: int = MAX_BUFFERED  # bytes a page may leave unread before it is dropped
    console: ConsoleSpec | None = None  # the operator console's broker (`web.console`)
    policy: PolicyChoice = "auto"  # the service's, so each prefecture's reason is its rule


async def follow(model: LiveModel, broadcaster: Broadcaster, queue: EventQueue) -> None:
    """Apply the service's events to the model and queue the updates for the next frame."""
    while (event := await queue.get()) is not None:
        broadcaster.publish(model.take(event))
        if queue.empty():
            model.caught_up()
    log.warning("dashboard.lagged", reason="cut off by the service; the page stops here")


@contextlib.asynccontextmanager
async def serve_dashboard(spec: DashboardSpec, sock: socket.socket, queue: EventQueue,
                          sim_now: Callable[[], datetime | None]) -> AsyncIterator[str]:
    """Serve the page on `sock`, following `queue`, while the block runs; yields the URL."""
    model = LiveModel(status=spec.status, title=spec.title, speed=spec.speed,
                      operator_topic=spec.operator_topic, policy=spec.policy)
    if spec.seed is not None:
        model.seed(spec.seed)
    broadcaster = Broadcaster(lambda: model.clock(sim_now()), max_buffered=spec.max_buffered)
    app = DashboardServer(model, broadcaster, sim_now).application()
    add_console(app, spec.console)
    # handler_cancellation: a stream's handler ends as soon as its page disconnects
    runner = web.AppRunner(app, access_log=None, handler_cancellation=True,
                           shutdown_timeout=STOP_TIMEOUT_S)
    await runner.setup()
    await web.SockSite(runner, sock, backlog=BACKLOG).start()
    tasks = [asyncio.create_task(follow(model, broadcaster, queue), name="dashboard-follow"),
             asyncio.create_task(broadcaster.run(), name="dashboard-frames")]
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}/"
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        broadcaster.close()
        await runner.cleanup()
