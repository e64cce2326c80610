"""One fleet receiver: an asyncio Protocol that speaks MQTT 5 through the `mqtt5` codec.

On `connection_made` it sends CONNECT (clean start, a session that ends with the
connection: nothing is left queueing at the broker) and its SUBSCRIBE at once; the SUBACK
makes it ready. Each PUBLISH is acknowledged (QoS 1) and handed to `on_publish` with the
time it arrived. Packets are read and written only by the `mqtt5` package: no byte of
MQTT is encoded here.

There is no timer per connection: the shard pings every connection from one task.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from typing import Final, cast

import mqtt5

__all__ = ["KEEPALIVE_S", "SESSION_EXPIRY_S", "Connection", "OnPublish"]

KEEPALIVE_S: Final = 60
# The session ends with the connection (clean start, expiry 0): a fleet that stops, or is
# killed, leaves no session behind to queue messages at the broker.
SESSION_EXPIRY_S: Final = 0
_PING: Final = mqtt5.PingReqPacket().write()
_DISCONNECT: Final = mqtt5.DisconnectPacket().write()

OnPublish = Callable[[int, "mqtt5.PublishPacket", float], None]  # (index, packet, ms)


class Connection(asyncio.Protocol):
    """Receiver `index` of a shard; `subscribed` resolves after the SUBACK (or fails)."""

    def __init__(self, index: int, client_id: str, filters: Sequence[str], *,
                 on_publish: OnPublish, username: str | None = None,
                 password: str | None = None) -> None:
        self.index = index
        self.client_id = client_id
        self.on_publish = on_publish
        self.subscribed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.lost = False
        self._hello = mqtt5.ConnectPacket(
            client_id, clean_start=True, keep_alive=KEEPALIVE_S,
            session_expiry_interval=SESSION_EXPIRY_S, username=username,
            password=None if password is None else password.encode()).write() + \
            mqtt5.SubscribePacket(1, [mqtt5.TopicFilter(f, max_qos=mqtt5.QoS.AT_LEAST_ONCE)
                                      for f in filters]).write()
        self._transport: asyncio.Transport | None = None
        self._buffer = b""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, but have its methods.
        self._transport = cast(asyncio.Transport, transport)
        self._transport.write(self._hello)  # CONNECT, then SUBSCRIBE without waiting (MQTT 5 3.1.4)

    def data_received(self, data: bytes) -> None:
        received_ms = time.time() * 1000.0
        buffer = self._buffer + data if self._buffer else data
        view = memoryview(buffer)
        offset = 0
        try:
            while offset < len(buffer):
                try:
                    packet, size = mqtt5.read(view[offset:])
                except IndexError:  # an incomplete packet: wait for more bytes
                    break
                offset += size
                self._handle(packet, received_ms)
        except ValueError as exc:  # a malformed packet: this connection is done
            self._fail(f"malformed packet from the broker: {exc}")
        finally:
            view.release()
        self._buffer = buffer[offset:]

    def _handle(self, packet: object, received_ms: float) -> None:
        if isinstance(packet, mqtt5.PublishPacket):
            if packet.qos == mqtt5.QoS.AT_LEAST_ONCE and packet.packet_id is not None:
                self.write(mqtt5.PubAckPacket(packet.packet_id).write())
            self.on_publish(self.index, packet, received_ms)
        elif isinstance(packet, mqtt5.ConnAckPacket):
            if packet.reason_code != mqtt5.ConnAckReasonCode.SUCCESS:
                self._fail(f"CONNACK refused: {packet.reason_code.name}")
        elif isinstance(packet, mqtt5.SubAckPacket):
            refused = [code.name for code in packet.reason_codes if code.value >= 0x80]
            if refused:
                self._fail(f"SUBACK refused: {', '.join(refused)}")
            elif not self.subscribed.done():
                self.subscribed.set_result(None)
        elif isinstance(packet, mqtt5.DisconnectPacket):
            self._fail(f"disconnected by the broker: {packet.reason_code.name}")

    def write(self, data: bytes) -> None:
        if self._transport is not None and not self._transport.is_closing():
            self._transport.write(data)

    def ping(self) -> None:
        self.write(_PING)

    def close(self) -> None:
        """Send DISCONNECT (the session then ends at once) and close."""
        if self._transport is not None and not self._transport.is_closing():
            self._transport.write(_DISCONNECT)
            self._transport.close()

    def _fail(self, reason: str) -> None:
        if not self.subscribed.done():
            self.subscribed.set_exception(ConnectionError(f"{self.client_id}: {reason}"))
        if self._transport is not None:
            self._transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        self._fail(f"connection lost ({exc or 'closed'})")
