"""The drill report held against J-Alert's record, and its refusal notes listed and judged,
rebuilt from a real SQLite file written through the Store API."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from alertsim.adapters.sqlite.store import Store
from alertsim.domain.model import JST
from alertsim.domain.topics import TopicTree
from alertsim.domain.vocabulary import MsgType, Stage
from alertsim.drills.report import DrillReport, DrillSettings, build_report, render_markdown
from alertsim.drills.report.against_record import signed_duration
from alertsim.drills.report.html import build_html
from alertsim.drills.report.render import MAX_LINE
from alertsim.drills.scenario import Scenario
from alertsim.service.records import OutboxMessage

REAL_T0 = datetime(2025, 6, 1, 1, 0, 0, tzinfo=UTC)  # the drill's real start
SIM_T0 = datetime(2025, 1, 1, 10, 0, 0, tzinfo=JST)  # the scenario clock's origin
EVENT = "record-test"
TREE = TopicTree("alertsim/v1/drills/drill-1")
MSG_TYPES: dict[Stage, MsgType] = {"shelter": "Alert", "passed": "Update", "cancel": "Cancel"}
EXPECT_01 = {"prefectures": {"01": ["shelter", "passed"]}}


def sim(clock: str) -> str:
    """A JST time on the scenario's day, as the record writes it ("10:03:00")."""
    return f"2025-01-01T{clock}+09:00"


def scenario(expect: dict[str, Any], record: dict[str, Any] | None) -> Scenario:
    """A historical scenario (one detection at 10:02) with these expectations and record."""
    data: dict[str, Any] = {
        "title": "Record test drill", "kind": "historical", "date": "2025-01-01",
        "sources": ["for the report tests"], "status": "exercise", "start": SIM_T0.isoformat(),
        "timeline": [{"at": 120, "detection": {
            "event_id": EVENT, "sequence": 1, "observed_at": sim("10:02:00"),
            "object": "ballistic_missile",
            "launch": {"lat": 40.858, "lon": 129.686, "time": SIM_T0.isoformat()},
            "predicted": {"impact": {"lat": 49.47, "lon": 159.34},
                          "impact_time": sim("10:13:00")},
            "uncertainty": {"cross_track_km": 25, "along_track_km": 100}}}],
        "expect": expect}
    if record is not None:
        data["record"] = record
    return Scenario.model_validate(data)


async def record_drill(store: Store, *, expect: dict[str, Any] = EXPECT_01,
                       record: dict[str, Any] | None = None, drill_id: str = "drill-1",
                       started_at: datetime = REAL_T0) -> None:
    """Write a drill row whose settings hold the scenario, as a drill would."""
    played = scenario(expect, record)
    settings = DrillSettings(
        scenario=played, scenario_path="scenarios/record-test.yaml",
        receivers={"rx-01": ("01",)}, national_receivers=False, speed=60.0,
        broker="mqtt://127.0.0.1:1883", status="exercise", policy=played.resolved_policy(),
        topic_root=TREE.root)
    await store.drills.record_drill(drill_id=drill_id, scenario="scenarios/record-test.yaml",
                             started_at=started_at, settings_json=settings.model_dump_json())


async def send(store: Store, identifier: str, stage: Stage, code: str, *, sent: str,
               ack_ms: int | None = 20) -> None:
    """Enqueue an alert sent at `sent` (scenario clock), created as many seconds into the
    drill as it is after the scenario's start over 60, published, acknowledged by rx-01
    after `ack_ms` (None: never). The report reads the outbox row's columns, not the
    payload, so the payload carries only the CAP header fields."""
    at = datetime.fromisoformat(sim(sent))
    created = REAL_T0 + (at - SIM_T0) / 60
    payload = {"identifier": identifier, "sent": at.isoformat(), "status": "Exercise",
               "msgType": MSG_TYPES[stage]}
    await store.record.enqueue([OutboxMessage(
        message_id=identifier, event_id=EVENT, kind="alert", prefecture=code, stage=stage,
        topic=TREE.alerts("exercise", code), payload=json.dumps(payload).encode(),
        msg_type=MSG_TYPES[stage], qos=1, retain=False, sim_time=at,
        expires_at=at + timedelta(hours=1), created_at=created)])
    await store.record.mark_published(identifier, created + timedelta(milliseconds=2))
    if ack_ms is not None:
        received = created + timedelta(milliseconds=ack_ms)
        await store.record.record_receipt(client_id="rx-01", message_id=identifier,
                                   received_at=received, recorded_at=received)


async def refuse(store: Store, reason: str, *, after_s: float, source: str | None = None,
                 base: datetime = REAL_T0) -> None:
    """Record a refusal note `after_s` real seconds after `base`."""
    await store.record.record_rejected(raw=b'{"event_id": "x"}', reason=reason,
                                source=source or TREE.detections,
                                received_at=base + timedelta(seconds=after_s))


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    """An empty, migrated store in a real file."""
    async with await Store.open(tmp_path / "drill.db") as opened:
        yield opened


RECORD_01 = {"sources": ["Cabinet Secretariat", "NHK"], "areas": ["01"],
             "stages": [{"stage": "shelter", "at": sim("10:03:00")},
                        {"stage": "passed", "at": sim("10:05:30")}]}


# --- the record ----------------------------------------------------------------------

async def test_drill_matching_its_record_passes(store: Store) -> None:
    """Same areas and every stage within tolerance: the record is matched, the drill passes."""
    await record_drill(store, record=RECORD_01)
    await send(store, "A1", "shelter", "01", sent="10:03:00")
    await send(store, "A2", "passed", "01", sent="10:04:30")
    report = await build_report(store)
    assert report.record is not None
    assert [(r.prefecture, r.stage, r.difference_s, r.verdict) for r in report.record.rows] == [
        ("01", "shelter", 0.0, "within tolerance"), ("01", "passed", -60.0, "within tolerance")]
    assert report.record.rows[1].record_at == datetime.fromisoformat(sim("10:05:30"))
    assert report.record.rows[1].drill_at == datetime.fromisoformat(sim("10:04:30"))
    assert (report.record.areas.record, report.record.areas.drill) == (("01",), ("01",))
    assert (report.record_matched, report.passed, report.failures) == (True, True, ())
    text = render_markdown(report)
    assert "## Held against the record" in text
    assert "The drill matches J-Alert's record (tolerance 2 min" in text
    assert "J-Alert addressed 1 prefecture(s), the drill warned 1: the same ones." in text
    assert "| 01 | passed | 2025-01-01T10:05:30+09:00 | 2025-01-01T10:04:30+09:00 | -1 min | " \
           "within tolerance |" in text
    page = await build_html(store, report, "en")
    assert "<h2>Held against the record</h2>" in page
    assert "matches J-Alert&#x27;s record" in page


async def test_drill_off_its_record_fails_naming_each_difference(store: Store) -> None:
    """A late stage, a stage the record lacks, an area the drill did not warn: the record
    is not matched and the drill fails on it alone, each difference named."""
    record = {"sources": ["Cabinet Secretariat"], "tolerance": "00:01:00",
              "areas": ["01", "02"],
              "stages": [{"stage": "shelter", "at": sim("10:03:00")},
                         {"stage": "passed", "at": sim("10:14:00"), "prefectures": ["01"]}]}
    await record_drill(store, expect={"prefectures": {"01": ["shelter", "passed", "cancel"]}},
                       record=record)
    await send(store, "A1", "shelter", "01", sent="10:03:40")
    await send(store, "A2", "passed", "01", sent="10:04:30")
    await send(store, "A3", "cancel", "01", sent="10:05:00")
    report = await build_report(store)
    assert report.expectations.failures == ()
    assert report.record is not None
    assert [(r.prefecture, r.stage, r.difference_s, r.verdict) for r in report.record.rows] == [
        ("01", "shelter", 40.0, "within tolerance"),
        ("01", "passed", -570.0, "outside tolerance"),
        ("01", "cancel", None, "not in record"),
        ("02", "shelter", None, "missing in drill")]
    assert (report.record.areas.only_in_record, report.record.areas.only_in_drill) == (
        ("02",), ())
    assert (report.record_matched, report.passed) == (False, False)
    assert report.failures == (
        "record: areas differ: in the record, not warned in the drill: 02; warned in the "
        "drill, not in the record: none",
        "record: 01 passed: drill 10:04:30, record 10:14:00, -9 min 30 s (tolerance 1 min)",
        "record: 01 cancel: sent by the drill at 10:05:00, not in the record",
        "record: 02 shelter: recorded at 10:03:00, not sent by the drill")
    text = render_markdown(report)
    assert text.startswith("# Drill report: Record test drill\n\n**FAILED**")
    assert "does NOT match J-Alert's record" in text
    assert "in the record, not warned in the drill: 02; warned in the drill, not in the " \
           "record: none." in text
    assert "| 02 | shelter | 2025-01-01T10:03:00+09:00 | — | — | missing in drill |" in text
    assert all(len(line) <= MAX_LINE for line in text.splitlines())
    page = await build_html(store, report, "en")
    assert "does NOT match J-Alert&#x27;s record" in page
    assert "<td class='fail'>outside tolerance</td>" in page
    # Every reason the drill failed is in the page, as the judge worded it.
    assert "<li class='fail'>record: 02 shelter: recorded at 10:03:00, not sent by the " \
           "drill</li>" in page


async def test_drill_warning_outside_the_record_areas_fails(store: Store) -> None:
    """A prefecture the drill warned that J-Alert did not address is named as such."""
    await record_drill(store, expect={"prefectures": {"01": ["shelter"], "02": ["shelter"]}},
                       record={**RECORD_01, "stages": RECORD_01["stages"][:1]})
    await send(store, "A1", "shelter", "01", sent="10:03:00")
    await send(store, "A2", "shelter", "02", sent="10:03:00", ack_ms=None)
    report = await build_report(store)
    assert report.record is not None
    assert report.record.areas.only_in_drill == ("02",)
    assert report.record_matched is False
    assert "record: 02 shelter: sent by the drill at 10:03:00, not in the record" in (
        report.failures)


async def test_without_a_record_nothing_is_held_against_one(store: Store) -> None:
    """No record: `record` and `record_matched` are None and the section is left out."""
    await record_drill(store)
    await send(store, "A1", "shelter", "01", sent="10:03:00")
    await send(store, "A2", "passed", "01", sent="10:04:30")
    report = await build_report(store)
    assert (report.record, report.record_matched, report.passed) == (None, None, True)
    assert "Held against the record" not in render_markdown(report)
    assert "Held against the record" not in await build_html(store, report, "en")


async def test_record_comparison_survives_the_json_round_trip(store: Store) -> None:
    """The report's JSON carries the comparison and `record_matched`, and reads back equal."""
    await record_drill(store, record=RECORD_01)
    await send(store, "A1", "shelter", "01", sent="10:03:00")
    report = await build_report(store)
    data = json.loads(report.model_dump_json())
    assert data["record_matched"] is False
    assert data["record"]["rows"][1]["verdict"] == "missing in drill"
    assert DrillReport.model_validate_json(report.model_dump_json()) == report


@pytest.mark.parametrize(("seconds", "text"), [
    (0.0, "0 s"), (40.0, "+40 s"), (-570.0, "-9 min 30 s"), (420.0, "+7 min"), (-0.4, "0 s")])
def test_signed_duration(seconds: float, text: str) -> None:
    """Differences read as signed minutes and seconds."""
    assert signed_duration(seconds) == text


# --- refusal notes -------------------------------------------------------------------

LONG_REASON = ("observed_at: 2025-01-01T09:40:00+09:00 is stale: more than 600 s behind the "
               "service clock (2025-01-01T10:02:00+09:00); " + "x" * 120)


async def test_unexpected_refusals_fail_the_drill_and_are_listed(store: Store) -> None:
    """Refusal notes the scenario did not expect fail an otherwise clean drill, each listed
    with its time, topic and reason, and the count said in words."""
    await record_drill(store)
    await send(store, "A1", "shelter", "01", sent="10:03:00")
    await send(store, "A2", "passed", "01", sent="10:04:30")
    await refuse(store, "payload too large: 70000 bytes, the limit is 65536", after_s=10)
    await refuse(store, LONG_REASON, after_s=20)
    report = await build_report(store)
    assert report.expectations.failures == ()
    assert [r.reason for r in report.refusals.rows] == [
        "payload too large: 70000 bytes, the limit is 65536", LONG_REASON]
    assert report.refusals.rows[0].source == TREE.detections
    assert report.refusals.rows[0].received_at == (REAL_T0 + timedelta(seconds=10)).astimezone(JST)
    assert (report.refusals.expected, report.refusals.passed) == (0, False)
    assert (report.passed, report.failures) == (False, ("refusals: 2 refusals, 0 expected",))
    text = render_markdown(report)
    assert text.startswith("# Drill report: Record test drill\n\n**FAILED**")
    assert "## Refused inputs and withheld messages\n\n2 refusals, 0 expected: FAIL." in text
    assert "- refusals: 2 refusals, 0 expected" in text
    assert "payload too large: 70000 bytes, the limit is 65536" in text
    assert "Topic: detections" in text or "| detections |" in text
    assert all(len(line) <= MAX_LINE for line in text.splitlines())
    page = await build_html(store, report, "en")
    assert "<table id='refusals'>" in page
    assert "2 refusal(s), 0 expected — FAIL" in page
    assert "<li class='fail'>refusals: 2 refusals, 0 expected</li>" in page


async def test_expected_refusals_pass(store: Store) -> None:
    """As many refusal notes as `expect.refused` says: the drill passes and says so."""
    await record_drill(store, expect={**EXPECT_01, "refused": 1})
    await send(store, "A1", "shelter", "01", sent="10:03:00")
    await send(store, "A2", "passed", "01", sent="10:04:30")
    await refuse(store, "withheld: the passed message would come after the fact", after_s=30,
                 source=TREE.alerts("exercise", "01"))
    report = await build_report(store)
    assert (report.refusals.passed, report.passed) == (True, True)
    assert "1 refusal, 1 expected (as expected)." in render_markdown(report)


async def test_expected_refusal_that_never_came_fails(store: Store) -> None:
    """A refusal the scenario expects but the drill did not produce fails the drill."""
    await record_drill(store, expect={**EXPECT_01, "refused": 1})
    await send(store, "A1", "shelter", "01", sent="10:03:00")
    await send(store, "A2", "passed", "01", sent="10:04:30")
    report = await build_report(store)
    assert (report.passed, report.failures) == (False, ("refusals: 0 refusals, 1 expected",))
    assert "0 refusals, 1 expected: FAIL." in render_markdown(report)


async def test_each_drill_counts_only_its_own_refusals(store: Store) -> None:
    """Refusal notes belong to the drill whose window (its start to the next drill's start)
    they were received in."""
    later = REAL_T0 + timedelta(hours=1)
    await record_drill(store, drill_id="drill-1")
    await record_drill(store, drill_id="drill-2", started_at=later,
                       expect={**EXPECT_01, "refused": 2})
    await refuse(store, "before any drill", after_s=-5)
    await refuse(store, "first drill", after_s=30)
    await refuse(store, "second drill, 1", after_s=30, base=later)
    await refuse(store, "second drill, 2", after_s=40, base=later)
    first = await build_report(store, "drill-1")
    second = await build_report(store, "drill-2")
    assert [r.reason for r in first.refusals.rows] == ["first drill"]
    assert [r.reason for r in second.refusals.rows] == ["second drill, 1", "second drill, 2"]
    assert (first.refusals.passed, second.refusals.passed) == (False, True)


async def test_refusals_without_a_drill_row_are_listed_not_judged(store: Store) -> None:
    """A record from `alertsim serve` (no drill row) lists its refusal notes, unjudged."""
    await refuse(store, "not JSON", after_s=0, source="alertsim/v1/detections")
    report = await build_report(store)
    assert [r.reason for r in report.refusals.rows] == ["not JSON"]
    assert (report.refusals.expected, report.refusals.passed, report.passed) == (
        None, None, None)
    text = render_markdown(report)
    assert "## Refused inputs and withheld messages\n\n1 refusal." in text


async def test_no_refusal_reads_as_none_expected(store: Store) -> None:
    """A clean drill says it had no refusal note, as expected."""
    await record_drill(store)
    await send(store, "A1", "shelter", "01", sent="10:03:00")
    await send(store, "A2", "passed", "01", sent="10:04:30")
    report = await build_report(store)
    assert report.refusals.rows == ()
    assert report.passed is True
    assert "0 refusals, 0 expected (as expected)." in render_markdown(report)


async def test_a_record_written_before_the_authoring_rules_still_reports(store: Store) -> None:
    """A drill recorded before the policy of the day and national_info existed (a 2017
    launch under `prefecture`, a national message expected without opting in) still
    reports: its scenario is read back as recorded, not authored again."""
    played = scenario({"prefectures": {"01": ["shelter"]}}, None)
    data = json.loads(played.model_dump_json())
    data.update({"date": "2017-08-29", "policy": "prefecture"})
    data["expect"]["national"] = True
    data["timeline"][0]["detection"]["observed_at"] = sim("09:40:00")  # stale today
    settings = {"scenario": data, "scenario_path": "scenarios/old.yaml",
                "receivers": {"rx-01": ["01"]}, "national_receivers": False, "speed": 60.0,
                "broker": "mqtt://127.0.0.1:1883", "status": "exercise", "policy": "prefecture"}
    await store.drills.record_drill(drill_id="old-1", scenario="scenarios/old.yaml",
                             started_at=REAL_T0, settings_json=json.dumps(settings))
    await send(store, "A1", "shelter", "01", sent="10:03:00")
    report = await build_report(store)
    assert (report.drill_id, report.policy) == ("old-1", "prefecture")
    assert report.failures == ("national: expected a national alert, none was sent",)
