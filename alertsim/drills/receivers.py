"""A drill's receivers: which fleets run them, started, followed and collected together.

`drill_fleets` splits the drill's plan: the reference receivers (`ReferenceFleet`, on the
service's broker or dealt over `reference_urls`) and, when the plan has `fl-` receivers,
the process fleet (`DrillProcessFleet`, its shards also over `fleet_urls`). `DrillFleets`
then does each step for every fleet alike (`DrillFleet`), saying what happened.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Container, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from alertsim.domain.topics import TopicTree
from alertsim.domain.vocabulary import Status
from alertsim.drills.fleet import (
    DrillFleet,
    FleetOutcome,
    ReceiptSink,
    process_plan,
    reference_plan,
)
from alertsim.drills.process_fleet import DrillProcessFleet
from alertsim.drills.reference_fleet import ReferenceFleet
from alertsim.mqtt.protocol import Protocol
from alertsim.service.events import EventStream
from alertsim.signing import TrustedKeys

__all__ = ["DrillFleets", "drill_fleets"]


@dataclass(frozen=True)
class DrillFleets:
    """The drill's fleets: the reference receivers, and the process fleet if any."""

    reference: ReferenceFleet
    process: DrillProcessFleet | None = None

    @property
    def all(self) -> tuple[DrillFleet, ...]:
        return (self.reference,) if self.process is None else (self.reference, self.process)

    async def start(self, stack: contextlib.AsyncExitStack, say: Callable[[str], None]) -> None:
        """Start every fleet (stopped when `stack` closes) and wait until it is ready."""
        for fleet in self.all:
            stack.push_async_callback(fleet.stop)
            await fleet.start()
            ready = await fleet.ready()
            say(f"  {fleet.label}: {ready.receivers} receivers in {ready.shards} "
                f"process(es) subscribed in {ready.connect_s} s")

    def follow(self, events: EventStream) -> None:
        for fleet in self.all:
            fleet.follow(events)

    async def collect(self, sink: ReceiptSink,
                      say: Callable[[str], None]) -> tuple[FleetOutcome, ...]:
        """Every fleet's outcome (receipts not sent by receivers themselves go to `sink`)."""
        outcomes = tuple([await fleet.collect(sink) for fleet in self.all])
        for outcome in outcomes:
            say(f"  {outcome.line()}")
        return outcomes


def drill_fleets(plan: Mapping[str, Sequence[str]], *, url: str, protocol: Protocol,
                 status: Status, tree: TopicTree, reference_tree: TopicTree,
                 reference_urls: Sequence[str] = (), fleet_urls: Sequence[str] = (),
                 trust: TrustedKeys | None = None, ca_file: Path | None = None,
                 started_elsewhere: Container[str] = ()) -> DrillFleets:
    """The fleets of `plan`: the reference receivers (but those `started_elsewhere`, the
    late joiners a fault relay starts) under `reference_tree`, and the `fl-` receivers as
    a process fleet under `tree`."""
    mine = {cid: codes for cid, codes in reference_plan(plan).items()
            if cid not in started_elsewhere}
    # Under a fault relay the reference receivers listen below it, to alerts signed for
    # the service's own topics.
    reference = ReferenceFleet(urls=reference_urls or (url,), protocol=protocol,
                               status=status, codes_per_receiver=mine, tree=reference_tree,
                               trust=trust, ca_file=ca_file,
                               signed_tree=None if reference_tree == tree else tree)
    extra = process_plan(plan)
    process = DrillProcessFleet(extra, url=url, status=status, tree=tree, ca_file=ca_file,
                                spread_urls=fleet_urls) if extra else None
    return DrillFleets(reference, process)
