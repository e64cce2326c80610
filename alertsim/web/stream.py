"""One page's server-sent event stream: an aiohttp `StreamResponse` the broadcaster feeds
without ever waiting for the page (`frames.Client`).

    broadcaster --send (append, never waits)--> queue --pump: await response.write--> page

The request's own handler runs `pump`, which writes the queued frames. The transport's
high-water mark is the page's byte budget, so `response.write` returns at once while the
page keeps up; a page that stops reading leaves its bytes in the transport's buffer (and,
once that is paused, in the queue here), and at the next frame the broadcaster finds it
over budget and aborts its connection. All through aiohttp's public API: the response,
and `request.transport` for the buffer size, the limits and `abort`.
"""

from __future__ import annotations

import asyncio
import socket
from collections import deque

from aiohttp import web

__all__ = ["EventStream"]

SEND_BUFFER = 256 * 1024  # a stream's kernel send buffer (bytes): a stalled page is seen sooner
HEADERS = {"Content-Type": "text/event-stream", "Cache-Control": "no-store"}
RETRY = b"retry: 500\n\n"  # the page's EventSource reconnects after 0.5 s


class EventStream:
    """An open stream: frames queued by `send`, written to the page by `pump`."""

    def __init__(self, response: web.StreamResponse, transport: asyncio.Transport) -> None:
        self.response = response
        self._transport = transport
        self._queue: deque[bytes] = deque()
        self._queued = 0  # bytes in the queue
        self._wake = asyncio.Event()
        self._ending = False

    @classmethod
    async def open(cls, request: web.Request, budget: int) -> EventStream:
        """Answer `request` with the stream's head; `budget`: bytes the page may leave
        unread before it is dropped."""
        transport = request.transport
        if transport is None:
            raise ConnectionResetError("the page left before its stream opened")
        sock = transport.get_extra_info("socket")
        if sock is not None:  # bound the kernel's share too
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SEND_BUFFER)
        transport.set_write_buffer_limits(high=budget)
        response = web.StreamResponse(headers=HEADERS)
        response.force_close()  # one stream per connection, as the page's EventSource does
        await response.prepare(request)
        await response.write(RETRY)
        return cls(response, transport)

    def send(self, frame: bytes) -> None:
        """Queue `frame` for `pump`; never waits."""
        self._queue.append(frame)
        self._queued += len(frame)
        self._wake.set()

    def unread(self) -> int:
        """Bytes sent to the page and not read yet: the transport's buffer and the queue."""
        return self._transport.get_write_buffer_size() + self._queued

    def is_closing(self) -> bool:
        return self._transport.is_closing()

    def abort(self) -> None:
        """Disconnect at once; what the page has not read is dropped."""
        self._ending = True
        self._wake.set()
        self._transport.abort()

    def close(self) -> None:
        """End the stream once the queue is written (the dashboard is stopping)."""
        self._ending = True
        self._wake.set()

    async def pump(self) -> None:
        """Write queued frames until the stream is closed or the page leaves."""
        try:
            while True:
                while self._queue and not self._transport.is_closing():
                    frame = self._queue.popleft()
                    self._queued -= len(frame)
                    await self.response.write(frame)  # waits only when over the budget
                if self._ending or self._transport.is_closing():
                    return
                await self._wake.wait()
                self._wake.clear()
        except ConnectionError:  # the page left while a frame was being written
            return
