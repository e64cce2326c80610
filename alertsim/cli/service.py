"""`alertsim serve` (the service against a broker) and `alertsim detect` (a detection by hand)."""

import asyncio
from datetime import timedelta
from pathlib import Path
from typing import Annotated

import typer
from pydantic import SecretStr

from alertsim.cli.decide import DetectionArgument, read_detection
from alertsim.cli.options import (
    EXIT_OK,
    BrokerOption,
    CaFileOption,
    LogLevelOption,
    StatusOption,
    TopicRootOption,
)
from alertsim.cli.settings import MqttProtocol, broker_url_of, settings_and_logging
from alertsim.domain.vocabulary import Policy

__all__ = ["detect_command", "serve_command"]


def _password(secret: SecretStr | None) -> str | None:
    return None if secret is None else secret.get_secret_value()


def serve_command(
    broker: BrokerOption = None,
    db: Annotated[Path | None, typer.Option(
        metavar="PATH", help="SQLite record (env ALERTSIM_DB)")] = None,
    policy: Annotated[Policy | None, typer.Option(
        help="warning rule (env ALERTSIM_POLICY)")] = None,
    status: StatusOption = None,
    protocol: Annotated[MqttProtocol | None, typer.Option(
        help="MQTT protocol (env ALERTSIM_MQTT_PROTOCOL, default auto)")] = None,
    topic_root: TopicRootOption = None,
    stale_after: Annotated[float | None, typer.Option(
        "--stale-after", min=1, metavar="SECONDS",
        help="refuse detections observed longer ago (env ALERTSIM_STALE_AFTER_S, "
             "default 600)")] = None,
    signing_key: Annotated[Path | None, typer.Option(
        "--signing-key", metavar="FILE",
        help="sign alerts and states with this Ed25519 private key (PEM, from `alertsim "
             "keygen`; env ALERTSIM_SIGNING_KEY)")] = None,
    log_level: LogLevelOption = None,
    ca_file: CaFileOption = None,
) -> int:
    """Run the service against a broker until interrupted."""
    from alertsim.adapters.mqtt.signing import load_signing_key
    from alertsim.domain.admission import Limits
    from alertsim.domain.topics import TopicTree
    from alertsim.service.run import ServeOptions, serve
    from alertsim.service.service import ServiceConfig

    settings = settings_and_logging(broker_url=broker, db=db, policy=policy, status=status,
                                    mqtt_protocol=protocol, topic_root=topic_root,
                                    stale_after_s=stale_after, log_level=log_level,
                                    signing_key=signing_key,
                                    mqtt_ca_file=ca_file)
    signer = None if settings.signing_key is None else load_signing_key(settings.signing_key)
    config = ServiceConfig(status=settings.status, policy=settings.policy,
                           sender=settings.sender, max_payload_bytes=settings.max_payload_bytes,
                           close_after=timedelta(seconds=settings.close_after_s),
                           limits=Limits(stale_after=timedelta(seconds=settings.stale_after_s)),
                           topics=TopicTree(settings.topic_root))
    asyncio.run(serve(ServeOptions(config=config, db=settings.db,
                                   broker_url=settings.broker_url,
                                   mqtt_protocol=settings.mqtt_protocol,
                                   client_id=settings.client_id, signer=signer,
                                   username=settings.mqtt_username,
                                   password=_password(settings.mqtt_password),
                                   ca_file=settings.mqtt_ca_file)))
    return EXIT_OK


def detect_command(detection: DetectionArgument, broker: BrokerOption = None,
                   topic_root: TopicRootOption = None, ca_file: CaFileOption = None) -> int:
    """Publish a detection by hand to a running service."""
    from alertsim.adapters.mqtt.inputs import send_detection
    from alertsim.domain.topics import TopicTree

    parsed = read_detection(detection)
    settings = settings_and_logging(broker_url=broker, topic_root=topic_root,
                                    mqtt_ca_file=ca_file)
    asyncio.run(send_detection(detection, parsed, url=broker_url_of(settings),
                               tree=TopicTree(settings.topic_root),
                               ca_file=settings.mqtt_ca_file))
    return EXIT_OK
