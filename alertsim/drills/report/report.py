"""The drill report: what was sent, who acknowledged it, how fast, and whether the
scenario's expectations held, rebuilt from a Store alone (so `alertsim report DB` can
redo it at any time).

`build_report(store)` reads the latest drill row (scenario, receivers and settings from its
`settings_json`), the alert rows of the outbox and the receipts; everything after the
reads is pure (`assemble`). A database without a drill row (from `alertsim serve`) still
gets a report: receivers are then inferred from the receipts and nothing is judged.

Definitions used throughout:

- A drill's alerts are the outbox rows of kind `alert` created from its `started_at` up
  to the next drill's `started_at` (or the end of the record).
- A delivery is the first receipt of a (client_id, message_id) pair; every further
  receipt of the pair is a duplicate. Acknowledged stages are the stages of a client's
  deliveries in receipt order.
- Latency = receipt `received_at` - outbox `created_at`, in milliseconds, over deliveries
  (duplicates are counted, not timed, so a re-publish after a restart does not show up
  as a slow delivery). p50 and p99 are nearest-rank percentiles: the ceil(p/100 * n)-th
  smallest value, always one of the measured values (numpy's `inverted_cdf` method).
- A missed delivery: an alert for place P in the outbox, a receiver subscribed to P,
  and no receipt from that receiver for that alert's identifier.
- Expectations: an expected prefecture passes when every receiver subscribed to it
  acknowledged exactly the expected stages in order (with no receiver: when exactly those
  stages were sent); silent prefectures pass when nothing was sent to them; national
  passes when (a national alert was sent) == `expect.national`. Expectations always
  cover the whole drill, even when the report is restricted to one event.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import AwareDatetime, BaseModel, ConfigDict, ValidationError

from alertsim.adapters.sqlite.store import DrillRow, OutboxRow, ReceiptRow, Store
from alertsim.drills.scenario import ALL_CODES, Expectations, Scenario
from alertsim.errors import InputError

__all__ = [
    "Check",
    "DrillReport",
    "ExpectationResults",
    "Latency",
    "PlaceSummary",
    "ReceiverSummary",
    "ScenarioInfo",
    "TimelineEntry",
    "assemble",
    "build_report",
    "latency_of",
    "render_markdown",
    "write_report",
]

NATIONAL = "national"  # the place name of the national topic, beside "01".."47"
NO_SCENARIO = "no scenario recorded"


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Latency(_Model):
    """Delivery latency in milliseconds; the statistics are None when nothing was timed."""

    count: int = 0
    p50_ms: float | None = None
    p99_ms: float | None = None
    max_ms: float | None = None


class TimelineEntry(_Model):
    """One alert the service wrote to its outbox, in outbox order."""

    seq: int
    sim_time: AwareDatetime | None
    created_at: AwareDatetime
    event_id: str | None
    prefecture: str | None  # None: national
    stage: str | None
    msg_type: str | None  # CAP msgType from the payload; None if the payload lacks it
    identifier: str
    topic: str
    published: bool
    published_at: AwareDatetime | None


class ReceiverSummary(_Model):
    """What one receiver made of one place's alerts."""

    client_id: str
    subscribed: bool  # False: it acknowledged alerts of a place it was not given
    stages: tuple[str, ...]  # acknowledged, first receipt per alert, in receipt order
    missed: tuple[str, ...]  # identifiers of alerts it never acknowledged
    duplicates: int
    latency: Latency


class PlaceSummary(_Model):
    """One prefecture ("01".."47") or the national topic ("national")."""

    place: str
    sent: bool
    stages_sent: tuple[str, ...]  # in outbox order
    receivers: tuple[ReceiverSummary, ...]
    deliveries: int  # first receipts, all receivers
    missed: int
    duplicates: int
    latency: Latency


class Check(_Model):
    """One judged expectation."""

    subject: str  # a prefecture code, "silent" or "national"
    expected: str
    actual: str
    basis: str  # what was compared: receivers' acknowledgements or the outbox
    passed: bool


class ExpectationResults(_Model):
    """The scenario's expectations, judged; `judged` is False without a scenario."""

    judged: bool
    note: str = ""
    checks: tuple[Check, ...] = ()
    failures: tuple[str, ...] = ()


class ScenarioInfo(_Model):
    title: str
    kind: str
    date: date
    sources: tuple[str, ...]
    notes: str
    path: str | None


class DrillReport(_Model):
    """The drill report; `passed` is None when there was no scenario to judge against."""

    drill_id: str | None
    scenario: ScenarioInfo | None
    policy: str | None
    status: str | None
    speed: float | None
    broker: str | None
    started_at: AwareDatetime | None
    finished_at: AwareDatetime | None
    event_id: str | None  # the report is restricted to this event
    receivers: dict[str, tuple[str, ...]]  # client id -> places it is subscribed to
    receivers_source: Literal["drill settings", "inferred from receipts"]
    timeline: tuple[TimelineEntry, ...]
    per_prefecture: tuple[PlaceSummary, ...]
    national: PlaceSummary
    latency: Latency
    unmatched_receipts: int  # receipts naming no alert in the outbox
    expectations: ExpectationResults
    passed: bool | None
    failures: tuple[str, ...]


# --- pure parts ----------------------------------------------------------------------

def latency_of(values_ms: Iterable[float]) -> Latency:
    """Count, nearest-rank p50/p99 and max of latencies in milliseconds."""
    values = np.sort(np.fromiter(values_ms, dtype=np.float64))
    if values.size == 0:
        return Latency()
    p50, p99 = np.percentile(values, [50, 99], method="inverted_cdf")
    return Latency(count=int(values.size), p50_ms=float(p50), p99_ms=float(p99),
                   max_ms=float(values[-1]))


def _ms(delta: timedelta) -> float:
    return delta / timedelta(milliseconds=1)


def _place(row: OutboxRow) -> str:
    return row.prefecture or NATIONAL


def _msg_type(payload: bytes) -> str | None:
    try:
        data = json.loads(payload)
    except ValueError:
        return None
    value = data.get("msgType") if isinstance(data, dict) else None
    return value if isinstance(value, str) else None


@dataclass(frozen=True)
class _Delivery:
    client_id: str
    row: OutboxRow
    latency_ms: float


@dataclass(frozen=True)
class _Receipts:
    """Receipts matched to a set of alert rows: deliveries in receipt order, duplicates."""

    deliveries: tuple[_Delivery, ...]
    duplicates: Counter[tuple[str, str]]  # (client_id, message_id) -> extra receipts

    @classmethod
    def match(cls, rows: Sequence[OutboxRow], receipts: Sequence[ReceiptRow]) -> _Receipts:
        by_id = {r.message_id: r for r in rows}
        seen: set[tuple[str, str]] = set()
        deliveries: list[_Delivery] = []
        duplicates: Counter[tuple[str, str]] = Counter()
        for receipt in receipts:
            row = by_id.get(receipt.message_id)
            if row is None:
                continue
            key = (receipt.client_id, receipt.message_id)
            if key in seen:
                duplicates[key] += 1
                continue
            seen.add(key)
            deliveries.append(_Delivery(receipt.client_id, row,
                                        _ms(receipt.received_at - row.created_at)))
        return cls(tuple(deliveries), duplicates)

    def acknowledged(self, client_id: str, place: str) -> list[_Delivery]:
        return [d for d in self.deliveries
                if d.client_id == client_id and _place(d.row) == place]


def _summarise(place: str, rows: Sequence[OutboxRow], matched: _Receipts,
               subscribers: Sequence[str]) -> PlaceSummary:
    sent = [r for r in rows if _place(r) == place]
    ids = {r.message_id for r in sent}
    acknowledging = [d.client_id for d in matched.deliveries if _place(d.row) == place]
    receivers: list[ReceiverSummary] = []
    for client in dict.fromkeys([*subscribers, *acknowledging]):
        got = matched.acknowledged(client, place)
        got_ids = {d.row.message_id for d in got}
        subscribed = client in subscribers
        missed = tuple(r.message_id for r in sent if subscribed and r.message_id not in got_ids)
        receivers.append(ReceiverSummary(
            client_id=client, subscribed=subscribed,
            stages=tuple(d.row.stage or "?" for d in got), missed=missed,
            duplicates=sum(n for (c, m), n in matched.duplicates.items()
                           if c == client and m in ids),
            latency=latency_of(d.latency_ms for d in got)))
    return PlaceSummary(
        place=place, sent=bool(sent), stages_sent=tuple(r.stage or "?" for r in sent),
        receivers=tuple(receivers),
        deliveries=sum(r.latency.count for r in receivers),
        missed=sum(len(r.missed) for r in receivers),
        duplicates=sum(r.duplicates for r in receivers),
        latency=latency_of(d.latency_ms for d in matched.deliveries if _place(d.row) == place))


def _stages_text(stages: Sequence[str]) -> str:
    return ", ".join(stages) if stages else "nothing"


def _judge(expect: Expectations, rows: Sequence[OutboxRow], matched: _Receipts,
           subscriptions: Mapping[str, Sequence[str]]) -> ExpectationResults:
    """Judge the scenario's expectations against all of the drill's alerts and receipts."""
    sent: dict[str, list[str]] = defaultdict(list)
    for row in rows:
        sent[_place(row)].append(row.stage or "?")
    checks: list[Check] = []
    failures: list[str] = []
    for code, stages in sorted(expect.prefectures.items()):
        wanted = list(stages)
        subscribers = [c for c, places in subscriptions.items() if code in places]
        if not subscribers:
            ok = sent[code] == wanted
            checks.append(Check(subject=code, expected=_stages_text(wanted),
                                actual=_stages_text(sent[code]),
                                basis="stages sent (no receiver)", passed=ok))
            if not ok:
                failures.append(f"{code}: sent [{_stages_text(sent[code])}], "
                                f"expected [{_stages_text(wanted)}] (no receiver)")
            continue
        actual: list[str] = []
        bad: list[str] = []
        for client in subscribers:
            got = [d.row.stage or "?" for d in matched.acknowledged(client, code)]
            actual.append(f"{client}: {_stages_text(got)}")
            if got != wanted:
                bad.append(client)
                failures.append(f"{code}: {client} acknowledged [{_stages_text(got)}], "
                                f"expected [{_stages_text(wanted)}]; "
                                f"sent [{_stages_text(sent[code])}]")
        checks.append(Check(subject=code, expected=_stages_text(wanted),
                            actual="; ".join(actual),
                            basis=f"acknowledged by {', '.join(subscribers)}", passed=not bad))
    silent = sorted(expect.silent_codes())
    noisy = [code for code in silent if sent[code]]
    for code in noisy:
        failures.append(f"{code}: expected silent, sent [{_stages_text(sent[code])}]")
    label = (f"others ({len(silent)} prefectures)" if expect.silent == "others"
             else ", ".join(silent))
    checks.append(Check(
        subject="silent", expected=f"nothing to {label}",
        actual="; ".join(f"{c}: {_stages_text(sent[c])}" for c in noisy) or "nothing",
        basis="stages sent", passed=not noisy))
    national_sent = bool(sent[NATIONAL])
    checks.append(Check(subject=NATIONAL, expected="sent" if expect.national else "not sent",
                        actual="sent" if national_sent else "not sent", basis="stages sent",
                        passed=national_sent == expect.national))
    if national_sent != expect.national:
        failures.append(f"national: expected {'a' if expect.national else 'no'} national "
                        f"alert, {'one was' if national_sent else 'none was'} sent")
    return ExpectationResults(judged=True, checks=tuple(checks), failures=tuple(failures))


def _window(drill: DrillRow, drills: Sequence[DrillRow],
            rows: Sequence[OutboxRow]) -> list[OutboxRow]:
    """The alert rows created from this drill's start up to the next drill's start."""
    later = [d.started_at for d in drills if d.started_at > drill.started_at]
    end = min(later) if later else None
    return [r for r in rows
            if r.created_at >= drill.started_at and (end is None or r.created_at < end)]


def _settings(drill: DrillRow | None) -> dict[str, Any]:
    if drill is None:
        return {}
    data = json.loads(drill.settings_json)
    return data if isinstance(data, dict) else {}


def _subscriptions(settings: Mapping[str, Any]) -> dict[str, tuple[str, ...]]:
    national = bool(settings.get("national_receivers", False))
    out: dict[str, tuple[str, ...]] = {}
    for client, places in dict(settings.get("receivers") or {}).items():
        listed = tuple(str(p) for p in places)
        if national and NATIONAL not in listed:
            listed = (*listed, NATIONAL)
        out[str(client)] = listed
    return out


def _inferred(matched: _Receipts) -> dict[str, tuple[str, ...]]:
    places: dict[str, dict[str, None]] = defaultdict(dict)
    for d in matched.deliveries:
        places[d.client_id][_place(d.row)] = None
    return {client: tuple(sorted(p)) for client, p in sorted(places.items())}


def _status_of(rows: Sequence[OutboxRow]) -> str | None:
    for row in rows:
        try:
            value = json.loads(row.payload).get("status")
        except (ValueError, AttributeError):
            continue
        if isinstance(value, str):
            return value.lower()
    return None


def assemble(drill: DrillRow | None, drills: Sequence[DrillRow],
             alerts: Sequence[OutboxRow], receipts: Sequence[ReceiptRow], *,
             event_id: str | None = None) -> DrillReport:
    """Build the report from rows already read: `drill` is the one reported (None: no
    drill recorded), `drills` all drill rows, `alerts` the outbox rows of kind alert."""
    settings = _settings(drill)
    rows = list(alerts) if drill is None else _window(drill, drills, alerts)
    matched = _Receipts.match(rows, receipts)
    known = {r.message_id for r in alerts}
    unmatched = sum(1 for r in receipts if r.message_id not in known)

    scenario: Scenario | None = None
    note = NO_SCENARIO
    if "scenario" in settings:
        try:
            scenario = Scenario.model_validate(settings["scenario"])
        except ValidationError as exc:
            note = f"recorded scenario is not valid: {exc.error_count()} problem(s)"
    if drill is not None and "receivers" in settings:
        subscriptions = _subscriptions(settings)
        source: Literal["drill settings", "inferred from receipts"] = "drill settings"
    else:
        subscriptions = _inferred(matched)
        source = "inferred from receipts"

    shown = [r for r in rows if event_id is None or r.event_id == event_id]
    shown_matched = _Receipts.match(shown, receipts)

    def subscribers(place: str) -> list[str]:
        return [c for c, places in subscriptions.items() if place in places]

    codes = {r.prefecture for r in shown if r.prefecture is not None}
    codes |= {p for places in subscriptions.values() for p in places if p in ALL_CODES}
    per_prefecture = tuple(_summarise(code, shown, shown_matched, subscribers(code))
                           for code in sorted(codes))
    national = _summarise(NATIONAL, shown, shown_matched, subscribers(NATIONAL))

    if scenario is None:
        expectations = ExpectationResults(judged=False, note=note)
        passed: bool | None = None
    else:
        expectations = _judge(scenario.expect, rows, matched, subscriptions)
        passed = not expectations.failures

    info = None
    if scenario is not None:
        path = settings.get("scenario_path") or (drill.scenario if drill else None)
        info = ScenarioInfo(title=scenario.title, kind=scenario.kind, date=scenario.date,
                            sources=scenario.sources, notes=scenario.notes, path=path)
    speed = settings.get("speed")
    return DrillReport(
        drill_id=drill.drill_id if drill else None, scenario=info,
        policy=settings.get("policy") or (scenario.policy if scenario else None),
        status=settings.get("status") or (scenario.status if scenario else _status_of(rows)),
        speed=float(speed) if speed is not None else None, broker=settings.get("broker"),
        started_at=drill.started_at if drill else None,
        finished_at=drill.finished_at if drill else None, event_id=event_id,
        receivers=subscriptions, receivers_source=source,
        timeline=tuple(
            TimelineEntry(seq=r.seq, sim_time=r.sim_time, created_at=r.created_at,
                          event_id=r.event_id, prefecture=r.prefecture, stage=r.stage,
                          msg_type=_msg_type(r.payload), identifier=r.message_id,
                          topic=r.topic, published=r.published_at is not None,
                          published_at=r.published_at) for r in shown),
        per_prefecture=per_prefecture, national=national,
        latency=latency_of(d.latency_ms for d in shown_matched.deliveries),
        unmatched_receipts=unmatched, expectations=expectations, passed=passed,
        failures=expectations.failures)


# --- the store and files -------------------------------------------------------------

async def build_report(store: Store, drill_id: str | None = None,
                       event_id: str | None = None) -> DrillReport:
    """The report of one drill (the latest when `drill_id` is None), optionally restricted
    to one event; InputError when `drill_id` names no recorded drill."""
    drills = await store.drills()
    drill: DrillRow | None = drills[-1] if drills else None
    if drill_id is not None:
        drill = next((d for d in drills if d.drill_id == drill_id), None)
        if drill is None:
            known = ", ".join(d.drill_id for d in drills) or "none"
            raise InputError(store.path, [f"drill_id: no drill {drill_id!r} "
                                          f"(recorded: {known})"])
    alerts = await store.outbox(kind="alert")
    receipts = await store.receipts()
    return assemble(drill, drills, alerts, receipts, event_id=event_id)


def _cell(value: object) -> str:
    text = "—" if value is None or value == "" else str(value)
    return text.replace("|", "\\|").replace("\n", " ")


def _num(value: float | None) -> str:
    return "—" if value is None else f"{value:g}"


def _table(header: Sequence[str], rows: Iterable[Sequence[object]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_cell(v) for v in row) + " |" for row in rows]
    return lines


def _receivers_cell(place: PlaceSummary) -> str:
    cells = {(r.subscribed, r.stages) for r in place.receivers}
    if len(place.receivers) > 3 and len(cells) == 1:
        subscribed, stages = cells.pop()
        flag = "" if subscribed else " (not subscribed)"
        return f"all {len(place.receivers)} receivers{flag}: {_stages_text(stages)}"
    parts = []
    for r in place.receivers:
        flag = "" if r.subscribed else " (not subscribed)"
        parts.append(f"{r.client_id}{flag}: {_stages_text(r.stages)}")
    return "; ".join(parts) or "no receiver"


def _quiet(place: PlaceSummary) -> bool:
    """Nothing sent, nothing acknowledged, nothing missed: a row a summary can fold."""
    return (not place.stages_sent and not place.missed and not place.duplicates
            and all(not r.stages for r in place.receivers))


def render_markdown(report: DrillReport, *, compact: bool = False) -> str:
    """The report as Markdown: summary, expectations, per-prefecture table, timeline.

    `compact` folds the prefectures that were sent and received nothing into one line
    (the console summary); the written report keeps every row.
    """
    title = report.scenario.title if report.scenario else (report.drill_id or "alertsim record")
    verdict = {True: "PASSED", False: "FAILED", None: "NOT JUDGED"}[report.passed]
    missed = sum(p.missed for p in (*report.per_prefecture, report.national))
    duplicates = sum(p.duplicates for p in (*report.per_prefecture, report.national))
    lines = [f"# Drill report: {title}", "",
             f"**{verdict}** — {len(report.timeline)} alert(s) sent, "
             f"{report.latency.count} delivery(ies) acknowledged, {missed} missed, "
             f"{duplicates} duplicate(s); latency p50 {_num(report.latency.p50_ms)} ms, "
             f"p99 {_num(report.latency.p99_ms)} ms, max {_num(report.latency.max_ms)} ms", ""]
    scenario = report.scenario
    facts = [("Drill", report.drill_id), ("Scenario file", scenario and scenario.path),
             ("Kind", scenario and scenario.kind), ("Date", scenario and scenario.date),
             ("Policy", report.policy), ("Status", report.status),
             ("Speed", report.speed and f"{report.speed:g}x"), ("Broker", report.broker),
             ("Started", report.started_at), ("Finished", report.finished_at),
             ("Event", report.event_id), ("Receivers from", report.receivers_source)]
    lines += [f"- {name}: {value}" for name, value in facts if value]
    if scenario and scenario.sources:
        lines.append(f"- Sources: {'; '.join(scenario.sources)}")
    if report.unmatched_receipts:
        lines.append(f"- Receipts naming no alert in the outbox: {report.unmatched_receipts}")
    lines += ["", "## Expectations", ""]
    if not report.expectations.judged:
        lines.append(f"Not judged: {report.expectations.note}.")
    else:
        lines += _table(["Check", "Expected", "Actual", "Basis", "Result"],
                        ([c.subject, c.expected, c.actual, c.basis,
                          "pass" if c.passed else "FAIL"] for c in report.expectations.checks))
        if report.failures:
            lines += ["", "Failures:", ""] + [f"- {line}" for line in report.failures]
    lines += ["", "## Per prefecture", ""]
    places = [*report.per_prefecture, report.national]
    shown = [p for p in places if not (compact and _quiet(p))]
    lines += _table(
        ["Prefecture", "Stages sent", "Acknowledged", "p50 ms", "p99 ms", "max ms", "Missed",
         "Duplicates"],
        ([p.place, _stages_text(p.stages_sent), _receivers_cell(p), _num(p.latency.p50_ms),
          _num(p.latency.p99_ms), _num(p.latency.max_ms), p.missed, p.duplicates]
         for p in shown))
    folded = len(places) - len(shown)
    if folded:
        lines += ["", f"{folded} other place(s): nothing sent, nothing acknowledged."]
    lines += ["", "## Timeline", ""]
    lines += _table(
        ["#", "Sim time", "Created (real)", "Event", "Prefecture", "Stage", "msgType",
         "Identifier", "Topic", "Published"],
        ([e.seq, e.sim_time and e.sim_time.isoformat(timespec="seconds"),
          e.created_at.isoformat(timespec="milliseconds"), e.event_id,
          e.prefecture or NATIONAL, e.stage, e.msg_type, e.identifier, e.topic,
          "yes" if e.published else "no"] for e in report.timeline))
    return "\n".join(lines) + "\n"


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


async def write_report(report: DrillReport, directory: Path, stem: str) -> tuple[Path, Path]:
    """Write `stem.json` and `stem.md` into `directory` (created if needed)."""
    json_path, md_path = directory / f"{stem}.json", directory / f"{stem}.md"
    await asyncio.to_thread(_write, json_path, report.model_dump_json(indent=2) + "\n")
    await asyncio.to_thread(_write, md_path, render_markdown(report))
    return json_path, md_path
