"""`Publication`: one PUBLISH as alertsim means it, before any transport sees it.

The service's `Publisher` port sends it, the transport (`alertsim.mqtt`) encodes it,
and signing (`alertsim.signing`) signs it; it lives here, in the pure core, so that none of
them has to import another to name it.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Publication"]


@dataclass(frozen=True)
class Publication:
    """One PUBLISH as the service means it: topic, bytes, QoS, retain and MQTT 5 extras.

    `expiry_s`, `content_type` and `user_properties` travel as MQTT 5 properties; a 3.1.1
    link drops them (the payload carries the same facts). `sent_ms`: wall-clock ms since
    the epoch as it goes out, which a signature (v2) binds with `expiry_s` (None: the
    signer takes the time it signs).
    """

    topic: str
    payload: bytes
    qos: int = 1
    retain: bool = False
    expiry_s: int | None = None
    content_type: str | None = None
    user_properties: tuple[tuple[str, str], ...] = ()
    sent_ms: int | None = None
