"""`alertsim fleet`: N lightweight receivers (MQTT 5) spread over the prefectures by
population, until Ctrl-C, SIGTERM or `--duration`; then a summary of what they got.

The receivers listen to their prefecture's alert and state topics and the national topic
of one status under one topic root (a `serve`'s `alertsim/v1`, or a drill's
`alertsim/v1/drills/DRILL_ID`), in `--shards` processes. The summary counts deliveries,
receivers that missed an alert the others of their place got, duplicates (one identifier
twice at one receiver) and wrong-area deliveries (an alert naming another prefecture),
with latency against the service's `sent-at`; `--json FILE` writes it as JSON.
`--metrics-port` serves the fleet's Prometheus gauges (`alertsim.fleet.exporter`).
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from alertsim.cli.messages import say
from alertsim.cli.options import (
    EXIT_OK,
    BrokerOption,
    CaFileOption,
    QuietLogLevelOption,
    StatusOption,
    TopicRootOption,
    positive_number,
)
from alertsim.cli.settings import broker_url_of, settings_and_logging
from alertsim.domain.vocabulary import Status
from alertsim.fleet.summary import render_summary

if TYPE_CHECKING:
    from alertsim.fleet.fleet import ProcessFleet
    from alertsim.fleet.summary import FleetReady, FleetSummary

__all__ = ["fleet_command", "render_summary"]


@contextlib.asynccontextmanager
async def _metrics(fleet: ProcessFleet, ready: FleetReady,
                   port: int | None) -> AsyncIterator[None]:
    """The fleet's /metrics endpoint while the block runs (nothing without a port)."""
    if port is None:
        yield
        return
    from alertsim.fleet.exporter import FleetMetrics
    from alertsim.metrics import start_metrics_server

    metrics = FleetMetrics()
    metrics.ready(ready)
    server = start_metrics_server(metrics.registry, port)
    print(say("fleet.metrics", url=f"http://127.0.0.1:{server.port}/metrics"), flush=True)
    refresh = asyncio.create_task(metrics.refresh_forever(fleet))
    try:
        yield
    finally:
        refresh.cancel()
        await asyncio.gather(refresh, return_exceptions=True)
        server.close()


async def _run(*, url: str, receivers: int, status: Status, root: str, shards: int | None,
               duration: float | None, ca_file: Path | None,
               metrics_port: int | None) -> FleetSummary:
    from alertsim.domain.topics import TopicTree
    from alertsim.errors import BrokerError
    from alertsim.fleet.population import plan
    from alertsim.mqtt.negotiation import negotiate_protocol

    if await negotiate_protocol(url, ca_file=ca_file) != "5":
        raise BrokerError("the fleet speaks MQTT 5 only, and this broker offers 3.1.1")
    from alertsim.fleet.fleet import ProcessFleet

    fleet = ProcessFleet(plan(receivers), url=url, status=status, tree=TopicTree(root),
                  shards=shards, ca_file=ca_file)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    try:
        ready = await fleet.start()
        print(say("fleet.ready", subscribed=ready.subscribed, seconds=ready.connect_s,
                  shards=fleet.shards), flush=True)
        async with _metrics(fleet, ready, metrics_port):
            with contextlib.suppress(TimeoutError):  # --duration is up
                await asyncio.wait_for(stop.wait(), duration)
        result = await fleet.stop()
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)
        await fleet.stop()  # nothing left to stop after the one above
    return result.summary


def fleet_command(
    receivers: Annotated[int, typer.Option(
        min=1, metavar="N", help="receivers, spread over the prefectures by population")],
    broker: BrokerOption = None,
    status: StatusOption = None,
    topic_root: TopicRootOption = None,
    json_file: Annotated[Path | None, typer.Option(
        "--json", metavar="FILE", help="also write the summary as JSON here")] = None,
    shards: Annotated[int | None, typer.Option(
        min=1, metavar="K", help="processes (default: one per 2,500 receivers, at most "
                                 "one per core)")] = None,
    duration: Annotated[float | None, typer.Option(
        parser=positive_number, metavar="SECONDS",
        help="stop after this long (default: at Ctrl-C or SIGTERM)")] = None,
    metrics_port: Annotated[int | None, typer.Option(
        "--metrics-port", min=0, max=65535, metavar="PORT",
        help="serve the fleet's Prometheus metrics at http://HOST:PORT/metrics "
             "(0: any free port, printed)")] = None,
    log_level: QuietLogLevelOption = None,
    ca_file: CaFileOption = None,
) -> int:
    """Run N receivers until stopped, then print what they got.

    Exit 1 when the broker cannot be reached or the fleet cannot subscribe in time.
    """
    settings = settings_and_logging(quiet=True, broker_url=broker, status=status,
                                    topic_root=topic_root, log_level=log_level,
                                    mqtt_ca_file=ca_file)
    summary = asyncio.run(_run(
        url=broker_url_of(settings), receivers=receivers, status=settings.status,
        root=settings.topic_root, shards=shards, duration=duration,
        ca_file=settings.mqtt_ca_file, metrics_port=metrics_port))
    print(render_summary(summary))
    if json_file is not None:
        json_file.write_text(summary.model_dump_json(indent=1) + "\n", encoding="utf-8")
        print(say("fleet.summary", path=json_file))
    return EXIT_OK
