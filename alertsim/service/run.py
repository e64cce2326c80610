"""`alertsim serve` and `alertsim detect`: the service against a broker, and a hand sender."""

from __future__ import annotations

import asyncio
import random
import sys
from datetime import timedelta
from pathlib import Path
from typing import TextIO

import structlog

from alertsim.adapters.mqtt import topics
from alertsim.adapters.mqtt.client import (
    MqttSettings,
    OutgoingMessage,
    backoff_delays,
    connect,
    negotiate_protocol,
    publish,
)
from alertsim.adapters.mqtt.client import Protocol as MqttProtocol
from alertsim.adapters.sqlite.store import Store
from alertsim.cli.settings import ServiceSettings
from alertsim.data import load_atlas
from alertsim.domain.detection import Detection
from alertsim.errors import BrokerError
from alertsim.service.clock import SystemClock
from alertsim.service.service import Service, ServiceConfig, run_link

log = structlog.get_logger("alertsim.serve")


async def wait_for_protocol(url: str, wanted: str) -> MqttProtocol:
    """The protocol to use; with "auto", ask the broker, waiting for it if it is away."""
    if wanted in ("5", "3.1.1"):
        return "5" if wanted == "5" else "3.1.1"
    for delay in backoff_delays(rng=random.Random(), maximum=5.0):
        try:
            return await negotiate_protocol(url)
        except BrokerError as exc:
            log.warning("broker.unreachable", url=url, error=str(exc), retry_in_s=round(delay, 2))
            await asyncio.sleep(delay)
    raise AssertionError("backoff_delays is endless")


async def serve(settings: ServiceSettings) -> None:
    """Run the service until interrupted: resume the record, timers, broker link."""
    atlas = load_atlas()
    atlas.warm_up()
    async with await Store.open(settings.db) as store:
        service = Service(atlas=atlas, store=store, clock=SystemClock(), config=ServiceConfig(
            status=settings.status, policy=settings.policy, sender=settings.sender,
            max_payload_bytes=settings.max_payload_bytes,
            close_after=timedelta(seconds=settings.close_after_s)))
        resumed = await service.resume()
        log.info("service.started", db=str(settings.db), broker=settings.broker_url,
                 status=settings.status, policy=settings.policy, resumed_events=resumed)
        protocol = await wait_for_protocol(settings.broker_url, settings.mqtt_protocol)
        async with asyncio.TaskGroup() as group:
            group.create_task(service.run_timers(), name="service-timers")
            group.create_task(run_link(service, url=settings.broker_url, protocol=protocol,
                                       client_id=settings.client_id), name="service-link")


async def send_detection(path: Path, detection: Detection, *, url: str,
                         out: TextIO | None = None) -> None:
    """Publish one detection (already validated) to the detections topic, QoS 1."""
    out = out or sys.stdout
    protocol = await negotiate_protocol(url)
    settings = MqttSettings(url=url, client_id=f"alertsim-detect-{detection.event_id}"[:64],
                            protocol=protocol)
    async with connect(settings) as client:
        await publish(client, OutgoingMessage(topics.DETECTIONS,
                                              detection.model_dump_json().encode(), qos=1),
                      protocol=protocol)
    print(f"published {path} ({detection.event_id} #{detection.sequence}) to "
          f"{topics.DETECTIONS} on {url}", file=out)
