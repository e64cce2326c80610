"""The transport's two BrokerErrors a caller may act on, and the one mapping from aiomqtt's.

    BrokerError (alertsim.errors)
    ├── PublishRefused     an MQTT 5 PUBACK with a failure reason code (>= 0x80): the
    │                      broker received the message and will not deliver it (ACL
    │                      denial: 0x87 Not authorized; quota exceeded: 0x97)
    └── SessionTakenOver   the broker disconnected us with 0x8E: another connection
                           opened with our client id

Under MQTT 3.1.1 a broker cannot refuse a publish in its PUBACK (Mosquitto drops a denied
message and acknowledges it): `PublishRefused` is raised under MQTT 5 only.
"""

from __future__ import annotations

from typing import Final

import aiomqtt

from alertsim.errors import BrokerError

__all__ = ["TAKEN_OVER", "PublishRefused", "SessionTakenOver", "broker_error", "code_of"]

TAKEN_OVER: Final = 0x8E  # MQTT 5 DISCONNECT reason: Session taken over


class PublishRefused(BrokerError):
    """The broker answered a QoS 1 publish to `topic` with failure `reason_code`."""

    def __init__(self, topic: str, reason_code: int, reason: str) -> None:
        self.topic = topic
        self.reason_code = reason_code
        self.reason = reason
        super().__init__(f"publish to {topic!r} refused by the broker: "
                         f"{reason} (0x{reason_code:02X})")


class SessionTakenOver(BrokerError):
    """The broker closed this connection for another one with the same client id."""


def code_of(rc: object) -> int | None:
    """The number of a paho `ReasonCode` or plain int code; None for anything else."""
    value = getattr(rc, "value", rc)
    return value if isinstance(value, int) else None


def _reason_code(exc: BaseException | None) -> int | None:
    """The reason code of `exc` or of what caused it (aiomqtt's message iterator raises a
    plain MqttError from the disconnect's MqttCodeError)."""
    while exc is not None:
        if isinstance(exc, aiomqtt.MqttCodeError):
            return code_of(exc.rc)
        exc = exc.__cause__
    return None


def broker_error(text: str, exc: aiomqtt.MqttError) -> BrokerError:
    """`text: exc` as a BrokerError; a `SessionTakenOver` when the broker said 0x8E."""
    error = f"{text}: {exc}"
    if _reason_code(exc) == TAKEN_OVER:
        return SessionTakenOver(error)
    return BrokerError(error)
