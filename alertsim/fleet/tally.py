"""What a fleet's receivers got, kept per receiver: pure bookkeeping, no I/O.

Each receiver listens to one prefecture and the national topic. Delivery, duplicate,
wrong area and missed are the delivery judge's (`alertsim.domain.delivery`, which the
drill report uses too); an alert no receiver got at all is visible only to whoever sent
it (the drill compares with its outbox). Also kept:

    latency      receive time minus the `sent-at` user property the service puts on every
                 message (wall-clock ms), when the message carries one

Payloads are read by the domain's own `Alert` model (`heard`), as the reference receiver
reads them: one parser for every receiver. `Tally` is one shard's record; its `progress()`
and `report()` are the typed lines a shard sends its parent (`ShardProgress`,
`ShardReport`); `alertsim.fleet.summary.summarise` merges the reports of all shards.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal, NamedTuple

from pydantic import ValidationError

from alertsim.domain.messages import Alert
from alertsim.domain.model import Frozen

__all__ = ["NATIONAL", "Heard", "ReceiverTally", "ShardProgress", "ShardReport", "Tally",
           "heard"]

NATIONAL = "national"


class Heard(NamedTuple):
    """The facts a fleet receiver keeps of an alert: its identifier and place."""

    identifier: str
    place: str  # "01".."47" or "national"


def heard(payload: bytes) -> Heard | None:
    """The identifier and place of an alert payload, read by the domain's `Alert` model;
    None when the payload is not a valid alert."""
    try:
        alert = Alert.model_validate_json(payload)
    except ValidationError:
        return None
    return Heard(alert.identifier, alert.prefecture or NATIONAL)


class ReceiverTally(NamedTuple):
    """One receiver's deliveries (a JSON array on the shard's pipe)."""

    client_id: str
    code: str
    first: dict[str, float]  # identifier -> first receive time, ms since the epoch
    duplicates: dict[str, int]  # identifier -> extra copies


class ShardProgress(Frozen):
    """Counts so far: first in-area deliveries per identifier, duplicates, wrong-area."""

    type: Literal["progress"] = "progress"
    delivered: dict[str, int]
    duplicates: int
    wrong_area: int


class ShardReport(Frozen):
    """Everything one shard's receivers got (what it hands its parent when stopped)."""

    type: Literal["report"] = "report"
    receivers: tuple[ReceiverTally, ...]
    places: dict[str, str]  # identifier -> place
    latencies: tuple[float, ...]  # ms, first deliveries carrying `sent-at`
    malformed: int
    states: int
    rss_mb: float = 0.0


@dataclass
class _Record:
    client_id: str
    code: str
    first: dict[str, float] = field(default_factory=dict)
    duplicates: Counter[str] = field(default_factory=Counter)


class Tally:
    """The deliveries of one shard's receivers (indexed 0..n-1)."""

    def __init__(self, receivers: Sequence[tuple[str, str]]) -> None:
        self.receivers = [_Record(client_id, code) for client_id, code in receivers]
        self.delivered: Counter[str] = Counter()  # identifier -> first deliveries
        self.places: dict[str, str] = {}  # identifier -> place
        self.latencies: list[float] = []  # ms, first deliveries carrying `sent-at`
        self.duplicates = 0
        self.wrong_area = 0
        self.malformed = 0
        self.states = 0

    def alert(self, index: int, alert: Heard | None, received_ms: float,
              sent_ms: float | None) -> None:
        """Record an alert message at receiver `index` (None: a payload that is no alert)."""
        if alert is None:
            self.malformed += 1
            return
        record = self.receivers[index]
        self.places[alert.identifier] = alert.place
        if alert.identifier in record.first:
            record.duplicates[alert.identifier] += 1
            self.duplicates += 1
            return
        record.first[alert.identifier] = received_ms
        # Live counts, by the delivery judge's definitions (alertsim.domain.delivery):
        # wrong area is a first copy for a place the receiver does not listen to.
        if alert.place in (record.code, NATIONAL):
            self.delivered[alert.identifier] += 1
        else:
            self.wrong_area += 1
        if sent_ms is not None:
            self.latencies.append(received_ms - sent_ms)

    def progress(self) -> ShardProgress:
        return ShardProgress(delivered=dict(self.delivered), duplicates=self.duplicates,
                             wrong_area=self.wrong_area)

    def report(self, rss_mb: float = 0.0) -> ShardReport:
        return ShardReport(
            receivers=tuple(ReceiverTally(r.client_id, r.code, r.first, dict(r.duplicates))
                            for r in self.receivers),
            places=self.places, latencies=tuple(self.latencies), malformed=self.malformed,
            states=self.states, rss_mb=rss_mb)
