"""The two MQTT versions alertsim speaks, and the MQTT 5 properties only one of them carries.

Message expiry, content type and user properties are sent only when the protocol is "5";
a broker that speaks only 3.1.1 (amqtt, NATS) is detected with
`alertsim.mqtt.negotiation.negotiate_protocol`.
"""

from __future__ import annotations

from typing import Literal

import aiomqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from alertsim.domain.publication import Publication

__all__ = [
    "VERSIONS",
    "Protocol",
    "new_properties",
    "properties_of",
]

Protocol = Literal["5", "3.1.1"]

VERSIONS: dict[Protocol, aiomqtt.ProtocolVersion] = {
    "5": aiomqtt.ProtocolVersion.V5,
    "3.1.1": aiomqtt.ProtocolVersion.V311,
}


def new_properties(packet_type: int) -> Properties:
    """Empty MQTT 5 properties for a packet of `packet_type` (paho's `PacketTypes`)."""
    # paho's Properties.__init__ has no annotations; this is the one untyped call.
    return Properties(packet_type)  # type: ignore[no-untyped-call]


def properties_of(message: Publication, protocol: Protocol,
                  packet_type: int = PacketTypes.PUBLISH) -> Properties | None:
    """The MQTT 5 properties for `message`, or None (always None under 3.1.1)."""
    if protocol != "5":
        return None
    if message.expiry_s is None and message.content_type is None \
            and not message.user_properties:
        return None
    props = new_properties(packet_type)
    if message.expiry_s is not None:
        props.MessageExpiryInterval = message.expiry_s
    if message.content_type is not None:
        props.ContentType = message.content_type
    if message.user_properties:
        props.UserProperty = list(message.user_properties)
    return props
