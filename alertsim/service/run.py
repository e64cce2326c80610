"""Run the service against a broker until interrupted: the composition root of `serve`.

The one module of `alertsim.service` that wires adapters in (SQLite record, MQTT link,
system clock); the CLI builds `ServeOptions` from settings and calls `serve`.
"""

from __future__ import annotations

import asyncio
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
from alertsim.service.service import Service, ServiceConfig

__all__ = ["ServeOptions", "serve"]

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
    # Broker credentials (default: those in `broker_url`) and the CA for TLS; never logged.
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    ca_file: Path | None = None


async def serve(options: ServeOptions) -> None:
    """Run the service until interrupted: resume the record, timers, broker link."""
    atlas = load_atlas()
    atlas.warm_up()
    config = options.config
    async with await Store.open(options.db) as store:
        service = Service(atlas=atlas, store=store, clock=SystemClock(), config=config)
        resumed = await service.resume()
        log.info("service.started", db=str(options.db),
                 broker=parse_broker_url(options.broker_url).redacted(),
                 status=config.status, policy=config.policy, resumed_events=resumed)
        protocol = await wait_for_protocol(options.broker_url, options.mqtt_protocol,
                                           username=options.username,
                                           password=options.password, ca_file=options.ca_file)
        async with asyncio.TaskGroup() as group:
            group.create_task(service.run_timers(), name="service-timers")
            group.create_task(run_link(service, url=options.broker_url, protocol=protocol,
                                       client_id=options.client_id, username=options.username,
                                       password=options.password, ca_file=options.ca_file,
                                       signer=options.signer),
                              name="service-link")
