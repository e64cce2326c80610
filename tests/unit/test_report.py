"""The drill report, rebuilt from a real SQLite file written through the Store API."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from alertsim.adapters.sqlite.store import Store
from alertsim.cli import main
from alertsim.domain import texts, topics
from alertsim.domain.messages import build_alert
from alertsim.domain.model import JST
from alertsim.domain.vocabulary import MsgType, Stage
from alertsim.drills.report import (
    DrillReport,
    DrillSettings,
    build_report,
    latency_of,
    render_markdown,
    write_report,
)
from alertsim.drills.scenario import Scenario
from alertsim.errors import InputError
from alertsim.service.records import OutboxMessage

REAL_T0 = datetime(2025, 6, 1, 1, 0, 0, tzinfo=UTC)  # the drill's real start
SIM_T0 = datetime(2025, 1, 1, 10, 0, 0, tzinfo=JST)  # the scenario clock's origin
EVENT = "synthetic-false-alarm"
MSG_TYPES: dict[Stage, MsgType] = {"shelter": "Alert", "passed": "Update", "cancel": "Cancel",
                                   "national": "Alert"}


def stage_texts(stage: Stage, when: datetime) -> texts.Bilingual:
    """The standard texts of a stage, filled with fixed places."""
    if stage == "shelter":
        return texts.shelter()
    if stage == "passed":
        return texts.passed(when, when, ["北海道"], ["Hokkaido"], "太平洋", "the Pacific")
    if stage == "cancel":
        return texts.cancel()
    return texts.national(when, "日本海", "the Sea of Japan", False)


def scenario_json(expect: dict[str, Any]) -> dict[str, Any]:
    """A minimal valid scenario (one detection) with the given expectations, as JSON data."""
    return {
        "title": "Synthetic test drill", "kind": "synthetic", "date": "2025-01-01",
        "sources": ["synthetic"], "notes": "for the report tests", "policy": "prefecture",
        "status": "exercise", "start": SIM_T0.isoformat(),
        "timeline": [{"at": 120, "detection": {
            "event_id": EVENT, "sequence": 1, "observed_at": "2025-01-01T10:02:00+09:00",
            "object": "ballistic_missile",
            "launch": {"lat": 40.858, "lon": 129.686, "time": SIM_T0.isoformat()},
            "predicted": {"impact": {"lat": 49.47, "lon": 159.34},
                          "impact_time": "2025-01-01T10:13:00+09:00"},
            "uncertainty": {"cross_track_km": 25, "along_track_km": 100}}}],
        "expect": expect,
    }


async def record_drill(store: Store, *, expect: dict[str, Any],
                       receivers: dict[str, list[str]], national_receivers: bool = False,
                       drill_id: str = "drill-1", started_at: datetime = REAL_T0) -> None:
    """Write a drill row whose settings hold the scenario and receivers, as a drill would."""
    settings = {"scenario": scenario_json(expect), "scenario_path": "scenarios/test.yaml",
                "receivers": receivers, "national_receivers": national_receivers,
                "speed": 60.0, "broker": "mqtt://127.0.0.1:1883", "status": "exercise",
                "policy": "prefecture"}
    await store.drills.record_drill(drill_id=drill_id, scenario="scenarios/test.yaml",
                             started_at=started_at, settings_json=json.dumps(settings))


async def send(store: Store, identifier: str, stage: Stage, code: str | None, *,
               at_s: float, event_id: str = EVENT, sequence: int = 1,
               published: bool = True, base: datetime = REAL_T0) -> datetime:
    """Enqueue a real Alert payload `at_s` seconds into the drill; returns its created_at."""
    sent = SIM_T0 + timedelta(seconds=120 + at_s)
    alert = build_alert(identifier=identifier, sender="alertsim@example.invalid",
                        status="Exercise", sent=sent, msg_type=MSG_TYPES[stage], stage=stage,
                        texts=stage_texts(stage, sent), event_id=event_id, sequence=sequence,
                        object_kind="ballistic_missile", code=code,
                        name_ja="北海道" if code else "", name_en="Hokkaido" if code else "")
    created = base + timedelta(seconds=at_s)
    await store.record.enqueue([OutboxMessage(
        message_id=identifier, event_id=event_id, kind="alert", prefecture=code, stage=stage,
        topic=topics.alerts("exercise", code), payload=alert.model_dump_json().encode(),
        msg_type=alert.msgType, qos=1, retain=False, sim_time=alert.sent,
        expires_at=alert.info[0].expires, created_at=created)])
    if published:
        await store.record.mark_published(identifier, created + timedelta(milliseconds=2))
    return created


async def ack(store: Store, client_id: str, identifier: str, created: datetime,
              after_ms: int) -> None:
    """Record a receipt `after_ms` milliseconds after the alert's created_at."""
    received = created + timedelta(milliseconds=after_ms)
    await store.record.record_receipt(client_id=client_id, message_id=identifier,
                               received_at=received, recorded_at=received)


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    """An empty, migrated store in a real file."""
    async with await Store.open(tmp_path / "drill.db") as opened:
        yield opened


EXPECT_01 = {"prefectures": {"01": ["shelter", "passed", "cancel"]}, "silent": "others",
             "national": False}


async def hokkaido_drill(store: Store, *, skip: tuple[str, ...] = ()) -> dict[str, datetime]:
    """Hokkaido gets shelter, passed, cancel; rx-01 acknowledges after 10, 20, 30 ms,
    except the stages in `skip`; rx-x01 listens to Tokyo, which gets nothing."""
    await record_drill(store, expect=EXPECT_01,
                       receivers={"rx-01": ["01"], "rx-x01": ["13"]})
    created: dict[str, datetime] = {}
    stages: tuple[Stage, ...] = ("shelter", "passed", "cancel")
    for n, stage in enumerate(stages, start=1):
        created[stage] = await send(store, f"A{n}", stage, "01", at_s=60.0 * n)
    for n, stage in enumerate(stages, start=1):
        if stage not in skip:
            await ack(store, "rx-01", f"A{n}", created[stage], 10 * n)
    return created


@pytest.mark.parametrize(("values", "p50", "p99", "maximum"), [
    ([10.0, 20.0, 30.0], 20.0, 30.0, 30.0),
    ([30.0, 10.0, 20.0], 20.0, 30.0, 30.0),
    ([5.0], 5.0, 5.0, 5.0),
    ([10.0, 20.0], 10.0, 20.0, 20.0),
    ([float(v) for v in range(1, 101)], 50.0, 99.0, 100.0),
    ([float(v) for v in range(1, 201)], 100.0, 198.0, 200.0),
])
def test_latency_percentiles_are_nearest_rank(values: list[float], p50: float, p99: float,
                                              maximum: float) -> None:
    """p50 and p99 are the ceil(p/100*n)-th smallest measured value; max is the largest."""
    latency = latency_of(values)
    assert (latency.count, latency.p50_ms, latency.p99_ms, latency.max_ms) == (
        len(values), p50, p99, maximum)


def test_latency_of_nothing_has_no_statistics() -> None:
    """No receipts: count 0 and no percentiles rather than zeros."""
    assert latency_of([]).model_dump() == {"count": 0, "p50_ms": None, "p99_ms": None,
                                           "max_ms": None}


async def test_passing_drill(store: Store) -> None:
    """Every expected stage acknowledged in order passes, with latencies from the timestamps."""
    await hokkaido_drill(store)
    report = await build_report(store)
    assert report.passed is True
    assert report.failures == ()
    assert all(check.passed for check in report.expectations.checks)
    assert [c.subject for c in report.expectations.checks] == ["01", "silent", "national"]
    assert report.drill_id == "drill-1"
    assert report.scenario is not None
    assert report.scenario.title == "Synthetic test drill"
    assert report.scenario.path == "scenarios/test.yaml"
    assert (report.policy, report.status, report.speed) == ("prefecture", "exercise", 60.0)
    assert [(e.stage, e.msg_type, e.identifier, e.prefecture, e.published)
            for e in report.timeline] == [("shelter", "Alert", "A1", "01", True),
                                          ("passed", "Update", "A2", "01", True),
                                          ("cancel", "Cancel", "A3", "01", True)]
    assert report.timeline[0].topic == "alertsim/v1/exercise/alerts/01"
    assert report.timeline[0].sim_time == datetime(2025, 1, 1, 10, 3, tzinfo=JST)
    hokkaido, tokyo = report.per_prefecture
    assert hokkaido.place == "01"
    assert hokkaido.stages_sent == ("shelter", "passed", "cancel")
    (rx,) = hokkaido.receivers
    assert (rx.client_id, rx.subscribed, rx.stages) == ("rx-01", True,
                                                         ("shelter", "passed", "cancel"))
    assert hokkaido.latency.model_dump() == {"count": 3, "p50_ms": 20.0, "p99_ms": 30.0,
                                             "max_ms": 30.0}
    assert (hokkaido.missed, hokkaido.duplicates) == (0, 0)
    assert (tokyo.place, tokyo.sent, tokyo.stages_sent, tokyo.missed) == ("13", False, (), 0)
    assert tokyo.receivers[0].client_id == "rx-x01"
    assert report.national.sent is False
    assert report.latency == hokkaido.latency


async def test_missed_stage_fails_with_a_clear_line(store: Store) -> None:
    """A receiver that never acknowledged `passed` has missed=1 and fails its prefecture."""
    await hokkaido_drill(store, skip=("passed",))
    report = await build_report(store)
    assert report.passed is False
    (hokkaido, _) = report.per_prefecture
    assert hokkaido.missed == 1
    assert hokkaido.receivers[0].missed == ("A2",)
    assert hokkaido.latency.count == 2
    assert report.failures == ("01: rx-01 acknowledged [shelter, cancel], expected "
                               "[shelter, passed, cancel]; sent [shelter, passed, cancel]",)
    check = report.expectations.checks[0]
    assert (check.subject, check.passed, check.actual) == ("01", False, "rx-01: shelter, cancel")


async def test_silent_prefecture_that_got_an_alert_fails(store: Store) -> None:
    """Under `silent: others`, an alert to Aomori fails the silent check and says so."""
    await hokkaido_drill(store)
    await send(store, "B1", "shelter", "02", at_s=61.0)
    report = await build_report(store)
    assert report.passed is False
    assert report.failures == ("02: expected silent, sent [shelter]",)
    silent = next(c for c in report.expectations.checks if c.subject == "silent")
    assert (silent.passed, silent.actual) == (False, "02: shelter")
    assert [p.place for p in report.per_prefecture] == ["01", "02", "13"]


async def test_duplicates_are_counted_not_timed(store: Store) -> None:
    """A second receipt of the same alert is one duplicate; stages and latency ignore it."""
    created = await hokkaido_drill(store)
    await ack(store, "rx-01", "A1", created["shelter"], 5000)
    await ack(store, "rx-01", "A1", created["shelter"], 6000)
    report = await build_report(store)
    hokkaido = report.per_prefecture[0]
    assert (hokkaido.duplicates, hokkaido.receivers[0].duplicates) == (2, 2)
    assert hokkaido.receivers[0].stages == ("shelter", "passed", "cancel")
    assert hokkaido.latency.max_ms == 30.0
    assert report.passed is True


@pytest.mark.parametrize(("expected", "sent", "passed", "failures"), [
    (True, True, True, ()),
    (False, False, True, ()),
    (True, False, False, ("national: expected a national alert, none was sent",)),
    (False, True, False, ("national: expected no national alert, one was sent",)),
])
async def test_national_expectation(store: Store, expected: bool, sent: bool, passed: bool,
                                    failures: tuple[str, ...]) -> None:
    """The national check passes exactly when a national alert was sent iff one is expected."""
    await record_drill(store, expect={"prefectures": {}, "national": expected},
                       receivers={"rx-01": ["01"]}, national_receivers=True)
    if sent:
        created = await send(store, "N1", "national", None, at_s=30.0)
        await ack(store, "rx-01", "N1", created, 15)
    report = await build_report(store)
    assert report.passed is passed
    assert report.failures == failures
    assert report.national.sent is sent
    assert report.national.deliveries == (1 if sent else 0)
    assert report.national.missed == 0
    assert report.receivers == {"rx-01": ("01", "national")}


async def test_expected_prefecture_without_receiver_is_judged_on_stages_sent(
        store: Store) -> None:
    """With nobody listening to Hokkaido, the stages sent there are what is judged."""
    await record_drill(store, expect=EXPECT_01, receivers={})
    await send(store, "A1", "shelter", "01", at_s=60.0)
    await send(store, "A3", "cancel", "01", at_s=180.0, published=False)
    report = await build_report(store)
    assert report.passed is False
    assert report.failures == ("01: sent [shelter, cancel], expected [shelter, passed, cancel] "
                               "(no receiver)",)
    assert report.expectations.checks[0].basis == "stages sent (no receiver)"
    assert [e.published for e in report.timeline] == [True, False]


async def test_markdown_shows_verdict_and_tables(store: Store, tmp_path: Path) -> None:
    """Markdown has the PASSED/FAILED line, expectations, per-prefecture and timeline tables."""
    await hokkaido_drill(store, skip=("passed",))
    failed = render_markdown(await build_report(store))
    assert failed.startswith("# Drill report: Synthetic test drill\n")
    assert "**FAILED**" in failed
    assert "| 01 | shelter, passed, cancel | rx-01: shelter, cancel | 10 | 30 | 30 | 1 | 0 |" in failed
    assert "| 01 | shelter, passed, cancel | rx-01: shelter, cancel | acknowledged by rx-01 | FAIL |" in failed
    assert "- 01: rx-01 acknowledged [shelter, cancel]" in failed
    assert "| Prefecture | Stages sent | Acknowledged | p50 ms | p99 ms | max ms | Missed | Duplicates |" in failed
    assert failed.index("## Expectations") < failed.index("## Per prefecture") < failed.index("## Timeline")
    assert "| 2 | A2 | exercise/alerts/01 |" in failed

    async with await Store.open(tmp_path / "passing.db") as passing_store:
        await hokkaido_drill(passing_store)
        report = await build_report(passing_store)
    passed = render_markdown(report)
    assert "**PASSED**" in passed
    assert "**FAILED**" not in passed
    json_path, md_path = await write_report(report, tmp_path / "out", "drill-1")
    assert (json_path.name, md_path.name) == ("drill-1.json", "drill-1.md")
    assert DrillReport.model_validate_json(json_path.read_text(encoding="utf-8")) == report
    assert md_path.read_text(encoding="utf-8") == passed


async def test_stages_acknowledged_out_of_order_fail(store: Store) -> None:
    """Stages are compared in receipt order: a late `passed` after `cancel` is a failure."""
    created = await hokkaido_drill(store, skip=("passed",))
    await ack(store, "rx-01", "A2", created["cancel"], 20)
    report = await build_report(store)
    assert report.passed is False
    assert report.per_prefecture[0].missed == 0
    assert report.failures == ("01: rx-01 acknowledged [shelter, cancel, passed], expected "
                               "[shelter, passed, cancel]; sent [shelter, passed, cancel]",)


async def test_event_filter_restricts_timeline_not_expectations(store: Store) -> None:
    """With event_id, timeline and tables show one event; expectations still judge the drill."""
    await record_drill(store, expect={"prefectures": {"01": ["shelter"], "47": ["shelter"]}},
                       receivers={"rx-01": ["01"], "rx-47": ["47"]})
    first = await send(store, "A1", "shelter", "01", at_s=60.0, event_id="ev-a")
    second = await send(store, "C1", "shelter", "47", at_s=61.0, event_id="ev-c")
    await ack(store, "rx-01", "A1", first, 10)
    await ack(store, "rx-47", "C1", second, 40)
    report = await build_report(store, event_id="ev-a")
    assert report.event_id == "ev-a"
    assert [e.identifier for e in report.timeline] == ["A1"]
    assert [(p.place, p.stages_sent) for p in report.per_prefecture] == [
        ("01", ("shelter",)), ("47", ())]
    assert report.latency.max_ms == 10.0
    assert report.passed is True
    assert len(report.expectations.checks) == 4


async def test_store_without_drill_row_still_reports(store: Store) -> None:
    """A `serve` database gets a report with inferred receivers and no judgement."""
    created = await send(store, "A1", "shelter", "01", at_s=0.0)
    await ack(store, "rx-01", "A1", created, 12)
    await store.record.record_receipt(client_id="rx-01", message_id="unknown", received_at=created,
                               recorded_at=created)
    report = await build_report(store)
    assert (report.drill_id, report.scenario, report.passed) == (None, None, None)
    assert report.expectations.judged is False
    assert report.expectations.note == "no scenario recorded"
    assert report.status == "exercise"
    assert report.receivers == {"rx-01": ("01",)}
    assert report.receivers_source == "inferred from receipts"
    assert report.per_prefecture[0].latency.max_ms == 12.0
    assert report.unmatched_receipts == 1
    text = render_markdown(report)
    assert "**NOT JUDGED**" in text
    assert "Not judged: no scenario recorded." in text


async def test_each_drill_sees_only_its_own_alerts(store: Store) -> None:
    """The latest drill is the default; alerts belong to the drill whose window they fall in."""
    await record_drill(store, expect=EXPECT_01, receivers={"rx-01": ["01"]})
    await send(store, "A1", "shelter", "01", at_s=60.0)
    later = REAL_T0 + timedelta(hours=1)
    await record_drill(store, expect={"prefectures": {"47": ["shelter"]}},
                       receivers={"rx-47": ["47"]}, drill_id="drill-2", started_at=later)
    created = await send(store, "C1", "shelter", "47", at_s=60.0, base=later)
    await ack(store, "rx-47", "C1", created, 10)
    latest = await build_report(store)
    assert (latest.drill_id, [e.identifier for e in latest.timeline]) == ("drill-2", ["C1"])
    assert latest.passed is True
    first = await build_report(store, drill_id="drill-1")
    assert [e.identifier for e in first.timeline] == ["A1"]
    with pytest.raises(InputError, match="no drill 'drill-9'"):
        await build_report(store, drill_id="drill-9")


async def test_drill_settings_round_trip_through_the_store(tmp_path: Path) -> None:
    """DrillSettings written as a drill row's settings_json reads back equal and feeds the report."""
    settings = DrillSettings(
        scenario=Scenario.model_validate(scenario_json(EXPECT_01)),
        scenario_path="scenarios/test.yaml", receivers={"rx-01": ("01",), "rx-x01": ("13",)},
        national_receivers=True, speed=600.0, broker="mqtt://127.0.0.1:1883", protocol="3.1.1",
        status="exercise", policy="prefecture+adjacent")
    async with await Store.open(tmp_path / "settings.db") as store:
        await store.drills.record_drill(drill_id="drill-1", scenario="scenarios/test.yaml",
                                 started_at=REAL_T0, settings_json=settings.model_dump_json())
        (row,) = await store.drills.drills()
        report = await build_report(store)
    assert DrillSettings.model_validate_json(row.settings_json) == settings
    assert json.loads(row.settings_json)["protocol"] == "3.1.1"
    assert report.receivers == {"rx-01": ("01", "national"), "rx-x01": ("13", "national")}
    assert report.receivers_source == "drill settings"
    assert (report.speed, report.broker, report.status, report.policy) == (
        600.0, "mqtt://127.0.0.1:1883", "exercise", "prefecture+adjacent")
    assert report.scenario is not None
    assert (report.scenario.title, report.scenario.path) == ("Synthetic test drill",
                                                             "scenarios/test.yaml")


VALID_SETTINGS = {"scenario": scenario_json(EXPECT_01), "scenario_path": "scenarios/test.yaml",
                  "receivers": {"rx-01": ["01"]}, "national_receivers": False, "speed": 60.0,
                  "broker": "mqtt://127.0.0.1:1883", "status": "exercise", "policy": "prefecture"}
OLD_SETTINGS = {**{k: v for k, v in VALID_SETTINGS.items() if k != "speed"}, "speed_factor": 60.0}


@pytest.mark.parametrize(("settings", "problem"), [
    (OLD_SETTINGS, "settings.speed: Field required"),
    (OLD_SETTINGS, "settings.speed_factor: Extra inputs are not permitted (got 60.0)"),
    ({**VALID_SETTINGS, "receivers": {"rx-01": ["1"]}}, "settings.receivers.rx-01.0: String should match pattern"),
    ({**VALID_SETTINGS, "scenario": {**scenario_json(EXPECT_01), "title": ""}}, "settings.scenario.title: String should have at least 1 character"),
    ({}, "settings.scenario: Field required"),
    ([], "settings: Input should be an object"),
])
async def test_unreadable_drill_settings_are_a_clear_input_error(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], settings: object,
        problem: str) -> None:
    """Settings JSON that is not a DrillSettings gives an InputError naming the drill and field."""
    db = tmp_path / "old.db"
    async with await Store.open(db) as store:
        await store.drills.record_drill(drill_id="drill-1", scenario="scenarios/test.yaml",
                                 started_at=REAL_T0, settings_json=json.dumps(settings))
        with pytest.raises(InputError) as caught:
            await build_report(store)
    assert caught.value.source == str(db)
    assert caught.value.problems[0] == ("drill 'drill-1': its recorded settings are not valid "
                                        "drill settings (recorded by another version of alertsim?)")
    assert any(line.startswith(problem) for line in caught.value.problems[1:]), caught.value.problems
    # In a thread: the CLI runs its own event loop.
    assert await asyncio.to_thread(main, ["report", str(db)]) == 2
    err = capsys.readouterr().err
    assert f"alertsim report: invalid input in {db}:" in err
    assert problem in err
    assert "Traceback" not in err
