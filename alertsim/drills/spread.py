"""Receivers dealt over several brokers (the nodes of a cluster).

A drill on a clustered broker connects the service to one node and its receivers to the
others (`DrillOptions.receiver_urls`), so every alert and receipt crosses the cluster.
`spread` deals the receivers out (each place's over every broker); `ReferenceFleet`
connects each receiver to the broker it was dealt.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

__all__ = ["spread"]


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
