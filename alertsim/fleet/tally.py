"""What a fleet's receivers got, kept per receiver: pure bookkeeping, no I/O.

Definitions (per receiver, which listens to one prefecture and the national topic):

    delivery     the first time an alert identifier reaches the receiver
    duplicate    the same identifier reaching the same receiver again (each extra copy)
    wrong area   an alert whose payload names a prefecture other than the receiver's
                 (`alertsim.prefecture`; None is national, which every receiver takes)
    missed       an alert the fleet saw (at any receiver) for a place, that a receiver
                 listening to that place never got; an alert no receiver got at all is
                 visible only to whoever sent it (the drill compares with its outbox)
    latency      receive time minus the `sent-at` user property the service puts on every
                 message (wall-clock ms), when the message carries one

`Tally` is one shard's record; `summarise` merges the reports of all shards.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = ["NATIONAL", "Alert", "ReceiverRecord", "Tally", "latency", "read_alert",
           "summarise"]

NATIONAL = "national"
_MAX_LISTED = 1000  # wrong-area and duplicate lines kept in a summary, beyond that counted


@dataclass(frozen=True)
class Alert:
    """The facts a receiver needs from an alert payload: its identifier and place."""

    identifier: str
    place: str  # "01".."47" or "national"


def read_alert(payload: bytes) -> Alert | None:
    """The identifier and place of an alert payload (JSON, as the service sends it);
    None when the payload is not such an alert."""
    try:
        body = json.loads(payload)
        identifier = body["identifier"]
        prefecture = body["alertsim"]["prefecture"]
    except (ValueError, TypeError, KeyError):
        return None
    if not isinstance(identifier, str) or not (prefecture is None or isinstance(prefecture, str)):
        return None
    return Alert(identifier, prefecture or NATIONAL)


@dataclass
class ReceiverRecord:
    """One receiver's deliveries: first receive time (ms since the epoch) per identifier."""

    client_id: str
    code: str
    first: dict[str, float] = field(default_factory=dict)
    duplicates: Counter[str] = field(default_factory=Counter)
    wrong_area: list[str] = field(default_factory=list)


class Tally:
    """The deliveries of one shard's receivers (indexed 0..n-1)."""

    def __init__(self, receivers: Sequence[tuple[str, str]]) -> None:
        self.receivers = [ReceiverRecord(client_id, code) for client_id, code in receivers]
        self.delivered: Counter[str] = Counter()  # identifier -> first deliveries
        self.places: dict[str, str] = {}  # identifier -> place
        self.latencies: list[float] = []  # ms, first deliveries carrying `sent-at`
        self.duplicates = 0
        self.wrong_area = 0
        self.malformed = 0
        self.states = 0

    def alert(self, index: int, alert: Alert | None, received_ms: float,
              sent_ms: float | None) -> None:
        """Record an alert message at receiver `index` (None: a payload that is no alert)."""
        if alert is None:
            self.malformed += 1
            return
        record = self.receivers[index]
        self.places[alert.identifier] = alert.place
        in_area = alert.place in (record.code, NATIONAL)
        if not in_area:
            record.wrong_area.append(alert.identifier)
            self.wrong_area += 1
        if alert.identifier in record.first:
            record.duplicates[alert.identifier] += 1
            self.duplicates += 1
            return
        record.first[alert.identifier] = received_ms
        if in_area:  # only these count toward the place's expected deliveries
            self.delivered[alert.identifier] += 1
        if sent_ms is not None:
            self.latencies.append(received_ms - sent_ms)

    def progress(self) -> dict[str, Any]:
        """Counts so far: first in-area deliveries per identifier, duplicates, wrong-area."""
        return {"delivered": dict(self.delivered), "duplicates": self.duplicates,
                "wrong_area": self.wrong_area}

    def report(self) -> dict[str, Any]:
        """Everything, as JSON-ready data (what a shard hands its parent when stopped)."""
        return {
            "receivers": [[r.client_id, r.code, r.first, dict(r.duplicates), r.wrong_area]
                          for r in self.receivers],
            "places": self.places, "latencies": self.latencies,
            "malformed": self.malformed, "states": self.states,
        }


def latency(values: Iterable[float]) -> dict[str, float | int | None]:
    """Count, nearest-rank p50 and p99, and max of latencies in ms."""
    ordered = sorted(values)
    if not ordered:
        return {"count": 0, "p50_ms": None, "p99_ms": None, "max_ms": None}

    def rank(q: float) -> float:
        return round(ordered[max(0, math.ceil(len(ordered) * q / 100) - 1)], 1)

    return {"count": len(ordered), "p50_ms": rank(50), "p99_ms": rank(99),
            "max_ms": round(ordered[-1], 1)}


def _listeners(records: Sequence[Sequence[Any]]) -> Counter[str]:
    return Counter(record[1] for record in records)


def summarise(reports: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """One summary of every shard's `Tally.report()`: per alert and in total."""
    records = [record for report in reports for record in report["receivers"]]
    places: dict[str, str] = {}
    for report in reports:
        places.update(report["places"])
    listeners = _listeners(records)
    delivered: Counter[str] = Counter()
    duplicates: Counter[str] = Counter()
    wrong: list[dict[str, str]] = []
    dup_lines: list[dict[str, Any]] = []
    for client_id, code, first, dups, wrong_area in records:
        delivered.update(i for i in first if places.get(i) in (code, NATIONAL))
        duplicates.update(dups)
        wrong += [{"client_id": client_id, "prefecture": code, "identifier": ident,
                   "payload_prefecture": places.get(ident, "?")} for ident in wrong_area]
        dup_lines += [{"client_id": client_id, "identifier": ident, "extra": n}
                      for ident, n in dups.items()]
    alerts = []
    for ident, place in sorted(places.items(), key=lambda item: (item[1], item[0])):
        expected = len(records) if place == NATIONAL else listeners[place]
        alerts.append({"identifier": ident, "place": place, "expected": expected,
                       "delivered": delivered[ident],
                       "missed": max(0, expected - delivered[ident]),
                       "duplicates": duplicates[ident]})
    return {
        "alerts": alerts,
        "totals": {"deliveries": sum(delivered.values()),
                   "missed": sum(a["missed"] for a in alerts),
                   "duplicates": sum(duplicates.values()), "wrong_area": len(wrong),
                   "malformed": sum(r["malformed"] for r in reports),
                   "states": sum(r["states"] for r in reports)},
        "latency_ms": latency(v for r in reports for v in r["latencies"]),
        "wrong_area": wrong[:_MAX_LISTED], "duplicates": dup_lines[:_MAX_LISTED],
    }
