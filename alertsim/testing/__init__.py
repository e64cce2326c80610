"""Helpers for tests, ours and client developers': detection builders and a fixed clock.

Importing this module is cheap and does no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from alertsim.adapters.mqtt.client import OutgoingMessage
from alertsim.domain.detection import Detection, ObjectKind, Outcome
from alertsim.domain.model import JST
from alertsim.errors import BrokerError

DEFAULT_LAUNCH_TIME = datetime(2023, 11, 21, 22, 43, tzinfo=JST)


def make_detection(
    launch: tuple[float, float],
    impact: tuple[float, float],
    cross_track_km: float,
    along_track_km: float,
    *,
    event_id: str = "test-event",
    sequence: int = 1,
    launch_time: datetime = DEFAULT_LAUNCH_TIME,
    flight: timedelta = timedelta(minutes=14),
    observed_after: timedelta = timedelta(minutes=2),
    object_kind: ObjectKind = "ballistic_missile",
    apogee_km: float | None = None,
    outcome: Outcome | None = None,
) -> Detection:
    """A valid detection from (lat, lon) pairs, the way the issue tables state cases."""
    doc: dict[str, Any] = {
        "event_id": event_id,
        "sequence": sequence,
        "observed_at": (launch_time + observed_after).isoformat(),
        "object": object_kind,
        "launch": {"lat": launch[0], "lon": launch[1], "time": launch_time.isoformat()},
        "predicted": {"impact": {"lat": impact[0], "lon": impact[1]},
                      "impact_time": (launch_time + flight).isoformat()},
        "uncertainty": {"cross_track_km": cross_track_km, "along_track_km": along_track_km},
        "apogee_km": apogee_km,
        "outcome": outcome,
    }
    return Detection.model_validate(doc)


@dataclass
class FixedClock:
    """A clock that moves only when told: `clock.now()`, `clock.advance(seconds)`."""

    current: datetime = field(default_factory=lambda: DEFAULT_LAUNCH_TIME)

    def now(self) -> datetime:
        return self.current

    def advance(self, seconds: float) -> datetime:
        self.current += timedelta(seconds=seconds)
        return self.current


@dataclass
class InMemoryPublisher:
    """A publisher that keeps messages in a list; `down = True` makes it fail like a broker."""

    messages: list[OutgoingMessage] = field(default_factory=list)
    down: bool = False

    async def publish(self, message: OutgoingMessage) -> None:
        if self.down:
            raise BrokerError("in-memory broker is down")
        self.messages.append(message)

    def topics(self) -> list[str]:
        return [m.topic for m in self.messages]
