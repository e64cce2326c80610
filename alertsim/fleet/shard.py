"""A shard: one process holding many fleet receivers on one event loop.

Run as `python -m alertsim.fleet.shard` by `alertsim.fleet.fleet.Fleet`. It reads its
configuration as the first JSON line on stdin (`ShardConfig`), opens the connections
`window` at a time, and writes JSON lines to stdout:

    {"type": "ready", "subscribed": K, "of": N, "seconds": S, "rss_mb": M, "error": ...}
    {"type": "progress", "delivered": {IDENTIFIER: N}, "duplicates": N, "wrong_area": N}
    {"type": "report", ...}                     (`Tally.report()`, once stopping)

each a typed model (`ShardReady`, `ShardProgress`, `ShardReport`; `SHARD_LINE` reads any).
Progress is pushed, not asked for: after the ready line, a progress line each time the
counts changed, at most one per `PUSH_EVERY_S` (a fan-out's deliveries coalesce into one
line). The one command on stdin is `stop`; end of stdin is `stop` too: a shard never
outlives its parent. SIGINT is ignored (the parent, which shares the terminal, decides
when to stop).
"""

from __future__ import annotations

import asyncio
import json
import resource
import signal
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import mqtt5
from pydantic import Field, TypeAdapter

from alertsim.domain.model import Frozen
from alertsim.fleet.connection import KEEPALIVE_S, Connection
from alertsim.fleet.tally import Heard, ShardProgress, ShardReport, Tally, heard
from alertsim.mqtt.url import parse_broker_url, tls_context

__all__ = ["PUSH_EVERY_S", "SHARD_LINE", "ShardConfig", "ShardLine", "ShardReady", "main"]

_CACHE_LIMIT = 4096  # distinct payloads whose parse is kept (one alert reaches thousands)
PUSH_EVERY_S = 0.02  # at most one progress line per this, per shard


@dataclass(frozen=True)
class ShardConfig:
    """What one shard runs: broker, topics and its receivers (client id, prefecture)."""

    url: str  # with credentials: handed over a pipe, never logged
    receivers: list[tuple[str, str]]
    alert_prefix: str  # `{root}/{status}/alerts/`
    state_prefix: str  # `{root}/{status}/state/`
    national: bool = True
    window: int = 64  # connections in their handshake at once
    ready_timeout_s: float = 30.0
    ca_file: str | None = None

    def filters(self, code: str) -> list[str]:
        found = [self.alert_prefix + code, self.state_prefix + code]
        return [*found, self.alert_prefix + "national"] if self.national else found

    @classmethod
    def from_json(cls, text: str) -> ShardConfig:
        data = json.loads(text)
        data["receivers"] = [(str(c), str(p)) for c, p in data["receivers"]]
        return cls(**data)


class ShardReady(Frozen):
    """A shard's receivers connected (or not: `error`)."""

    type: Literal["ready"] = "ready"
    subscribed: int
    of: int
    seconds: float
    rss_mb: float
    error: str | None = None


ShardLine = Annotated[ShardReady | ShardProgress | ShardReport, Field(discriminator="type")]
SHARD_LINE: TypeAdapter[ShardLine] = TypeAdapter(ShardLine)


class Shard:
    """The receivers of one shard and what they got."""

    def __init__(self, config: ShardConfig) -> None:
        self.config = config
        self.tally = Tally(config.receivers)
        self.connections: list[Connection] = []
        self.changed = asyncio.Event()  # set by every alert the tally records
        self._parsed: dict[bytes, Heard | None] = {}

    def on_publish(self, index: int, packet: mqtt5.PublishPacket, received_ms: float) -> None:
        if packet.topic.startswith(self.config.state_prefix):
            self.tally.states += 1
            return
        payload = packet.payload
        alert = self._parsed.get(payload, _MISSING)
        if alert is _MISSING:
            if len(self._parsed) >= _CACHE_LIMIT:
                self._parsed.clear()
            alert = self._parsed[payload] = heard(payload)
        sent_ms = None
        for key, value in packet.user_properties:
            if key == "sent-at":
                sent_ms = _number(value)
        self.tally.alert(index, alert, received_ms, sent_ms)
        self.changed.set()

    async def _open(self, jobs: Iterator[tuple[int, tuple[str, str]]]) -> None:
        url = parse_broker_url(self.config.url)
        ssl = tls_context(Path(self.config.ca_file) if self.config.ca_file else None) \
            if url.tls or self.config.ca_file else None
        loop = asyncio.get_running_loop()
        for index, (client_id, code) in jobs:
            def make(i: int = index, cid: str = client_id, c: str = code) -> Connection:
                return Connection(i, cid, self.config.filters(c), on_publish=self.on_publish,
                                  username=url.username, password=url.password)
            _, connection = await loop.create_connection(make, url.host, url.port, ssl=ssl)
            self.connections.append(connection)
            await connection.subscribed

    async def connect(self) -> ShardReady:
        """Open every connection, `window` at a time; the ready line's content."""
        started = time.monotonic()
        jobs = iter(enumerate(self.config.receivers))
        workers = [asyncio.create_task(self._open(jobs))
                   for _ in range(max(1, min(self.config.window, len(self.config.receivers))))]
        error = None
        try:
            async with asyncio.timeout(self.config.ready_timeout_s):
                await asyncio.gather(*workers)
        except TimeoutError:
            error = f"not all subscribed within {self.config.ready_timeout_s:.0f} s"
        except (OSError, ConnectionError) as exc:
            error = str(exc) or type(exc).__name__
        for worker in workers:
            worker.cancel()
        subscribed = sum(1 for c in self.connections if c.subscribed.done()
                         and not c.subscribed.exception())
        return ShardReady(subscribed=subscribed, of=len(self.config.receivers),
                          seconds=round(time.monotonic() - started, 3), rss_mb=_rss_mb(),
                          error=error)

    async def keep_alive(self) -> None:
        """Ping every connection twice per keep-alive period, from this one task."""
        while True:
            await asyncio.sleep(KEEPALIVE_S / 2)
            for connection in self.connections:
                connection.ping()

    async def push_progress(self) -> None:
        """Say the tally's progress each time it changed, at most once per PUSH_EVERY_S."""
        said: ShardProgress | None = None
        while True:
            await self.changed.wait()
            self.changed.clear()
            progress = self.tally.progress()
            if progress != said:  # an alert can change nothing counted (a malformed one)
                _say(progress)
                said = progress
            # The pace of the pipe, not a wait for anything: what arrives meanwhile sets
            # `changed` again and goes out in the next line.
            await asyncio.sleep(PUSH_EVERY_S)

    def close(self) -> None:
        for connection in self.connections:
            connection.close()


_MISSING: Any = object()


def _number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def _rss_mb() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def _say(message: ShardLine) -> None:
    sys.stdout.write(message.model_dump_json() + "\n")
    sys.stdout.flush()


async def _commands() -> asyncio.StreamReader:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=2**24)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    return reader


async def serve(config: ShardConfig, commands: asyncio.StreamReader) -> None:
    """Connect, say ready, push progress until `stop` or end of input; then report."""
    shard = Shard(config)
    tasks = [asyncio.create_task(shard.keep_alive(), name="shard-keep-alive")]
    try:
        _say(await shard.connect())
        tasks.append(asyncio.create_task(shard.push_progress(), name="shard-push-progress"))
        while line := await commands.readline():
            if line.strip() == b"stop":
                break
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        shard.close()
    _say(shard.tally.report(rss_mb=_rss_mb()))


def main() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        import uvloop  # optional: much faster with thousands of sockets
    except ImportError:
        runner = asyncio.run
    else:
        runner = uvloop.run

    async def run() -> None:
        commands = await _commands()  # the first line is the configuration
        await serve(ShardConfig.from_json((await commands.readline()).decode()), commands)

    runner(run())


if __name__ == "__main__":
    main()
