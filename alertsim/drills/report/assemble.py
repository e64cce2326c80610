"""The drill report assembled from the record's rows, already read (`build` reads them
from a Store, so `alertsim report DB` can redo it at any time). Pure.

`assemble` takes the drill row (scenario, receivers and settings from its `settings_json`,
a `DrillSettings`), the alert rows of the outbox, the receipts, the refusal notes
(`rejected`) and counters, and the operator actions (the audit log). A scenario with a
`record` is held against it (`against_record`); the refusal notes are judged against
`expect.refused` (`refusals`); the texts sent, the counters and the actions are annexed
(`annexes`). A database without a drill row (from `alertsim serve`) still gets a report:
receivers are then inferred from the receipts and nothing is judged.

The definitions of deliveries, duplicates, latency, missed alerts and expectations
are in the package docstring (`alertsim.drills.report`).
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Container, Mapping, Sequence
from datetime import datetime

from alertsim.adapters.sqlite.rows import (
    AuditRow,
    DrillRow,
    ReceiptRow,
    RefusalCountRow,
    RejectedRow,
)
from alertsim.domain.delivery import ReceiverCopies, ReceiverDeliveries, judge_deliveries
from alertsim.domain.latency import latency_of
from alertsim.domain.model import JST
from alertsim.domain.vocabulary import PREFECTURE_CODES
from alertsim.drills.report.against_record import hold_against, record_failures
from alertsim.drills.report.annexes import with_annexes
from alertsim.drills.report.matching import Receipts, place_of
from alertsim.drills.report.model import (
    NATIONAL,
    Check,
    DrillReport,
    ExpectationResults,
    PlaceSummary,
    ReceiverSummary,
    TimelineRow,
    stages_text,
)
from alertsim.drills.report.recorded import RecordedDrill
from alertsim.drills.report.refusals import judge_refusals
from alertsim.drills.scenario import Expectations
from alertsim.service.records import OutboxRow

__all__ = ["NO_SCENARIO", "RecordedDrill", "assemble", "latency_of"]

NO_SCENARIO = "no scenario recorded"


def _jst(moment: datetime | None) -> datetime | None:
    """The same instant in JST: every time of the report is in one zone."""
    return None if moment is None else moment.astimezone(JST)


def _status_of(rows: Sequence[OutboxRow]) -> str | None:
    """The status of the first alert payload naming one (for a record with no drill row)."""
    for row in rows:
        try:
            value = json.loads(row.payload).get("status")
        except (ValueError, AttributeError):
            continue
        if isinstance(value, str):
            return value.lower()
    return None


# --- summaries -----------------------------------------------------------------------

def _receiver_summary(place: str, sent: Mapping[str, str], matched: Receipts,
                      verdict: ReceiverDeliveries, subscribed: bool,
                      outside: bool) -> ReceiverSummary:
    """One receiver's part of the delivery judge's verdict, for one place."""
    got = matched.acknowledged(verdict.client_id, place)
    return ReceiverSummary(
        client_id=verdict.client_id, subscribed=subscribed, outside_fleet=outside,
        stages=tuple(d.row.stage or "?" for d in got),
        missed=tuple(i for i in verdict.missed if sent[i] == place),
        duplicates=sum(n for i, n in verdict.duplicates.items() if sent[i] == place),
        latency=latency_of(d.latency_ms for d in got))


def _summarise(place: str, rows: Sequence[OutboxRow], matched: Receipts,
               verdicts: Mapping[str, ReceiverDeliveries], subscribers: Sequence[str],
               fleet: Container[str]) -> PlaceSummary:
    """One place's alerts and what its subscribers (and anyone else: a fleet receiver not
    given the place, or a client outside the `fleet`) acknowledged."""
    sent = {r.message_id: place_of(r) for r in rows}
    acknowledging = [d.client_id for d in matched.ofplace_of(place)]
    listening = set(subscribers)
    receivers = [_receiver_summary(place, sent, matched, verdicts[client],
                                   client in listening, client not in fleet)
                 for client in dict.fromkeys([*subscribers, *acknowledging])]
    stages_sent = tuple(r.stage or "?" for r in rows if place_of(r) == place)
    return PlaceSummary(
        place=place, sent=bool(stages_sent), stages_sent=stages_sent,
        receivers=tuple(receivers),
        deliveries=sum(r.latency.count for r in receivers),
        missed=sum(len(r.missed) for r in receivers),
        duplicates=sum(r.duplicates for r in receivers),
        latency=latency_of(d.latency_ms for d in matched.ofplace_of(place)))


def _verdicts(rows: Sequence[OutboxRow], matched: Receipts,
              subscriptions: Mapping[str, Sequence[str]]) -> dict[str, ReceiverDeliveries]:
    """The delivery judge's verdict on every receiver given places and every client that
    acknowledged anything, by client id."""
    first: defaultdict[str, list[str]] = defaultdict(list)
    for d in matched.deliveries:
        first[d.client_id].append(d.row.message_id)
    clients = dict.fromkeys([*subscriptions, *first])
    verdict = judge_deliveries({r.message_id: place_of(r) for r in rows}, (
        ReceiverCopies(client_id=c, places=tuple(subscriptions.get(c, ())),
                       first=tuple(first[c]), extra=matched.extra.get(c, {}))
        for c in clients))
    return {v.client_id: v for v in verdict.receivers}


def _places(rows: Sequence[OutboxRow], matched: Receipts,
            subscriptions: Mapping[str, Sequence[str]]
            ) -> tuple[tuple[PlaceSummary, ...], PlaceSummary]:
    """Summaries of every prefecture sent to or listened to, and of the national topic."""
    def subscribers(place: str) -> list[str]:
        return [c for c, places in subscriptions.items() if place in places]

    verdicts = _verdicts(rows, matched, subscriptions)
    codes = {r.prefecture for r in rows if r.prefecture is not None}
    codes |= {p for places in subscriptions.values() for p in places if p in PREFECTURE_CODES}
    per_prefecture = tuple(_summarise(code, rows, matched, verdicts, subscribers(code),
                                      subscriptions) for code in sorted(codes))
    return per_prefecture, _summarise(NATIONAL, rows, matched, verdicts,
                                      subscribers(NATIONAL), subscriptions)


def _timeline(rows: Sequence[OutboxRow]) -> tuple[TimelineRow, ...]:
    """The report's timeline rows of these alerts, in outbox order."""
    return tuple(
        TimelineRow(seq=r.seq, sim_time=_jst(r.sim_time), created_at=r.created_at.astimezone(JST),
                    event_id=r.event_id, prefecture=r.prefecture, stage=r.stage,
                    msg_type=r.msg_type, identifier=r.message_id, topic=r.topic,
                    published=r.published_at is not None, published_at=_jst(r.published_at))
        for r in rows)


# --- judging expectations ------------------------------------------------------------

_Judged = tuple[Check, list[str]]  # a check and its failure lines


def _judge_unheard(code: str, wanted: list[str], sent: list[str]) -> _Judged:
    """An expected prefecture nobody listens to: judged on the stages sent."""
    ok = sent == wanted
    check = Check(subject=code, expected=stages_text(wanted), actual=stages_text(sent),
                  basis="stages sent (no receiver)", passed=ok)
    failures = [] if ok else [f"{code}: sent [{stages_text(sent)}], "
                              f"expected [{stages_text(wanted)}] (no receiver)"]
    return check, failures


def _judge_heard(code: str, wanted: list[str], sent: list[str], matched: Receipts,
                 subscribers: Sequence[str]) -> _Judged:
    """An expected prefecture with receivers: each must have acknowledged `wanted`."""
    actual: list[str] = []
    failures: list[str] = []
    for client in subscribers:
        got = [d.row.stage or "?" for d in matched.acknowledged(client, code)]
        actual.append(f"{client}: {stages_text(got)}")
        if got != wanted:
            failures.append(f"{code}: {client} acknowledged [{stages_text(got)}], "
                            f"expected [{stages_text(wanted)}]; sent [{stages_text(sent)}]")
    check = Check(subject=code, expected=stages_text(wanted), actual="; ".join(actual),
                  basis=f"acknowledged by {', '.join(subscribers)}", passed=not failures)
    return check, failures


def _judge_silent(expect: Expectations, sent: defaultdict[str, list[str]]) -> _Judged:
    """Every silent prefecture must have been sent nothing."""
    silent = sorted(expect.silent_codes())
    noisy = [code for code in silent if sent[code]]
    failures = [f"{code}: expected silent, sent [{stages_text(sent[code])}]" for code in noisy]
    label = (f"others ({len(silent)} prefectures)" if expect.silent == "others"
             else ", ".join(silent))
    check = Check(
        subject="silent", expected=f"nothing to {label}",
        actual="; ".join(f"{c}: {stages_text(sent[c])}" for c in noisy) or "nothing",
        basis="stages sent", passed=not noisy)
    return check, failures


def _judge_national(expect: Expectations, sent: defaultdict[str, list[str]]) -> _Judged:
    """A national alert must have been sent exactly when one is expected."""
    national_sent = bool(sent[NATIONAL])
    check = Check(subject=NATIONAL, expected="sent" if expect.national else "not sent",
                  actual="sent" if national_sent else "not sent", basis="stages sent",
                  passed=national_sent == expect.national)
    failures = [] if check.passed else [
        f"national: expected {'a' if expect.national else 'no'} national alert, "
        f"{'one was' if national_sent else 'none was'} sent"]
    return check, failures


def _judge(expect: Expectations, rows: Sequence[OutboxRow], matched: Receipts,
           subscriptions: Mapping[str, Sequence[str]]) -> ExpectationResults:
    """Judge the scenario's expectations against all of the drill's alerts and receipts."""
    # A defaultdict: a place that was sent nothing reads as [] in every check.
    sent: defaultdict[str, list[str]] = defaultdict(list)
    for row in rows:
        sent[place_of(row)].append(row.stage or "?")
    judged: list[_Judged] = []
    for code, stages in sorted(expect.prefectures.items()):
        wanted: list[str] = list(stages)
        subscribers = [c for c, places in subscriptions.items() if code in places]
        judged.append(_judge_heard(code, wanted, sent[code], matched, subscribers)
                      if subscribers else _judge_unheard(code, wanted, sent[code]))
    judged += [_judge_silent(expect, sent), _judge_national(expect, sent)]
    return ExpectationResults(judged=True, checks=tuple(check for check, _ in judged),
                              failures=tuple(line for _, lines in judged for line in lines))


# --- the drill and its settings ------------------------------------------------------

def _within(drill: DrillRow, drills: Sequence[DrillRow], moment: datetime) -> bool:
    """True when `moment` lies from this drill's start up to the next drill's start."""
    later = [d.started_at for d in drills if d.started_at > drill.started_at]
    return moment >= drill.started_at and (not later or moment < min(later))


def _window(drill: DrillRow, drills: Sequence[DrillRow],
            rows: Sequence[OutboxRow]) -> list[OutboxRow]:
    """The alert rows created from this drill's start up to the next drill's start."""
    return [r for r in rows if _within(drill, drills, r.created_at)]


def _inferred(matched: Receipts) -> dict[str, tuple[str, ...]]:
    """Client id -> places it acknowledged alerts of, for a record with no drill row."""
    places: dict[str, dict[str, None]] = defaultdict(dict)
    for d in matched.deliveries:
        places[d.client_id][place_of(d.row)] = None
    return {client: tuple(sorted(p)) for client, p in sorted(places.items())}


# --- assembling ----------------------------------------------------------------------

def _unrecorded(rows: Sequence[OutboxRow], receipts: Sequence[ReceiptRow],
                rejected: Sequence[RejectedRow], unmatched: int,
                event_id: str | None) -> DrillReport:
    """The report of a record with no drill row: receivers inferred, refusal notes
    listed, nothing judged."""
    shown = [r for r in rows if event_id is None or r.event_id == event_id]
    shown_matched = Receipts.match(shown, receipts)
    subscriptions = _inferred(Receipts.match(rows, receipts))
    per_prefecture, national = _places(shown, shown_matched, subscriptions)
    expectations = ExpectationResults(judged=False, note=NO_SCENARIO)
    return DrillReport(
        drill_id=None, scenario=None, policy=None, status=_status_of(rows), speed=None,
        broker=None, started_at=None, finished_at=None, event_id=event_id,
        receivers=subscriptions, receivers_source="inferred from receipts",
        timeline=_timeline(shown), per_prefecture=per_prefecture, national=national,
        latency=latency_of(d.latency_ms for d in shown_matched.deliveries),
        unmatched_receipts=unmatched, expectations=expectations, passed=None,
        failures=expectations.failures, refusals=judge_refusals(rejected, None)[0])


def _recorded(drill: RecordedDrill, rows: Sequence[OutboxRow],
              receipts: Sequence[ReceiptRow], rejected: Sequence[RejectedRow],
              unmatched: int, event_id: str | None) -> DrillReport:
    """The report of a recorded drill, judged on all of its alerts and refusal notes, and
    held against the scenario's record when it has one."""
    settings, subscriptions = drill.settings, drill.subscriptions()
    scenario = settings.scenario
    shown = [r for r in rows if event_id is None or r.event_id == event_id]
    shown_matched = Receipts.match(shown, receipts)
    per_prefecture, national = _places(shown, shown_matched, subscriptions)
    expectations = _judge(scenario.expect, rows, Receipts.match(rows, receipts),
                          subscriptions)
    refusals, refused = judge_refusals(rejected, scenario.expect.refused)
    against = None if scenario.record is None else hold_against(scenario.record, rows)
    failures = (*expectations.failures, *refused,
                *(record_failures(against) if against is not None else ()))
    return DrillReport(
        drill_id=drill.row.drill_id, scenario=drill.scenario_info(), policy=settings.policy,
        status=settings.status, speed=settings.speed, broker=settings.broker,
        started_at=_jst(drill.row.started_at), finished_at=_jst(drill.row.finished_at),
        event_id=event_id, topic_root=settings.topic_root, receivers=subscriptions,
        receivers_source="drill settings",
        timeline=_timeline(shown), per_prefecture=per_prefecture, national=national,
        latency=latency_of(d.latency_ms for d in shown_matched.deliveries),
        unmatched_receipts=unmatched, expectations=expectations,
        passed=not failures, failures=failures, faults=drill.faults(), refusals=refusals,
        record=against, record_matched=None if against is None else against.matched)


def _overlaps(drill: DrillRow, drills: Sequence[DrillRow], count: RefusalCountRow) -> bool:
    """True when a refusal counter counted anything while this drill ran."""
    later = [d.started_at for d in drills if d.started_at > drill.started_at]
    return count.last_at >= drill.started_at and (not later or count.first_at < min(later))


def assemble(drill: RecordedDrill | None, drills: Sequence[DrillRow],
             alerts: Sequence[OutboxRow], receipts: Sequence[ReceiptRow], *,
             rejected: Sequence[RejectedRow] = (), counted: Sequence[RefusalCountRow] = (),
             audit: Sequence[AuditRow] = (), event_id: str | None = None) -> DrillReport:
    """Build the report from rows already read: `drill` is the one reported (None: no
    drill recorded), `drills` all drill rows, `alerts` the outbox rows of kind alert,
    `rejected` the refusal notes, `counted` the refusal counters, `audit` the operator
    actions; `event_id` restricts the timeline, tables, texts and actions (not the
    expectations, the refusal notes or the record) to one event."""
    known = {r.message_id for r in alerts}
    unmatched = sum(1 for r in receipts if r.message_id not in known)
    if drill is None:
        report = _unrecorded(alerts, receipts, rejected, unmatched, event_id)
        return with_annexes(report, alerts, counted, audit)
    rows = _window(drill.row, drills, alerts)
    notes = [r for r in rejected if _within(drill.row, drills, r.received_at)]
    report = _recorded(drill, rows, receipts, notes, unmatched, event_id)
    return with_annexes(report, rows, [c for c in counted if _overlaps(drill.row, drills, c)],
                        [a for a in audit if _within(drill.row, drills, a.received_at)])
