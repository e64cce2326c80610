"""Run the live dashboard beside a service, on 127.0.0.1, where it cannot hold a publish.

    async with live_dashboard(service, seed=store.views, port=8080, title=...) as url:
        ...  # the service runs; the page at `url` follows it

The dashboard follows `Service.events` only (never the record while live). It starts
from a `DashboardSeed`: given as data, or read from the record's views after subscribing
(so nothing is lost in between; `LiveModel` drops what it sees twice).

Where it runs (`isolated`, default True): in a process of its own (`web.process`), at a
lower priority. The service's side then only forwards events, in batches, to a bounded
multiprocessing queue, without ever waiting; rendering tracks, encoding frames and
writing to a crowd of pages all happen in the dashboard's process, off the service's
event loop and its GIL. `isolated=False` serves it in the service's own loop (tests,
and the benchmark's comparison).
"""

from __future__ import annotations

import contextlib
import socket
import time
from collections.abc import AsyncIterator

import structlog

from alertsim.errors import InputError
from alertsim.service.service import Service
from alertsim.web.console import ConsoleSpec
from alertsim.web.frames import MAX_BUFFERED
from alertsim.web.local_http import loopback_socket
from alertsim.web.seed import DashboardSeed, SeedSource, seed_from
from alertsim.web.serving import ClockSample, DashboardSpec, serve_dashboard

__all__ = ["live_dashboard"]

log = structlog.get_logger("alertsim.web")


def spec_of(service: Service, seed: DashboardSeed | None, title: str,
            max_buffered: int, console: ConsoleSpec | None = None) -> DashboardSpec:
    clock = service.clock
    return DashboardSpec(status=service.config.alert_status, title=title, speed=clock.speed,
                         operator_topic=service.config.topics.operator,
                         clock=ClockSample(clock.now(), time.monotonic(), clock.speed),
                         seed=seed, max_buffered=max_buffered, console=console,
                         policy=service.config.policy)


def bind(port: int) -> socket.socket:
    try:
        return loopback_socket(port)
    except OSError as exc:
        raise InputError("--port", [f"cannot serve the dashboard on 127.0.0.1:{port}: "
                                    f"{exc.strerror or exc}"]) from exc


async def _seed(seed: DashboardSeed | SeedSource | None) -> DashboardSeed | None:
    if seed is None or isinstance(seed, DashboardSeed):
        return seed
    return await seed_from(seed)


@contextlib.asynccontextmanager
async def live_dashboard(service: Service, *, seed: DashboardSeed | SeedSource | None = None,
                         port: int = 0, title: str = "", isolated: bool = True,
                         max_buffered: int = MAX_BUFFERED,
                         console: ConsoleSpec | None = None) -> AsyncIterator[str]:
    """Serve the dashboard of `service` while the block runs; yields the page's URL.

    `seed`: the starting picture, or the record's views to read it from (after
    subscribing to the events); None: an empty record (a drill). `max_buffered`: bytes a
    page may leave unread before it is disconnected."""
    sock = bind(port)
    queue = service.events.subscribe()
    try:
        spec = spec_of(service, await _seed(seed), title, max_buffered, console)
        if isolated:
            from alertsim.web.process import dashboard_process

            page = dashboard_process(spec, sock, queue)
        else:
            page = serve_dashboard(spec, sock, queue, service.clock.now)
        async with page as url:
            log.info("dashboard.started", url=url, isolated=isolated)
            yield url
    finally:
        service.events.unsubscribe(queue)
        sock.close()
