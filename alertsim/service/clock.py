"""Clocks the service reads "now" from: the system clock, or a drill's scaled clock.

The domain never reads a clock; the service asks one of these and passes "now" down.
A drill plays a historical scenario at `speed` times real time on its own simulated
timeline, so alerts carry the scenario's times (e.g. 22:46 JST on 2023-11-21).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta


@dataclass
class SystemClock:
    speed: float = 1.0

    def now(self) -> datetime:
        return datetime.now(UTC)

    def seconds_until(self, moment: datetime) -> float:
        return (moment - self.now()).total_seconds()


@dataclass
class ScaledClock:
    """Simulated time starting at `start`, running `speed` times faster than real time."""

    start: datetime
    speed: float = 1.0
    _t0: float = field(default_factory=time.monotonic)

    def now(self) -> datetime:
        return self.start + timedelta(seconds=(time.monotonic() - self._t0) * self.speed)

    def seconds_until(self, moment: datetime) -> float:
        return (moment - self.now()).total_seconds() / self.speed


def real_now() -> datetime:
    """Wall-clock UTC time, for records of when things really happened (latencies)."""
    return datetime.now(UTC)
