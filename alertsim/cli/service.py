"""`alertsim serve` (the service against a broker) and `alertsim detect` (a detection by hand)."""

import asyncio
from datetime import timedelta
from pathlib import Path
from typing import Annotated

import typer

from alertsim.cli.decide import DetectionArgument, read_detection
from alertsim.cli.options import EXIT_OK, BrokerOption, LogLevelOption, StatusOption
from alertsim.cli.settings import MqttProtocol, settings_and_logging
from alertsim.domain.vocabulary import Policy

__all__ = ["detect_command", "serve_command"]


def serve_command(
    broker: BrokerOption = None,
    db: Annotated[Path | None, typer.Option(
        metavar="PATH", help="SQLite record (env ALERTSIM_DB)")] = None,
    policy: Annotated[Policy | None, typer.Option(
        help="warning rule (env ALERTSIM_POLICY)")] = None,
    status: StatusOption = None,
    protocol: Annotated[MqttProtocol | None, typer.Option(
        help="MQTT protocol (env ALERTSIM_MQTT_PROTOCOL, default auto)")] = None,
    log_level: LogLevelOption = None,
) -> int:
    """Run the service against a broker until interrupted."""
    from alertsim.service.run import ServeOptions, serve
    from alertsim.service.service import ServiceConfig

    settings = settings_and_logging(broker_url=broker, db=db, policy=policy, status=status,
                                    mqtt_protocol=protocol, log_level=log_level)
    config = ServiceConfig(status=settings.status, policy=settings.policy,
                           sender=settings.sender, max_payload_bytes=settings.max_payload_bytes,
                           close_after=timedelta(seconds=settings.close_after_s))
    asyncio.run(serve(ServeOptions(config=config, db=settings.db,
                                   broker_url=settings.broker_url,
                                   mqtt_protocol=settings.mqtt_protocol,
                                   client_id=settings.client_id)))
    return EXIT_OK


def detect_command(detection: DetectionArgument, broker: BrokerOption = None) -> int:
    """Publish a detection by hand to a running service."""
    from alertsim.adapters.mqtt.inputs import send_detection

    parsed = read_detection(detection)
    settings = settings_and_logging(broker_url=broker)
    asyncio.run(send_detection(detection, parsed, url=settings.broker_url))
    return EXIT_OK
