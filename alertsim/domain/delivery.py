"""Who got which alert: the one delivery judge, for the drill report (receipts in the
record) and the process fleet (what its receivers heard). Pure: identifiers in, counts out.

The definitions, the same wherever deliveries are counted:

    expected    an alert is expected once at every receiver listening to its place (a
                prefecture code or "national")
    delivery    the first copy of an alert at a receiver; a duplicate is every further copy
    missed      an expected alert a listening receiver never got
    wrong area  a delivery of an alert for a place the receiver does not listen to

Callers differ only in where copies come from (receipt rows, or messages heard) and in
how they present the verdict.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

__all__ = ["AlertDeliveries", "DeliveryVerdict", "ReceiverCopies", "ReceiverDeliveries",
           "judge_deliveries"]


@dataclass(frozen=True)
class ReceiverCopies:
    """What one receiver got: first copies in arrival order, and further copies."""

    client_id: str
    places: Collection[str]  # what it listens to: codes and/or "national"
    first: Sequence[str]  # identifiers of first copies, in arrival order
    extra: Mapping[str, int] = field(default_factory=dict)  # identifier -> further copies


@dataclass(frozen=True)
class ReceiverDeliveries:
    """One receiver's verdict, over the alerts sent."""

    client_id: str
    delivered: tuple[str, ...]  # first copies of alerts sent, in arrival order
    missed: tuple[str, ...]  # alerts sent to its places it never got, in sending order
    duplicates: Mapping[str, int]  # further copies of alerts sent, by identifier
    wrong_area: tuple[str, ...]  # delivered alerts for places it does not listen to


@dataclass(frozen=True)
class AlertDeliveries:
    """One alert's verdict, over the receivers."""

    identifier: str
    place: str
    expected: int
    delivered: int  # at receivers listening to its place
    missed: int
    duplicates: int


@dataclass(frozen=True)
class DeliveryVerdict:
    alerts: tuple[AlertDeliveries, ...]  # in the order of `sent`
    receivers: tuple[ReceiverDeliveries, ...]  # in the order given


def _receiver(copies: ReceiverCopies, sent: Mapping[str, str]) -> ReceiverDeliveries:
    places = frozenset(copies.places)
    delivered = tuple(i for i in copies.first if i in sent)
    got = set(delivered)
    return ReceiverDeliveries(
        client_id=copies.client_id, delivered=delivered,
        missed=tuple(i for i, place in sent.items() if place in places and i not in got),
        duplicates={i: n for i, n in copies.extra.items() if i in sent and n > 0},
        wrong_area=tuple(i for i in delivered if sent[i] not in places))


def judge_deliveries(sent: Mapping[str, str],
                     heard: Iterable[ReceiverCopies]) -> DeliveryVerdict:
    """The verdict on `sent` (identifier -> place, in sending order) given what each
    receiver got."""
    receivers: list[ReceiverDeliveries] = []
    listeners: Counter[str] = Counter()
    delivered: Counter[str] = Counter()
    duplicates: Counter[str] = Counter()
    for copies in heard:
        verdict = _receiver(copies, sent)
        receivers.append(verdict)
        listeners.update(frozenset(copies.places))
        wrong = set(verdict.wrong_area)
        delivered.update(i for i in verdict.delivered if i not in wrong)
        duplicates.update(verdict.duplicates)
    alerts = tuple(
        AlertDeliveries(identifier=i, place=place, expected=listeners[place],
                        delivered=delivered[i], missed=max(0, listeners[place] - delivered[i]),
                        duplicates=duplicates[i])
        for i, place in sent.items())
    return DeliveryVerdict(alerts=alerts, receivers=tuple(receivers))
