"""Fault injection: a drill with every fault still meets its expectations at the reference
receivers, and its report lists each fault applied; the receiver's bookkeeping
(`domain.reception`) on the awkward cases, without a broker."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from alertsim.adapters.sqlite.store import Store
from alertsim.brokers.brokers import MosquittoBroker
from alertsim.domain import texts
from alertsim.domain.messages import Alert, PlaceEvent, PrefectureState, build_alert
from alertsim.domain.reception import Reception
from alertsim.domain.vocabulary import Stage
from alertsim.drills.faults import FAULT_KINDS
from alertsim.drills.report import build_report, render_markdown
from alertsim.drills.runner import DrillOptions, run_drill

ROOT = Path(__file__).resolve().parents[2]
SCENARIO = ROOT / "scenarios" / "2022-10-04-hwasong-12.yaml"  # 01 and 02: shelter, passed
T0 = datetime(2023, 11, 21, 13, 46, 5, tzinfo=UTC)


@pytest.mark.mosquitto
async def test_drill_with_every_fault_meets_expectations(tmp_path: Path,
                                                         mosquitto: MosquittoBroker) -> None:
    """Duplicates, delays, an Update before its Alert, dropped connections and late joiners:
    every expectation holds at the reference receivers (late joiners included, which must
    read the first stage from the retained state), and the report lists each fault."""
    outcome = await run_drill(DrillOptions(
        scenario_path=SCENARIO, speed=300.0, broker_url=mosquitto.url,
        reports_dir=tmp_path, faults=FAULT_KINDS, fault_seed=7, settle_timeout_s=40))
    report = outcome.report
    markdown = render_markdown(report)
    assert outcome.passed, markdown
    kinds = Counter(f.kind for f in report.faults)
    assert set(kinds) == set(FAULT_KINDS), kinds
    late = sorted(cid for cid in report.receivers if "-late-" in cid)
    assert [cid.rsplit("-", 1)[1] for cid in late] == ["01", "02"]
    for place in report.per_prefecture:
        if place.place in ("01", "02"):
            for receiver in place.receivers:
                assert receiver.stages == ("shelter", "passed"), receiver
    reordered = [f for f in report.faults if f.kind == "reorder"]
    assert any("relayed after" in f.detail for f in reordered), reordered
    assert "## Faults" in markdown
    assert all(f.target in markdown for f in report.faults)
    assert outcome.rejected == ()  # the relay passes every signature on intact
    async with await Store.open(outcome.db_path) as store:  # `alertsim report DB` too
        rebuilt = await build_report(store, report.drill_id)
    assert rebuilt.faults == report.faults


def _alert(stage: Stage, msg_type: str, refs: tuple[Alert, ...] = (), *,
           n: int = 1, event: str = "ev") -> Alert:
    return build_alert(identifier=f"id-{event}-{n}-{stage}", sender="alertsim.test",
                       status="Exercise", sent=T0, msg_type=msg_type,  # type: ignore[arg-type]
                       stage=stage, texts=texts.shelter(), event_id=event, sequence=n,
                       object_kind="ballistic_missile", code="47", name_ja="沖縄県",
                       name_en="Okinawa", references=tuple(a.reference() for a in refs))


def test_update_before_its_alert_is_held_then_applied() -> None:
    """Update first: held (nothing to acknowledge yet); its Alert: both, in order."""
    book = Reception()
    shelter = _alert("shelter", "Alert")
    passed = _alert("passed", "Update", (shelter,), n=2)
    assert book.on_alert(passed, T0) == []
    handled = book.on_alert(shelter, T0 + timedelta(seconds=1))
    assert [(h.identifier, h.outcome) for h in handled] == [
        (shelter.identifier, "shown"), (passed.identifier, "shown")]
    assert handled[-1].belief is not None
    assert handled[-1].belief.stage == "passed"
    assert handled[1].received_at == T0  # the Update keeps its own arrival time


def test_duplicates_ignored_and_late_copy_keeps_belief() -> None:
    book = Reception()
    shelter = _alert("shelter", "Alert")
    passed = _alert("passed", "Update", (shelter,), n=2)
    book.on_alert(shelter, T0)
    book.on_alert(passed, T0)
    (copy,) = book.on_alert(shelter, T0)
    assert (copy.outcome, copy.duplicate) == ("ignored", True)
    assert copy.belief is not None
    assert copy.belief.stage == "passed"


def test_overdue_update_is_shown_and_late_alert_ignored() -> None:
    """An Update whose Alert never came is shown after the hold; the Alert, if it comes
    later after all, is superseded: ignored, and the belief stays."""
    book = Reception(hold_s=5)
    shelter = _alert("shelter", "Alert")
    cancel = _alert("cancel", "Cancel", (shelter,), n=2)
    assert book.on_alert(cancel, T0) == []
    assert book.overdue(T0 + timedelta(seconds=4)) == []
    (shown,) = book.overdue(T0 + timedelta(seconds=5))
    assert shown.identifier == cancel.identifier
    (late,) = book.on_alert(shelter, T0 + timedelta(seconds=6))
    assert (late.outcome, late.duplicate) == ("ignored", False)
    assert late.belief is not None
    assert late.belief.stage == "cancel"


def test_retained_state_teaches_a_late_joiner() -> None:
    """A retained state naming an unseen alert: shown via the state, and an Update held for
    it is released; a live (not retained) state teaches nothing."""
    book = Reception()
    shelter = _alert("shelter", "Alert")
    passed = _alert("passed", "Update", (shelter,), n=2)
    state = PrefectureState(code="47", status="Exercise", updated=T0, events=(PlaceEvent(
        event_id="ev", stage="shelter", identifier=shelter.identifier, sheltering=True),))
    assert book.on_alert(passed, T0) == []
    assert book.on_state("47", state, retained=False, received_at=T0) == []
    learned = book.on_state("47", state, retained=True, received_at=T0)
    assert [(h.identifier, h.via, h.outcome) for h in learned] == [
        (shelter.identifier, "state", "shown"), (passed.identifier, "alert", "shown")]
