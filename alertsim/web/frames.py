"""Frames: the model's updates batched, encoded once, written to every open stream.

Nothing a page does may hold the service, so the dashboard never waits for a client:

    coalesce   the updates since the last frame folded into one diff (last state and
               place per prefecture, last track and reasons per event, receipt tallies
               per place, log rows, errors and closed events in order); pure
    encode     one server-sent event, encoded ONCE per frame; the same bytes go to every
               client
    Broadcaster  at most FRAMES_PER_S frames a second (the first change after a quiet
               spell goes at once), a heartbeat frame with the clock every HEARTBEAT_S;
               each frame is handed to every client without waiting (`Client.send`). A
               client's queue is what it has not read yet (`Client.unread`: its
               transport's write buffer and any frame still queued for it), bounded by
               MAX_BUFFERED bytes: a client that does not read (its TCP window full)
               reaches it and is disconnected at once; its page reconnects and gets a
               fresh snapshot.

A frame on the wire (`data: ` + JSON; keys present only when they changed):

    {"type": "frame", "states": {"47": "shelter"}, "log": [row, ...], "errors": [...],
     "places": {"47": {"events": ["EVENT"], "last": null}},
     "reasons": {"EVENT": {"47": "overflight"}}, "closed": ["EVENT", ...],
     "receipts": {"47": {"count", "latency_ms_median", "latency_ms_max"}},
     "tracks": {"EVENT": {"main": "<g class=\"event-overlay\" ...>", "okinawa": ...}},
     "clock": {"sim_now", "sim_now_jst", "speed"}}

A closed event's track arrives as its empty groups (the page swaps them in: the track
goes); `places[code].last` is the state a prefecture showed before its events closed.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterable
from typing import Any, Protocol

import structlog

from alertsim.web.live import Update

__all__ = ["FRAMES_PER_S", "MAX_BUFFERED", "Broadcaster", "Client", "coalesce", "encode"]

log = structlog.get_logger("alertsim.web")
FRAMES_PER_S = 5
HEARTBEAT_S = 5.0
MAX_BUFFERED = 2 * 1024 * 1024  # bytes a client may leave unread before it is dropped


class Client(Protocol):
    """One open stream, as the broadcaster sees it (`alertsim.web.stream.EventStream`)."""

    def send(self, frame: bytes) -> None:
        """Queue `frame` for the client; never waits."""

    def unread(self) -> int:
        """Bytes sent to the client that it has not read yet."""

    def is_closing(self) -> bool: ...

    def abort(self) -> None:
        """Disconnect at once, dropping whatever is unread."""

    def close(self) -> None:
        """End the stream once what is queued has been written."""


# update type -> (the frame's key, how the update folds in: keyed (later wins),
# appended (in order) or merged (dict update))
_FOLDS: dict[str, tuple[str, str, str]] = {
    "state": ("states", "code", "state"),
    "place": ("places", "code", "place"),
    "track": ("tracks", "event_id", "svg"),
    "reasons": ("reasons", "event_id", "reasons"),
    "log": ("log", "", "row"),
    "error": ("errors", "", "row"),
    "closed": ("closed", "", "event_id"),
    "receipts": ("receipts", "*", "receipts"),
}


def coalesce(updates: Iterable[Update]) -> Update:
    """The updates folded into one frame's diff (later wins per prefecture and event)."""
    diff: dict[str, Any] = {"type": "frame"}
    for update in updates:
        fold = _FOLDS.get(update["type"])
        if fold is None:
            continue
        key, by, value = fold
        if by == "":
            diff.setdefault(key, []).append(update[value])
        elif by == "*":
            diff.setdefault(key, {}).update(update[value])
        else:
            diff.setdefault(key, {})[update[by]] = update[value]
    return diff


def encode(message: Update) -> bytes:
    """One server-sent event."""
    text = json.dumps(message, ensure_ascii=False, separators=(",", ":"))
    return b"data: " + text.encode() + b"\n\n"


class Broadcaster:
    """Batches updates into frames and writes each frame to every client, never waiting."""

    def __init__(self, clock: Callable[[], Update], *, max_buffered: int = MAX_BUFFERED,
                 frames_per_s: float = FRAMES_PER_S) -> None:
        self.clock = clock  # the scenario clock's JSON, sent with every frame
        self.max_buffered = max_buffered
        self.gap_s = 1.0 / frames_per_s
        self.clients: set[Client] = set()
        self.dropped = 0
        self.frames = 0
        self._pending: list[Update] = []
        self._wake = asyncio.Event()

    def publish(self, updates: Iterable[Update]) -> None:
        """Queue updates for the next frame."""
        self._pending.extend(updates)
        if self._pending:
            self._wake.set()

    def join(self, client: Client, first: bytes) -> None:
        """A new stream: its snapshot now, then every frame."""
        client.send(first)
        self.clients.add(client)

    def leave(self, client: Client) -> None:
        self.clients.discard(client)

    def send(self, frame: bytes) -> None:
        """Hand one encoded frame to every client; drop those that stopped reading."""
        self.frames += 1
        for client in list(self.clients):
            if client.is_closing():
                self.clients.discard(client)
            elif (unread := client.unread()) > self.max_buffered:
                self.clients.discard(client)
                client.abort()  # its unread frames go with it; the page reconnects
                self.dropped += 1
                log.info("dashboard.client_dropped", unread=unread)
            else:
                client.send(frame)

    async def run(self) -> None:
        """Send frames while the dashboard runs: at most FRAMES_PER_S a second."""
        while True:
            try:
                async with asyncio.timeout(HEARTBEAT_S):
                    await self._wake.wait()
            except TimeoutError:
                pass
            self._wake.clear()
            diff = coalesce(self._pending)
            self._pending.clear()
            self.send(encode(diff | {"clock": self.clock()}))
            await asyncio.sleep(self.gap_s)

    def close(self) -> None:
        """End every stream (the dashboard is stopping)."""
        for client in list(self.clients):
            client.close()
        self.clients.clear()
