"""Every use of aiomqtt's and paho's private members, in one place, with its reason.

Written for, and pinned in pyproject.toml to, aiomqtt==2.5.1 and paho-mqtt==2.2.0;
tests/unit/test_private_access.py fails when the installed versions leave the pins (read
this module again then), and tests/integration/test_paho_compat.py runs each patch against
a real Mosquitto. The rest of alertsim uses the public API only (ruff's SLF001 checks it).

What has no public API in aiomqtt 2.5.1, and why alertsim needs it:

- `PatchedClient._on_disconnect`: a connection dropped before the CONNACK fails the
  handshake at once. aiomqtt ignores the drop and waits out its timeout, so a connect that
  reached a broker in the middle of shutting down (the kernel accepted it, nobody answered)
  stalled a reconnect for the whole timeout.
- `PatchedClient._on_socket_register_write`: the socket writer is registered only if the
  socket is still open. aiomqtt registers it one loop iteration after paho asks; a socket
  closed meanwhile made `add_writer` fail (EBADF) or, with its descriptor already reused,
  watch someone else's socket.
- `enable_manual_ack` / `ack`: the application sends each PUBACK once it has kept the
  message. paho has public calls for both, but aiomqtt does not expose its paho client nor
  take a switch for it (aiomqtt issue #345, PR #346).
- `PatchedClient._on_publish` / `_pending_call`: a QoS 1 publish the broker refuses (an
  MQTT 5 PUBACK with a reason code >= 0x80, e.g. 0x87 Not authorized from Mosquitto's
  acl_file) raises `PubackRefused` from `publish`. aiomqtt 2.5.1 drops the PUBACK's reason
  code and returns as for a delivered message; it has no public call for it (aiomqtt
  issue #317). `_on_publish` notes the refusal by message id, and `_pending_call`, the
  context manager aiomqtt's `publish` waits for the PUBACK in, raises it as it leaves.
- `force_close`: close the socket without DISCONNECT (the will is then published), at
  once, also while the handshake is still running. Neither library has a public call;
  paho's `_sock_close` also tells aiomqtt, which stops watching the socket and cancels its
  keepalive task.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any, TypeVar

import aiomqtt
from paho.mqtt import client as paho
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

__all__ = ["PINNED", "PatchedClient", "PubackRefused", "ack", "enable_manual_ack",
           "force_close"]

# The versions this module was written against: `pip install` of anything else fails
# tests/unit/test_private_access.py until this module has been checked again.
PINNED = {"aiomqtt": "2.5.1", "paho-mqtt": "2.2.0"}
T = TypeVar("T")


class PubackRefused(aiomqtt.MqttCodeError):
    """The broker's PUBACK for this publish carried failure reason code `rc`."""


class PatchedClient(aiomqtt.Client):
    """aiomqtt's client with two races of aiomqtt 2.5 closed and refused PUBACKs raised
    (see the module docstring)."""

    _refused: dict[int, ReasonCode] | None = None  # message id -> failure reason code

    def _on_disconnect(self, client: paho.Client, userdata: Any, flags: paho.DisconnectFlags,
                       reason_code: ReasonCode, properties: Properties | None = None) -> None:
        if not self._connected.done():
            self._connected.set_exception(
                aiomqtt.MqttError(f"connection lost before CONNACK ({reason_code})"))
            return
        super()._on_disconnect(client, userdata, flags, reason_code, properties)

    def _on_socket_register_write(self, client: paho.Client, userdata: Any,
                                  sock: paho.SocketLike) -> None:
        def write() -> None:  # as aiomqtt's
            try:
                client.loop_write()
            except Exception as exc:
                if not self._disconnected.done():
                    self._disconnected.set_exception(exc)

        def register() -> None:
            if client.socket() is sock:
                self._loop.add_writer(sock.fileno(), write)

        self._loop.call_soon_threadsafe(register)

    def _on_publish(self, client: paho.Client, userdata: Any, mid: int,
                    reason_code: ReasonCode, properties: Properties) -> None:
        if reason_code.is_failure and mid in self._pending_publishes:
            if self._refused is None:
                self._refused = {}
            self._refused[mid] = reason_code
        super()._on_publish(client, userdata, mid, reason_code, properties)

    @contextlib.contextmanager
    def _pending_call(self, mid: int, value: T, pending_dict: dict[int, T]) -> Iterator[None]:
        try:
            with super()._pending_call(mid, value, pending_dict):
                yield
        finally:
            refused = None if self._refused is None else self._refused.pop(mid, None)
        if refused is not None and pending_dict is self._pending_publishes:
            raise PubackRefused(refused, "Publish refused")


def enable_manual_ack(client: aiomqtt.Client) -> None:
    """Make `client` leave every QoS 1/2 acknowledgement to `ack` (call before connecting)."""
    client._client.manual_ack_set(True)


def ack(client: aiomqtt.Client, mid: int, qos: int) -> None:
    """Send the PUBACK (QoS 1) or PUBCOMP flow (QoS 2) of message `mid`; nothing for QoS 0."""
    if qos > 0:
        client._client.ack(mid, qos)


def force_close(client: aiomqtt.Client) -> None:
    """Close the socket now, without DISCONNECT (a will, if any, is then published).

    A no-op when the socket is already closed. The error aiomqtt records for the lost
    connection is retrieved here: a publish-only client never reads it, and asyncio would
    log it as never retrieved.
    """
    client._client._sock_close()
    lost = client._disconnected
    if lost.done() and not lost.cancelled():
        lost.exception()
