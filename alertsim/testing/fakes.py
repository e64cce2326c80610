"""Fakes for the service's ports: a clock that moves when told, an in-memory publisher."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from alertsim.domain.publication import Publication
from alertsim.errors import BrokerError
from alertsim.testing.builders import DEFAULT_LAUNCH_TIME

__all__ = ["FixedClock", "InMemoryPublisher"]


@dataclass
class FixedClock:
    """A clock that moves only when told: `clock.now()`, `clock.advance(seconds)`.

    A `Clock` port: `seconds_until` counts from the fixed "now" at `speed`."""

    current: datetime = field(default_factory=lambda: DEFAULT_LAUNCH_TIME)
    speed: float = 1.0

    def now(self) -> datetime:
        return self.current

    def seconds_until(self, moment: datetime) -> float:
        return (moment - self.current).total_seconds() / self.speed

    def advance(self, seconds: float) -> datetime:
        self.current += timedelta(seconds=seconds)
        return self.current


@dataclass
class InMemoryPublisher:
    """A publisher that keeps messages in a list; `down = True` makes it fail like a broker."""

    messages: list[Publication] = field(default_factory=list)
    down: bool = False

    async def publish(self, message: Publication) -> None:
        if self.down:
            raise BrokerError("in-memory broker is down")
        self.messages.append(message)

    def topics(self) -> list[str]:
        return [m.topic for m in self.messages]
