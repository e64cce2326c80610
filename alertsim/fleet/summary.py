"""What a process fleet reports, as typed values: ready figures and the delivery summary.

    FleetReady    every receiver subscribed: how many, in how many shards, how fast
    Deliveries    per alert and in total: delivered, missed, duplicates, wrong area,
                  latency against the service's `sent-at` (`summarise` builds it from the
                  shards' reports)
    FleetSummary  a stopped fleet's `Deliveries` with the fleet's own figures; what
                  `alertsim fleet --json` writes (`model_dump_json`)

Pure: no I/O. The definitions of each count are in `alertsim.fleet.tally`.
"""

from __future__ import annotations

from collections.abc import Sequence

from alertsim.domain.delivery import ReceiverCopies, judge_deliveries
from alertsim.domain.latency import Latency, latency_of
from alertsim.domain.model import Frozen
from alertsim.fleet.tally import NATIONAL, ShardReport

__all__ = ["AlertTally", "Deliveries", "Duplicate", "FleetReady", "FleetSummary",
           "Totals", "WrongArea", "render_summary", "summarise"]

_MAX_LISTED = 1000  # wrong-area and duplicate lines kept in a summary, beyond that counted


class FleetReady(Frozen):
    """A fleet whose receivers have all subscribed."""

    receivers: int
    shards: int  # processes holding the receivers
    subscribed: int
    connect_s: float
    rss_mb: float | None = None  # the shards' peak resident memory, when measured


class AlertTally(Frozen):
    identifier: str
    place: str  # "01".."47" or "national"
    expected: int
    delivered: int
    missed: int
    duplicates: int


class Totals(Frozen):
    deliveries: int = 0
    missed: int = 0
    duplicates: int = 0
    wrong_area: int = 0
    malformed: int = 0
    states: int = 0


class WrongArea(Frozen):
    client_id: str
    prefecture: str
    identifier: str
    payload_prefecture: str


class Duplicate(Frozen):
    client_id: str
    identifier: str
    extra: int


class Deliveries(Frozen):
    """What every receiver of a fleet got, per alert and in total."""

    alerts: tuple[AlertTally, ...] = ()
    totals: Totals = Totals()
    latency_ms: Latency = Latency()
    wrong_area: tuple[WrongArea, ...] = ()  # the first _MAX_LISTED
    duplicates: tuple[Duplicate, ...] = ()  # the first _MAX_LISTED


class FleetSummary(Deliveries):
    """A stopped fleet's deliveries, with its size, topics and timings."""

    receivers: int
    shards: int
    status: str
    topic_root: str
    connect_s: float | None
    rss_mb: float
    duration_s: float


def summarise(reports: Sequence[ShardReport]) -> Deliveries:
    """One summary of every shard's `Tally.report()`, judged by the one delivery judge
    (`alertsim.domain.delivery`): every receiver listens to its prefecture and national."""
    records = [record for report in reports for record in report.receivers]
    places: dict[str, str] = {}
    for report in reports:
        places.update(report.places)
    sent = dict(sorted(places.items(), key=lambda item: (item[1], item[0])))
    verdict = judge_deliveries(sent, (
        ReceiverCopies(client_id=r.client_id, places=(r.code, NATIONAL), first=tuple(r.first),
                       extra=r.duplicates) for r in records))
    wrong = [WrongArea(client_id=v.client_id, prefecture=r.code, identifier=ident,
                       payload_prefecture=sent[ident])
             for r, v in zip(records, verdict.receivers, strict=True) for ident in v.wrong_area]
    dup_lines = [Duplicate(client_id=v.client_id, identifier=ident, extra=n)
                 for v in verdict.receivers for ident, n in v.duplicates.items()]
    alerts = [AlertTally(identifier=a.identifier, place=a.place, expected=a.expected,
                         delivered=a.delivered, missed=a.missed, duplicates=a.duplicates)
              for a in verdict.alerts]
    return Deliveries(
        alerts=tuple(alerts),
        totals=Totals(deliveries=sum(a.delivered for a in alerts),
                      missed=sum(a.missed for a in alerts),
                      duplicates=sum(a.duplicates for a in alerts), wrong_area=len(wrong),
                      malformed=sum(r.malformed for r in reports),
                      states=sum(r.states for r in reports)),
        latency_ms=latency_of(v for r in reports for v in r.latencies),
        wrong_area=tuple(wrong[:_MAX_LISTED]), duplicates=tuple(dup_lines[:_MAX_LISTED]))


def render_summary(summary: FleetSummary) -> str:
    """The summary for a person: totals, latency and the alerts seen."""
    totals, lat = summary.totals, summary.latency_ms
    lines = [
        f"fleet: {summary.receivers} receivers in {summary.shards} shard(s) under "
        f"{summary.topic_root}/{summary.status}/, connected in {summary.connect_s} s, "
        f"{summary.rss_mb} MB",
        f"  deliveries {totals.deliveries}, missed {totals.missed}, duplicates "
        f"{totals.duplicates}, wrong area {totals.wrong_area}, malformed "
        f"{totals.malformed}, state messages {totals.states}",
        f"  latency vs sent-at (ms): p50 {lat.p50_ms}, p99 {lat.p99_ms}, "
        f"max {lat.max_ms} over {lat.count} deliveries",
    ]
    lines += [f"  {a.place:>8} {a.identifier}: {a.delivered}/{a.expected}"
              + (f", {a.missed} missed" if a.missed else "")
              + (f", {a.duplicates} duplicate(s)" if a.duplicates else "")
              for a in summary.alerts[:50]]
    if len(summary.alerts) > 50:
        lines.append(f"  ... and {len(summary.alerts) - 50} more alerts (see --json)")
    lines += [f"  wrong area: {w.client_id} ({w.prefecture}) got {w.identifier} "
              f"for {w.payload_prefecture}" for w in summary.wrong_area[:10]]
    return "\n".join(lines)
