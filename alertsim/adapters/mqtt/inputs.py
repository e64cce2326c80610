"""Inputs to a running service, sent as a sensor or an operator would: QoS 1 publishes."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TextIO

from alertsim.domain.detection import Detection
from alertsim.domain.publication import Publication
from alertsim.domain.topics import V1, TopicTree
from alertsim.mqtt.client import MqttSettings, connect
from alertsim.mqtt.messages import publish
from alertsim.mqtt.negotiation import negotiate_protocol
from alertsim.mqtt.url import redacted

__all__ = ["send_detection"]


async def send_detection(path: Path, detection: Detection, *, url: str,
                         tree: TopicTree = V1, ca_file: Path | None = None,
                         out: TextIO | None = None) -> None:
    """Publish one detection (already validated) to the detections topic, QoS 1."""
    out = out or sys.stdout
    protocol = await negotiate_protocol(url, ca_file=ca_file)
    settings = MqttSettings(url=url, client_id=f"alertsim-detect-{detection.event_id}"[:64],
                            protocol=protocol, ca_file=ca_file)
    async with connect(settings) as client:
        await publish(client, Publication(tree.detections,
                                           detection.model_dump_json().encode(), qos=1),
                      protocol=protocol)
    print(f"published {path} ({detection.event_id} #{detection.sequence}) to "
          f"{tree.detections} on {redacted(url)}", file=out)
