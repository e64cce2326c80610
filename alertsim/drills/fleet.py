"""A drill's fleets: what every one of them does, what it reports, and who is in it.

A drill's receivers run as fleets of two kinds, which the runner treats alike
(`DrillFleet`): `start`, `ready` (every receiver subscribed: `FleetReady`), `follow` the
service's events (what it sends), `collect` once the service has published (a
`FleetOutcome`), `stop`.

    ReferenceFleet     (drills/reference_fleet.py) one aiomqtt `Receiver` per client, in
                       this process, on one broker or dealt over several (`spread`); they
                       verify signatures and send receipts over MQTT themselves
    DrillProcessFleet  (drills/process_fleet.py) the extra receivers (`--receivers N`) on
                       an MQTT 5 broker: `alertsim.fleet`'s shard processes; their
                       deliveries become receipts at `collect`

Receipts of both go into the record one way: `Service.record_receipts` (the reference
receivers' through the service's MQTT link, the process fleet's through the `ReceiptSink`
given to `collect`), so the report, built from the record alone, judges every receiver
alike, and the views hear of every receipt.

`plan_receivers` gives one receiver per prefecture (`rx-01` .. `rx-47`) plus a few extra
ones on seeded random prefectures; `drill_plan` names a drill's (process fleet receivers
`fl-{token}-{code}-{k}`, spread by population); `reference_plan` keeps the others.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import NamedTuple, Protocol

from alertsim.domain.vocabulary import PREFECTURE_CODES
from alertsim.fleet import population
from alertsim.fleet.summary import FleetReady, FleetSummary
from alertsim.service.events import EventStream, ReceiptSeen

__all__ = ["FLEET_PREFIX", "DrillFleet", "FleetOutcome", "ReceiptSink", "Rejection",
           "drill_plan", "plan_receivers", "process_plan", "reference_plan"]

FLEET_PREFIX = "fl-"


class ReceiptSink(Protocol):
    """Where a fleet hands receipts: the service's one way into the record."""

    async def record_receipts(self, receipts: Sequence[ReceiptSeen]) -> None: ...


class Rejection(NamedTuple):
    """A message a receiver refused (a bad signature, say)."""

    client_id: str
    topic: str
    reason: str


@dataclass(frozen=True)
class FleetOutcome:
    """What one fleet got in a drill, once collected."""

    label: str  # how the drill's output names the fleet
    receivers: int
    deliveries: int  # alerts received (a reference receiver's duplicates included)
    verified: int  # of those, how many had their signature checked
    rejected: tuple[Rejection, ...] = ()
    complete: bool = True  # every delivery the fleet waited for came in time
    summary: FleetSummary | None = None  # the process fleet's per-alert figures

    def line(self) -> str:
        """One line for the drill's output."""
        if self.summary is None:
            return (f"{self.label}: {self.deliveries} deliveries to {self.receivers} "
                    f"receivers, {self.verified} signatures verified, "
                    f"{len(self.rejected)} rejected")
        totals, latency = self.summary.totals, self.summary.latency_ms
        return (f"{self.label}: {totals.deliveries} deliveries, {totals.missed} missed, "
                f"{totals.duplicates} duplicates, {totals.wrong_area} wrong-area; "
                f"p99 {latency.p99_ms} ms after sent-at"
                + ("" if self.complete else " (NOT all expected deliveries in time)"))


class DrillFleet(Protocol):
    """What the drill runner asks of every fleet, in this order."""

    label: str

    async def start(self) -> None:
        """Start connecting (may return before every receiver is subscribed)."""

    async def ready(self) -> FleetReady:
        """Every receiver subscribed; BrokerError when not in time."""

    def follow(self, events: EventStream) -> None:
        """Hear what the service sends from now on (before its first publication)."""

    async def collect(self, sink: ReceiptSink) -> FleetOutcome:
        """After the service has published: what the fleet got; receipts its receivers
        did not send themselves go to `sink`."""

    async def stop(self) -> None:
        """Disconnect every receiver (idempotent)."""


def plan_receivers(extra: int, seed: int = 0, prefix: str = "rx") -> dict[str, list[str]]:
    """`{prefix}-01`..`{prefix}-47` on their prefecture, then `extra` on seeded random ones."""
    if extra < 0:
        raise ValueError(f"extra must be >= 0 (got {extra})")
    rng = random.Random(seed)
    plan = {f"{prefix}-{code}": [code] for code in PREFECTURE_CODES}
    for n in range(1, extra + 1):
        plan[f"{prefix}-x{n:04d}"] = [rng.choice(PREFECTURE_CODES)]
    return plan


def drill_plan(extra: int, token: str, *, process_fleet: bool) -> dict[str, list[str]]:
    """The drill's receivers: `rx-{token}-01`..`-47`, then `extra` more, as a process fleet
    spread by population (`fl-{token}-{code}-{k}`) or as seeded random `rx-{token}-x0001`."""
    if not process_fleet:
        return plan_receivers(extra, prefix=f"rx-{token}")
    plan = plan_receivers(0, prefix=f"rx-{token}")
    plan.update({client_id: [code] for client_id, code
                 in population.plan(extra, prefix=f"{FLEET_PREFIX}{token}").items()})
    return plan


def reference_plan(plan: Mapping[str, Sequence[str]]) -> dict[str, Sequence[str]]:
    """The receivers of `plan` that run in the drill's process (all but the process fleet)."""
    return {cid: codes for cid, codes in plan.items() if not cid.startswith(FLEET_PREFIX)}


def process_plan(plan: Mapping[str, Sequence[str]]) -> dict[str, str]:
    """The process fleet's receivers of `plan` (client id -> its one prefecture)."""
    return {cid: codes[0] for cid, codes in plan.items() if cid.startswith(FLEET_PREFIX)}
