"""The audit log (`store.views.audit()`): every operator action the service took in, applied
or refused, with who sent it, when, what and the service's answer (a real SQLite file, the
service with no broker)."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from alertsim.adapters.sqlite.migrations import MIGRATIONS
from alertsim.adapters.sqlite.rows import AuditRow
from alertsim.adapters.sqlite.store import Store
from alertsim.domain.operator import OperatorAction, operator_name
from alertsim.domain.prefectures import Atlas
from alertsim.service.clock import ScaledClock
from alertsim.service.config import ServiceConfig
from alertsim.service.service import Service
from alertsim.testing import DEFAULT_LAUNCH_TIME, make_detection

OPERATOR_TOPIC = "alertsim/v1/operator"
TSUGARU = ((40.6, 126.4), (34.33, 178.57))


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    """A fresh SQLite record."""
    async with await Store.open(tmp_path / "alertsim.db") as s:
        yield s


def service_on(atlas: Atlas, store: Store) -> Service:
    clock = ScaledClock(start=DEFAULT_LAUNCH_TIME + timedelta(minutes=2), speed=1.0)
    return Service(atlas=atlas, store=store.record, config=ServiceConfig(), clock=clock)


def action(verb: str, event_id: str = "ev-1", by: str | None = "operator") -> bytes:
    body = {"action": verb, "event_id": event_id, **({"by": by} if by else {})}
    return json.dumps(body).encode()


async def sheltering(atlas: Atlas, store: Store) -> Service:
    service = service_on(atlas, store)
    detection = make_detection(*TSUGARU, 30, 100, event_id="ev-1")
    assert await service.accept_detection(detection.model_dump_json().encode())
    return service


async def test_applied_action_is_audited_with_who_and_answer(atlas: Atlas,
                                                             store: Store) -> None:
    """A cancel sent `by` an operator is one audit row: that user, cancel, applied."""
    service = await sheltering(atlas, store)
    before = datetime.now().astimezone()
    assert await service.accept_operator(action("cancel"))
    [row] = await store.views.audit()
    assert isinstance(row, AuditRow)
    assert (row.by, row.action, row.event_id, row.answer, row.source) == (
        "operator", "cancel", "ev-1", "applied", OPERATOR_TOPIC)
    assert row.received_at >= before - timedelta(seconds=1)
    assert row.received_at.utcoffset() is not None


async def test_refused_action_is_audited_with_the_reason(atlas: Atlas, store: Store) -> None:
    """A close of a closed event and a cancel of an unknown one keep the service's reason
    as their answer; nothing is left pending."""
    service = await sheltering(atlas, store)
    assert await service.accept_operator(action("close"))
    assert not await service.accept_operator(action("close"))
    assert not await service.accept_operator(action("cancel", "nope", by=None))
    rows = await store.views.audit()
    assert [(r.by, r.action, r.event_id, r.answer) for r in rows] == [
        ("operator", "close", "ev-1", "applied"),
        ("operator", "close", "ev-1", "event_id: event 'ev-1' is already closed"),
        (None, "cancel", "nope", "event_id: no event 'nope' is known")]
    assert await store.record.pending_inputs() == []
    assert len(await store.views.rejected()) == 2  # still refused inputs, as before


async def test_malformed_action_is_a_refused_input_not_an_audit_row(atlas: Atlas,
                                                                    store: Store) -> None:
    """A payload that is no operator action (unknown verb, bad `by`) is only refused."""
    service = await sheltering(atlas, store)
    assert not await service.accept_operator(action("explode"))
    assert not await service.accept_operator(action("cancel", by="has space"))
    assert await store.views.audit() == ()
    assert len(await store.views.rejected()) == 2


async def test_recorded_action_has_no_answer_until_acted_on(store: Store) -> None:
    """An action recorded but not yet acted on (a crash in between) shows no answer."""
    await store.record.record_operator_action(
        raw=action("cancel"), event_id="ev-1", action="cancel", source=OPERATOR_TOPIC,
        received_at=DEFAULT_LAUNCH_TIME, by="operator")
    [row] = await store.views.audit()
    assert (row.by, row.answer, row.received_at) == ("operator", None, DEFAULT_LAUNCH_TIME)


async def test_migration_marks_earlier_processed_actions_applied(tmp_path: Path) -> None:
    """Actions recorded before the audit columns existed read back as applied, by nobody."""
    path = tmp_path / "old.db"
    async with await Store.open(path, migrations=MIGRATIONS[:4]):
        pass
    with sqlite3.connect(path) as conn:
        conn.execute("INSERT INTO operator_actions (event_id, action, source, received_at, raw,"
                     " processed_at) VALUES ('ev-1', 'close', 'op', ?, x'7b7d', ?)",
                     (DEFAULT_LAUNCH_TIME.isoformat(), DEFAULT_LAUNCH_TIME.isoformat()))
    conn.close()
    async with await Store.open(path) as store:
        [row] = await store.views.audit()
    assert (row.by, row.action, row.answer) == (None, "close", "applied")


@pytest.mark.parametrize(("user", "expected"), [
    ("operator", "operator"), ("ops.team@city-1", "ops.team@city-1"), (None, None),
    ("has space", None), ("x" * 65, None), ("", None)])
def test_operator_name_fits_the_payload(user: str | None, expected: str | None) -> None:
    """A broker user name becomes `by` only when the payload's contract allows it."""
    assert operator_name(user) == expected
    if expected is not None:
        assert OperatorAction(action="close", event_id="e", by=expected).by == expected
