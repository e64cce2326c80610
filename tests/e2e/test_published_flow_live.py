"""The published flow live: each case of tests/unit/test_published_flow.py as a drill on Mosquitto.

Every case becomes a scenario file (its detections at their observation times, operator
actions, a close at the end) with the stages J-Alert's flow gives each prefecture. The
drill must meet them at its receivers, send exactly what the dry run sends at the same
scenario times, record the same number of refusals (each told on the errors topic), and
send `passed` only after the last window and the confirmation.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from alertsim.adapters.sqlite.store import Store
from alertsim.brokers.brokers import MosquittoBroker
from alertsim.domain.detection import Detection
from alertsim.domain.lifecycle import DEFAULT_CONFIRM_AFTER
from alertsim.domain.vocabulary import Policy
from alertsim.drills.dry_run import dry_run
from alertsim.drills.runner import DrillOptions, run_drill
from alertsim.testing import DEFAULT_LAUNCH_TIME as T0
from tests.helpers import assert_same_sends, live_and_dry
from tests.unit.test_published_flow import (
    AKITA_LAND,
    AKITA_SEA,
    SHORT_OF_AKITA,
    SINPO,
    SOHAE_SOUTH,
    TSUGARU,
    detection,
    last_window,
)

pytestmark = pytest.mark.mosquitto

SPEED = 600.0
# Scheduling slack of the live drill, in scenario time: at x600, 100 ms of real time (the
# worst seen over 688 comparisons in this suite's runs was 12 s, 20 ms real).
TOLERANCE = timedelta(seconds=60)


@dataclass
class Case:
    name: str
    detections: list[Detection]
    expect: dict[str, list[str]]
    policy: Policy = "prefecture"
    actions: list[tuple[str, timedelta]] = field(default_factory=list)  # after launch
    refused: int = 0
    close_after: timedelta = timedelta(minutes=1)  # after the last entry

    def scenario(self) -> dict[str, Any]:
        entries: list[tuple[timedelta, dict[str, Any]]] = [
            (d.observed_at - T0, {"detection": d.model_dump(mode="json", exclude_none=True)})
            for d in self.detections]
        entries += [(at, {"action": kind, "event_id": "test-event"})
                    for kind, at in self.actions]
        entries.sort(key=lambda e: e[0])
        end = entries[-1][0] + self.close_after
        entries.append((end, {"action": "close", "event_id": "test-event"}))
        return {
            "title": f"published flow: {self.name}", "kind": "synthetic",
            "date": T0.date().isoformat(), "sources": ["synthetic"], "policy": self.policy,
            "status": "exercise", "start": T0.isoformat(),
            "timeline": [{"at": at.total_seconds(), **body} for at, body in entries],
            "expect": {"prefectures": self.expect, "silent": "others",
                       "refused": self.refused},
        }


def cases() -> list[Case]:
    over = detection(*TSUGARU, 30, 100, flight=14)
    orbit_first = detection(*SOHAE_SOUTH, 50, 300, flight=22, minutes=3,
                            object_kind="space_launch_vehicle")
    return [
        Case("overflight", [over, detection(*TSUGARU, 30, 100, flight=14, seq=2, minutes=12)],
             {"01": ["shelter", "passed"], "02": ["shelter", "passed"]}),
        Case("unconfirmed-overflight", [over],
             {"01": ["shelter", "passed"], "02": ["shelter", "passed"]},
             close_after=timedelta(minutes=8) + DEFAULT_CONFIRM_AFTER),
        Case("fell-short-2018", [
            detection(SINPO, SHORT_OF_AKITA, 20, 100),
            detection(SINPO, SHORT_OF_AKITA, 20, 100, seq=2, minutes=11, outcome="impact")],
            {"05": ["shelter", "fell_sea"]}),
        Case("fell-short-2023", [
            detection(SINPO, SHORT_OF_AKITA, 20, 100),
            detection(SINPO, SHORT_OF_AKITA, 20, 100, seq=2, minutes=11, outcome="impact")],
            {c: ["shelter", "fell_sea"] for c in ("02", "03", "04", "05", "06")},
            policy="prefecture+adjacent"),
        Case("predicted-on-land-fell-on-land", [
            detection(SINPO, AKITA_LAND, 10, 20),
            detection(SINPO, AKITA_LAND, 10, 20, seq=2, minutes=11, outcome="impact")],
            {"05": ["shelter", "imminent", "fell_land"]}),
        Case("territorial-sea-then-eez", [
            detection(SINPO, AKITA_SEA, 10, 20),
            detection(SINPO, SHORT_OF_AKITA, 10, 20, seq=2, minutes=11, outcome="impact")],
            {"05": ["shelter", "imminent", "fell_sea"]}),
        Case("cancel-before-outcome", [over],
             {"01": ["shelter", "cancel"], "02": ["shelter", "cancel"]},
             actions=[("cancel", timedelta(minutes=3))]),
        Case("cancel-then-late-outcome", [
            over, detection(*TSUGARU, 30, 100, flight=14, seq=2, minutes=16, outcome="impact")],
            {"01": ["shelter", "cancel"], "02": ["shelter", "cancel"]},
            actions=[("cancel", timedelta(minutes=3))], refused=1),
        Case("first-detection-after-fall", [detection(*TSUGARU, 30, 100, flight=14,
                                                      minutes=15)], {}, refused=1),
        Case("widened-after-passage", [
            over, detection(*TSUGARU, 120, 100, flight=14, seq=2, minutes=6)],
            {"01": ["shelter", "passed"], "02": ["shelter", "passed"]}, refused=2),
        Case("orbit", [orbit_first, detection(
            *SOHAE_SOUTH, 50, 300, flight=22, minutes=31, seq=2,
            object_kind="space_launch_vehicle", outcome="orbit")],
            {"47": ["shelter", "passed"]}, policy="prefecture+adjacent"),
    ]


CASES = cases()


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
async def test_published_flow_live_on_mosquitto(case: Case, tmp_path: Path,
                                                mosquitto: MosquittoBroker,
                                                atlas: Any) -> None:
    """The drill meets the case's stages at every receiver, equals the dry run (stages,
    scenario times, refusals), and sends passed only after the last window and its
    confirmation."""
    path = tmp_path / f"{case.name}.yaml"
    path.write_text(yaml.safe_dump(case.scenario(), sort_keys=False), "utf-8")
    dry_out = io.StringIO()
    assert dry_run(path, out=dry_out), dry_out.getvalue()
    outcome = await run_drill(DrillOptions(
        scenario_path=path, speed=SPEED, broker_url=mosquitto.url, reports_dir=tmp_path,
        out=io.StringIO(), settle_timeout_s=10.0, quiet_s=0.5))
    assert outcome.passed, outcome.report.failures
    live, dry, live_refused, dry_refused = await live_and_dry(outcome.db_path, path)
    assert_same_sends(live, dry, TOLERANCE)
    assert live_refused == dry_refused == case.refused
    passed_at = [at for _, stage, at in live if stage == "passed"]
    if passed_at:
        last = max(last_window(atlas, d, case.policy) for d in case.detections[:1])
        confirmations = [d.observed_at for d in case.detections[1:] if d.observed_at >= last]
        confirmed = min(confirmations, default=last + DEFAULT_CONFIRM_AFTER)
        assert min(passed_at) >= max(last, _second(confirmed))
    async with await Store.open(outcome.db_path) as store:
        reasons = [r.reason for r in await store.views.rejected()]
        errors = await store.views.outbox(kind="error")
    assert len(reasons) == case.refused
    # each one told on the errors topic, with its reason, and published
    assert sorted(json.loads(e.payload)["reason"] for e in errors) == sorted(reasons)
    assert all(e.published_at is not None for e in errors)


def _second(moment: datetime) -> datetime:
    return moment.replace(microsecond=0)
