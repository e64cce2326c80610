"""Which MQTT version to speak: ask the broker ("auto"), or take the one configured."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path

from alertsim.errors import BrokerError
from alertsim.mqtt.client import MqttSettings, connect
from alertsim.mqtt.protocol import Protocol
from alertsim.mqtt.reconnect import reconnecting
from alertsim.mqtt.url import redacted as _redacted

__all__ = [
    "negotiate_protocol",
    "wait_for_protocol",
]


async def negotiate_protocol(url: str, *, timeout_s: float = 5.0, username: str | None = None,
                             password: str | None = None,
                             ca_file: Path | None = None) -> Protocol:
    """"5" if the broker accepts an MQTT 5 CONNECT, else "3.1.1" if it accepts that.

    Raises BrokerError when neither works (broker down, refused, timed out).
    """
    errors: list[str] = []
    for protocol in ("5", "3.1.1"):
        probe = MqttSettings(url=url, client_id=f"alertsim-probe-{uuid.uuid4().hex[:12]}",
                             protocol=protocol, timeout_s=timeout_s, username=username,
                             password=password, ca_file=ca_file)
        try:
            async with connect(probe):
                return protocol
        except BrokerError as exc:
            errors.append(f"MQTT {protocol}: {exc}")
    raise BrokerError(f"MQTT broker {_redacted(url)} refused both protocols: "
                      + "; ".join(errors))


async def wait_for_protocol(url: str, wanted: str, *, username: str | None = None,
                            password: str | None = None,
                            ca_file: Path | None = None) -> Protocol:
    """The protocol to use; with "auto", ask the broker, waiting for it if it is away."""
    if wanted in ("5", "3.1.1"):
        return "5" if wanted == "5" else "3.1.1"

    async def attempt(up: Callable[[], None]) -> Protocol:
        return await negotiate_protocol(url, username=username, password=password,
                                        ca_file=ca_file)

    return await reconnecting(attempt, what="protocol negotiation", maximum=5.0,
                              url=_redacted(url))
