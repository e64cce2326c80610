"""The dashboard in a process of its own, so that no page can delay a publish.

    service's process                          dashboard process (spawned, nice +10)
    Service.events --subscribe--> forwarder    reader thread --> asyncio queue
         (batches, put_nowait) ---- multiprocessing.Queue (FORWARD_BACKLOG batches) ---->
                                               LiveModel -> frames -> every page

The forwarder is all the service's process does for the dashboard: it takes whatever
events are queued, leaves out `Published` (the page does not show it), and puts them as
one batch without waiting (pickling and the pipe write happen on the queue's own feeder
thread). If the dashboard process stops taking them and FORWARD_BACKLOG batches wait,
batches are dropped with a warning rather than held. The dashboard process stops when
told, when its parent dies, and ignores Ctrl-C (its parent owns the signals).
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import os
import queue as queues
import signal
import socket
import threading
from collections.abc import AsyncIterator, Callable
from multiprocessing.connection import Connection
from multiprocessing.queues import Queue

import structlog

from alertsim.logs import configure_logging
from alertsim.service.events import Published, ServiceEvent, Written
from alertsim.web.serving import DashboardSpec, EventQueue, serve_dashboard

__all__ = ["FORWARD_BACKLOG", "dashboard_process"]

log = structlog.get_logger("alertsim.web")
FORWARD_BACKLOG = 10_000  # batches in flight to the dashboard process
BATCH_MAX = 500  # events in one batch
HOLD_MAX_S = 0.5  # the longest events wait for the alerts they follow to be acknowledged
NICE = 10  # the dashboard's priority below the service's
START_TIMEOUT_S = 60.0  # a spawned interpreter imports numpy, shapely, pyproj: seconds
STOP_TIMEOUT_S = 5.0
Batch = list[ServiceEvent] | None  # None: stop


@contextlib.asynccontextmanager
async def dashboard_process(spec: DashboardSpec, sock: socket.socket,
                            events: EventQueue) -> AsyncIterator[str]:
    """Run the dashboard in its own process on `sock`, fed from `events`; yields its URL."""
    context = multiprocessing.get_context("spawn")
    pipe: Queue[Batch] = context.Queue(maxsize=FORWARD_BACKLOG)
    reply, reply_end = context.Pipe(duplex=False)
    process = context.Process(target=_main, args=(spec, sock, pipe, reply_end),
                              name="alertsim-dashboard", daemon=True)
    process.start()
    reply_end.close()
    forward = asyncio.create_task(_forward(events, pipe), name="dashboard-forward")
    try:
        yield await _started(reply)
    finally:
        forward.cancel()
        await asyncio.gather(forward, return_exceptions=True)
        with contextlib.suppress(queues.Full):
            pipe.put_nowait(None)
        await asyncio.to_thread(process.join, STOP_TIMEOUT_S)
        if process.is_alive():
            process.terminate()
            await asyncio.to_thread(process.join, STOP_TIMEOUT_S)
        pipe.close()
        pipe.cancel_join_thread()  # a dead reader must not hold the service at exit
        reply.close()


async def _started(reply: Connection) -> str:
    """The URL the dashboard process reports once it serves (or what stopped it)."""
    ready = await asyncio.to_thread(reply.poll, START_TIMEOUT_S)
    if not ready:
        raise RuntimeError(f"the dashboard process did not start in {START_TIMEOUT_S:g} s")
    try:
        url: str = reply.recv()
    except EOFError as exc:
        raise RuntimeError("the dashboard process stopped during start-up") from exc
    return url


class _Held:
    """Events held back while the service has rows the broker has not acknowledged, so the
    page's work (tracks, a frame to every page) starts after the alert is out, not beside
    it. Held at most HOLD_MAX_S, so a long burst still shows."""

    def __init__(self) -> None:
        self.events: list[ServiceEvent] = []
        self.unacked = 0  # outbox rows written, not yet acknowledged (as the service says)
        self.since = 0.0

    def take(self, event: ServiceEvent, now: float) -> None:
        if isinstance(event, Published):
            self.unacked = event.depth  # the service's own count
            return
        if isinstance(event, Written):
            self.unacked += len(event.rows)
        if not self.events:
            self.since = now
        self.events.append(event)

    def due(self, now: float) -> bool:
        return bool(self.events) and (self.unacked == 0 or now - self.since >= HOLD_MAX_S)

    def wait_s(self, now: float) -> float | None:
        return None if not self.events else max(0.0, self.since + HOLD_MAX_S - now)


async def _forward(events: EventQueue, pipe: Queue[Batch]) -> None:
    """Hand the service's events to the dashboard process in batches, never waiting, once
    the alerts they follow are acknowledged (`_Held`)."""
    loop, held, dropped, cut = asyncio.get_running_loop(), _Held(), 0, False
    while not cut:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(held.wait_s(loop.time())):
                batch = [await events.get()]
                while not events.empty() and len(batch) < BATCH_MAX:
                    batch.append(events.get_nowait())
                for event in batch:
                    if event is None:
                        cut = True
                        log.warning("dashboard.lagged", reason="cut off by the service")
                    else:
                        held.take(event, loop.time())
        if held.due(loop.time()) or (cut and held.events):
            try:
                pipe.put_nowait(held.events)
            except queues.Full:
                dropped += 1
                log.warning("dashboard.behind", dropped_batches=dropped)
            held.events = []


def _main(spec: DashboardSpec, sock: socket.socket, pipe: Queue[Batch],
          reply: Connection) -> None:
    """The dashboard process: below the service's priority, deaf to Ctrl-C."""
    with contextlib.suppress(OSError):
        os.nice(NICE)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    configure_logging(level="warning")
    asyncio.run(_serve(spec, sock, pipe, reply))


async def _serve(spec: DashboardSpec, sock: socket.socket, pipe: Queue[Batch],
                 reply: Connection) -> None:
    loop = asyncio.get_running_loop()
    events: EventQueue = asyncio.Queue()
    stop = asyncio.Event()

    def deliver(batch: Batch) -> None:
        if batch is None:
            stop.set()
            return
        for event in batch:
            events.put_nowait(event)

    threading.Thread(target=_read, args=(pipe, loop, deliver), name="dashboard-read",
                     daemon=True).start()
    async with serve_dashboard(spec, sock, events, spec.clock.now) as url:
        reply.send(url)
        reply.close()
        await stop.wait()


def _read(pipe: Queue[Batch], loop: asyncio.AbstractEventLoop,
          deliver: Callable[[Batch], None]) -> None:
    """The reader thread: batches from the service into the loop; None when it is gone."""
    parent = multiprocessing.parent_process()
    batch: Batch = []
    while batch is not None:
        try:
            batch = pipe.get(timeout=1.0)
        except queues.Empty:
            if parent is None or parent.is_alive():
                continue
            batch = None
        except (EOFError, OSError):
            batch = None
        try:
            loop.call_soon_threadsafe(deliver, batch)
        except RuntimeError:  # the loop has closed
            return
