"""A fleet of receivers in one process, for drills: who got which alert, and how often.

`plan_receivers` gives one receiver per prefecture (`rx-01` .. `rx-47`) plus a few extra
ones on seeded random prefectures. `Fleet` runs one `Receiver` per entry, all owned by one
`asyncio.TaskGroup` inside a single runner task, with clean sessions (a fleet lives for one
drill) and the national topic.

aiomqtt costs a timer per client, which is fine for hundreds of receivers. A drill's extra
receivers (`--receivers N`) on an MQTT 5 broker are therefore a process fleet
(`alertsim.fleet`), spread over the prefectures by population: `drill_plan` names them
`fl-{token}-{code}-{k}`, `reference_plan` keeps the others (the 47 reference receivers,
which verify signatures and send receipts), and `FleetForDrill` starts them, waits until
every alert in the outbox has reached every fleet receiver of its place (a deadline that
grows with the deliveries expected), and records their deliveries as receipts, in one
batch, so the report (built from the record alone) judges them like any receiver.
On a 3.1.1 broker (amqtt, NATS) or spread over several brokers, all receivers stay here.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Self

from alertsim.adapters.mqtt.client import Protocol
from alertsim.adapters.mqtt.receiver import Delivery, Receiver
from alertsim.adapters.mqtt.signing import TrustedKeys
from alertsim.adapters.sqlite.store import Store
from alertsim.domain.topics import V1, TopicTree
from alertsim.domain.vocabulary import PREFECTURE_CODES, Status
from alertsim.errors import BrokerError
from alertsim.fleet import population
from alertsim.fleet.fleet import Fleet as ProcessFleet
from alertsim.logs import get_logger

__all__ = ["Fleet", "FleetForDrill", "drill_plan", "plan_receivers", "reference_plan"]

log = get_logger(__name__)

READY_TIMEOUT_S = 30.0
FLEET_PREFIX = "fl-"
SETTLE_BASE_S = 10.0
SETTLE_PER_DELIVERY_S = 0.001  # 20,000 receivers x 3 alerts: 70 s


def plan_receivers(extra: int, seed: int = 0, prefix: str = "rx") -> dict[str, list[str]]:
    """`{prefix}-01`..`{prefix}-47` on their prefecture, then `extra` on seeded random ones."""
    if extra < 0:
        raise ValueError(f"extra must be >= 0 (got {extra})")
    rng = random.Random(seed)
    plan = {f"{prefix}-{code}": [code] for code in PREFECTURE_CODES}
    for n in range(1, extra + 1):
        plan[f"{prefix}-x{n:04d}"] = [rng.choice(PREFECTURE_CODES)]
    return plan


class Fleet:
    """Many receivers (client id -> prefectures) started and stopped together.

    `start()` then `await ready()` (all subscribed, or BrokerError after 30 s); read
    `deliveries()`; `stop()`. Also usable as `async with Fleet(...) as fleet:`.
    """

    def __init__(self, *, url: str, protocol: Protocol, status: Status,
                 codes_per_receiver: Mapping[str, Sequence[str]],
                 tree: TopicTree = V1, trust: TrustedKeys | None = None,
                 ca_file: Path | None = None) -> None:
        self.receivers = {
            client_id: Receiver(url=url, protocol=protocol, client_id=client_id, codes=codes,
                                status=status, national=True, persistent=False, tree=tree,
                                trust=trust, ca_file=ca_file)
            for client_id, codes in codes_per_receiver.items()
        }
        self._ready = {client_id: asyncio.Event() for client_id in self.receivers}
        self._runner: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Start every receiver (returns at once; `ready()` waits for the subscriptions)."""
        if self._runner is not None:
            raise RuntimeError("the fleet is already started")
        self._runner = asyncio.create_task(self._run(), name="fleet")
        log.info("fleet.started", receivers=len(self.receivers))

    async def _run(self) -> None:
        async with asyncio.TaskGroup() as group:
            for client_id, receiver in self.receivers.items():
                group.create_task(receiver.run(self._ready[client_id]),
                                  name=f"fleet:{client_id}")

    async def ready(self, timeout_s: float = READY_TIMEOUT_S) -> None:
        """Wait until every receiver has its SUBACK; BrokerError after `timeout_s`."""
        if self._runner is None:
            raise RuntimeError("start() the fleet first")
        runner = self._runner
        try:
            async with asyncio.timeout(timeout_s):
                for client_id, event in self._ready.items():
                    ready = asyncio.create_task(event.wait(), name=f"fleet.ready:{client_id}")
                    try:
                        await asyncio.wait({ready, runner},
                                           return_when=asyncio.FIRST_COMPLETED)
                    finally:
                        ready.cancel()
                    if runner.done():
                        runner.result()  # a receiver failed: raise its error here
                        raise BrokerError("the fleet stopped before all receivers subscribed")
        except TimeoutError:
            waiting = [cid for cid, event in self._ready.items() if not event.is_set()]
            raise BrokerError(f"{len(waiting)} of {len(self.receivers)} receivers not "
                              f"subscribed within {timeout_s} s (first: {waiting[0]})") from None
        log.info("fleet.ready", receivers=len(self.receivers))

    def deliveries(self) -> dict[str, list[Delivery]]:
        """Every receiver's deliveries so far (duplicates included), by client id."""
        return {client_id: list(r.deliveries) for client_id, r in self.receivers.items()}

    def rejected(self) -> dict[str, list[tuple[str, str]]]:
        """(topic, reason) of every message a receiver refused (with `trust`), by client id."""
        return {client_id: list(r.rejected) for client_id, r in self.receivers.items()
                if r.rejected}

    async def stop(self) -> None:
        """Disconnect every receiver and wait for them (idempotent)."""
        runner, self._runner = self._runner, None
        if runner is None:
            return
        for receiver in self.receivers.values():
            receiver.stop()
        await runner
        log.info("fleet.stopped", receivers=len(self.receivers))

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.stop()


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


class FleetForDrill:
    """A drill's process fleet: `start`, then `collect` once the service has published."""

    def __init__(self, plan: Mapping[str, str], *, url: str, status: Status, tree: TopicTree,
                 ca_file: Path | None = None, spread_urls: Sequence[str] = ()) -> None:
        self.fleet = ProcessFleet(plan, url=url, status=status, tree=tree, ca_file=ca_file,
                                  spread_urls=spread_urls)
        self.status: Status = status
        self.tree = tree

    @classmethod
    def of(cls, plan: Mapping[str, Sequence[str]], *, url: str, status: Status,
           tree: TopicTree, ca_file: Path | None = None,
           spread_urls: Sequence[str] = ()) -> FleetForDrill | None:
        """The process fleet of `plan`'s `fl-` receivers; None when it has none."""
        mine = {cid: codes[0] for cid, codes in plan.items() if cid.startswith(FLEET_PREFIX)}
        return cls(mine, url=url, status=status, tree=tree, ca_file=ca_file,
                   spread_urls=spread_urls) if mine else None

    async def start(self) -> dict[str, object]:
        """Every fleet receiver subscribed (BrokerError if not in time); ready figures."""
        return await self.fleet.start()

    async def _expected(self, store: Store) -> dict[str, int]:
        """Alert identifier -> fleet receivers that should get it (alerts of this tree)."""
        prefix = self.tree.alerts(self.status, "01")[:-2]
        return {row.message_id: self.fleet.expected(row.prefecture)
                for row in await store.outbox(kind="alert") if row.topic.startswith(prefix)}

    async def collect(self, store: Store) -> dict[str, object]:
        """Wait for the expected deliveries (bounded), stop, record them as receipts; the
        fleet's summary (with `complete`: whether all expected deliveries came in time)."""
        expected = await self._expected(store)
        timeout = SETTLE_BASE_S + SETTLE_PER_DELIVERY_S * sum(expected.values())
        complete = await self.fleet.wait_for(expected, timeout)
        if not complete:
            log.warning("fleet.settle_timeout", timeout_s=timeout)
        result = await self.fleet.stop()
        now = datetime.now(UTC)
        receipts = [(cid, ident, datetime.fromtimestamp(ms / 1000, UTC), now)
                    for cid, _code, first, _dups, _wrong in result.records
                    for ident, ms in first.items()]
        receipts += [(cid, ident, now, now) for cid, _code, _first, dups, _wrong
                     in result.records for ident, n in dups.items() for _ in range(n)]
        await store.record_receipts(receipts)
        return {**result.summary, "complete": complete}

    async def stop(self) -> None:
        """Stop the fleet if `collect` has not (for an exit stack)."""
        await self.fleet.stop()
