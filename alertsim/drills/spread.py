"""Receivers spread over several brokers (the nodes of a cluster), as one fleet.

A drill on a clustered broker connects the service to one node and its receivers to the
others (`DrillOptions.receiver_urls`), so every alert and receipt crosses the cluster.
`spread` deals the receivers out (each place's over every broker); `SpreadFleet` runs one `Fleet`
per broker and answers like a single fleet (start, ready, deliveries, rejected, stop).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from alertsim.adapters.mqtt.client import Protocol
from alertsim.adapters.mqtt.receiver import Delivery, Receiver
from alertsim.adapters.mqtt.signing import TrustedKeys
from alertsim.domain.topics import V1, TopicTree
from alertsim.domain.vocabulary import Status
from alertsim.drills.fleet import READY_TIMEOUT_S, Fleet

__all__ = ["SpreadFleet", "spread"]


def spread(plan: Mapping[str, Sequence[str]],
           urls: Sequence[str]) -> dict[str, dict[str, Sequence[str]]]:
    """`plan` (client id -> prefectures) dealt over `urls`: url -> its share.

    Round robin within each first prefecture, starting one broker further for each new
    one: a place with two receivers or more has them on different brokers (so its alerts
    must cross the cluster to reach them all), and single receivers alternate too.
    """
    if not urls:
        raise ValueError("at least one broker URL is needed")
    shares: dict[str, dict[str, Sequence[str]]] = {url: {} for url in urls}
    places: dict[str, int] = {}  # first prefecture -> receivers dealt so far
    for client_id, codes in plan.items():
        place = codes[0] if codes else ""
        start = list(places).index(place) if place in places else len(places)
        dealt = places.setdefault(place, 0)
        shares[urls[(start + dealt) % len(urls)]][client_id] = codes
        places[place] = dealt + 1
    return shares


class SpreadFleet:
    """One `Fleet` per broker URL, with the receivers of `codes_per_receiver` spread over them."""

    def __init__(self, *, urls: Sequence[str], protocol: Protocol, status: Status,
                 codes_per_receiver: Mapping[str, Sequence[str]], tree: TopicTree = V1,
                 trust: TrustedKeys | None = None, ca_file: Path | None = None) -> None:
        self.shares = spread(codes_per_receiver, urls)
        self.fleets = [Fleet(url=url, protocol=protocol, status=status, codes_per_receiver=share,
                             tree=tree, trust=trust, ca_file=ca_file)
                       for url, share in self.shares.items() if share]

    @property
    def receivers(self) -> dict[str, Receiver]:
        """Every receiver of every broker, by client id."""
        return {cid: r for fleet in self.fleets for cid, r in fleet.receivers.items()}

    async def start(self) -> None:
        for fleet in self.fleets:
            await fleet.start()

    async def ready(self, timeout_s: float = READY_TIMEOUT_S) -> None:
        for fleet in self.fleets:
            await fleet.ready(timeout_s)

    def deliveries(self) -> dict[str, list[Delivery]]:
        return {cid: found for fleet in self.fleets for cid, found in fleet.deliveries().items()}

    def rejected(self) -> dict[str, list[tuple[str, str]]]:
        return {cid: found for fleet in self.fleets for cid, found in fleet.rejected().items()}

    async def stop(self) -> None:
        for fleet in self.fleets:
            await fleet.stop()
