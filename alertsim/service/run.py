"""Run the service against a broker until interrupted: the composition root of `serve`.

The one module of `alertsim.service` that wires adapters in (SQLite record, MQTT link,
system clock); the CLI builds `ServeOptions` from settings and calls `serve`.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import structlog

from alertsim.adapters.mqtt.client import wait_for_protocol
from alertsim.adapters.mqtt.link import run_link
from alertsim.adapters.mqtt.signing import SigningKey
from alertsim.adapters.mqtt.url import parse_broker_url
from alertsim.adapters.sqlite.store import Store
from alertsim.data import load_atlas
from alertsim.service.clock import SystemClock
from alertsim.service.config import ServiceConfig
from alertsim.service.observer import Observer
from alertsim.service.service import Service

__all__ = ["ServeOptions", "run_serve", "serve"]

log = structlog.get_logger("alertsim.serve")


@dataclass(frozen=True)
class ServeOptions:
    """Where the service keeps its record and which broker it serves, and as whom."""

    config: ServiceConfig
    db: Path
    broker_url: str
    mqtt_protocol: str = "auto"  # "5", "3.1.1" or "auto"
    client_id: str = "alertsim-service"
    signer: SigningKey | None = None  # signs every alert and state (`signing`); None: unsigned
    # Shared by redundant services: identical identifiers (docs/redundancy.md). Never logged.
    identity_secret: bytes | None = field(default=None, repr=False)
    cap: bool = False  # also publish every alert as CAP 1.2 XML on its cap topic
    # Broker credentials (default: those in `broker_url`) and the CA for TLS; never logged.
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    ca_file: Path | None = None
    dashboard_port: int | None = None  # serve the live dashboard (0: any free port); None: no
    metrics_port: int | None = None  # serve Prometheus /metrics (0: any free port); None: no


def _dashboard(service: Service, store: Store,
               port: int | None) -> contextlib.AbstractAsyncContextManager[str | None]:
    """The live dashboard beside the service (its URL is logged), or nothing."""
    if port is None:
        return contextlib.nullcontext()
    from alertsim.web.dashboard import live_dashboard  # starlette and uvicorn only when asked

    return live_dashboard(service, store, port=port, title="alertsim serve")


@contextlib.asynccontextmanager
async def _metrics(port: int | None) -> AsyncIterator[Observer | None]:
    """The Prometheus observer and its /metrics endpoint (its port is logged), or nothing."""
    if port is None:
        yield None
        return
    from alertsim.metrics import PrometheusObserver, start_metrics_server

    observer = PrometheusObserver()
    server = start_metrics_server(observer.registry, port)
    log.info("metrics.listening", url=f"http://127.0.0.1:{server.port}/metrics")
    try:
        yield observer
    finally:
        server.close()


def run_serve(options: ServeOptions) -> None:
    """`serve` until interrupted, on uvloop when it is installed (the service's throughput
    gains 10-30%), else on asyncio's own loop."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency off Windows
        asyncio.run(serve(options))
        return
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(serve(options))


async def serve(options: ServeOptions) -> None:
    """Run the service until interrupted: resume the record, timers, broker link."""
    atlas = load_atlas()
    atlas.warm_up()
    config = options.config
    async with await Store.open(options.db) as store, \
            _metrics(options.metrics_port) as observer:
        service = Service(atlas=atlas, store=store, clock=SystemClock(), config=config,
                          observer=observer)
        service.engine.identity_secret = options.identity_secret  # before events are made
        resumed = await service.resume()
        log.info("service.started", db=str(options.db),
                 broker=parse_broker_url(options.broker_url).redacted(),
                 status=config.status, policy=config.policy, resumed_events=resumed,
                 shared_identity=options.identity_secret is not None)
        protocol = await wait_for_protocol(options.broker_url, options.mqtt_protocol,
                                           username=options.username,
                                           password=options.password, ca_file=options.ca_file)
        async with _dashboard(service, store, options.dashboard_port), \
                asyncio.TaskGroup() as group:
            group.create_task(service.run_timers(), name="service-timers")
            group.create_task(run_link(service, url=options.broker_url, protocol=protocol,
                                       client_id=options.client_id, username=options.username,
                                       password=options.password, ca_file=options.ca_file,
                                       signer=options.signer, cap=options.cap),
                              name="service-link")
