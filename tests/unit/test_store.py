"""The SQLite record, against real database files in tmp_path."""

from __future__ import annotations

import asyncio
import sqlite3
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from alertsim.adapters.sqlite.migrations import MIGRATIONS
from alertsim.adapters.sqlite.store import Store
from alertsim.errors import StoreError
from alertsim.service.records import (
    Change,
    DecisionRecord,
    EventRow,
    OutboxKind,
    OutboxMessage,
)

JST = timezone(timedelta(hours=9))
T0 = datetime(2025, 3, 1, 7, 0, 0, tzinfo=JST)


def message(message_id: str, *, event_id: str | None = "EV1", kind: OutboxKind = "alert",
            seconds: int = 0) -> OutboxMessage:
    """An alert-shaped outbox message."""
    return OutboxMessage(message_id=message_id, event_id=event_id, kind=kind, prefecture="47",
                         stage="shelter", msg_type="Alert", topic="alertsim/v1/exercise/alerts/47",
                         payload=f'{{"id": "{message_id}"}}'.encode(), qos=1, retain=False,
                         sim_time=T0 + timedelta(seconds=seconds), created_at=T0,
                         expires_at=T0 + timedelta(hours=1))


def pragma(path: Path, name: str) -> object:
    """Read a pragma through a separate, plain sqlite3 connection."""
    with sqlite3.connect(path) as conn:
        value = conn.execute(f"PRAGMA {name}").fetchone()[0]
    conn.close()
    return value


def table_names(path: Path) -> set[str]:
    """Names of the tables in the database file."""
    conn = sqlite3.connect(path)
    try:
        return {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    finally:
        conn.close()


async def test_migrates_empty_file_and_reopens_idempotently(tmp_path: Path) -> None:
    """An empty file gets every migration once; reopening changes nothing and keeps the data."""
    path = tmp_path / "a.db"
    async with await Store.open(path) as store:
        await store.record.enqueue([message("m1")])
    assert pragma(path, "user_version") == len(MIGRATIONS)
    assert {"detections", "rejected", "decisions", "outbox", "events", "receipts",
            "drills"} <= table_names(path)
    async with await Store.open(path) as store:
        assert [r.message_id for r in await store.views.outbox()] == ["m1"]
    assert pragma(path, "user_version") == len(MIGRATIONS)


async def test_older_database_gets_only_the_missing_migrations(tmp_path: Path) -> None:
    """Opening a version-N file with N+1 scripts applies just the last one."""
    path = tmp_path / "a.db"
    async with await Store.open(path) as store:
        await store.record.enqueue([message("m1")])
    async with await Store.open(path, migrations=(*MIGRATIONS, "CREATE TABLE extra (x)")):
        pass
    assert pragma(path, "user_version") == len(MIGRATIONS) + 1
    assert "extra" in table_names(path)


async def test_failed_migration_rolls_back_whole_script(tmp_path: Path) -> None:
    """A migration that fails half-way leaves neither its tables nor a bumped version."""
    path = tmp_path / "a.db"
    broken = (*MIGRATIONS, "CREATE TABLE half (x); THIS IS NOT SQL")
    with pytest.raises(StoreError, match="migration"):
        await Store.open(path, migrations=broken)
    assert pragma(path, "user_version") == len(MIGRATIONS)
    assert "half" not in table_names(path)


async def test_newer_schema_version_is_refused(tmp_path: Path) -> None:
    """A file written by a newer alertsim raises StoreError instead of being used."""
    path = tmp_path / "a.db"
    await (await Store.open(path)).close()
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version = {len(MIGRATIONS) + 1}")
    conn.close()
    with pytest.raises(StoreError, match="newer"):
        await Store.open(path)


async def test_wal_mode_is_on(tmp_path: Path) -> None:
    """The database file is in write-ahead-log mode."""
    path = tmp_path / "a.db"
    async with await Store.open(path):
        pass
    assert pragma(path, "journal_mode") == "wal"


async def test_corrupt_file_raises_store_error(tmp_path: Path) -> None:
    """Garbage in place of a database is a StoreError, not a raw sqlite3 error."""
    path = tmp_path / "a.db"
    path.write_bytes(b"\x00garbage, not an SQLite file\xff" * 200)
    with pytest.raises(StoreError) as info:
        await Store.open(path)
    assert isinstance(info.value.__cause__, sqlite3.DatabaseError)


async def test_unopenable_path_raises_store_error(tmp_path: Path) -> None:
    """A path in a missing directory is a StoreError."""
    with pytest.raises(StoreError):
        await Store.open(tmp_path / "missing" / "a.db")


async def test_closed_store_raises_store_error(tmp_path: Path) -> None:
    """Using a store after close is a StoreError, and closing twice is harmless."""
    store = await Store.open(tmp_path / "a.db")
    await store.close()
    await store.close()
    with pytest.raises(StoreError, match="closed"):
        await store.views.outbox()


async def test_enqueue_preserves_order_and_is_idempotent(tmp_path: Path) -> None:
    """Messages keep their batch order; a message_id seen before is skipped, not duplicated."""
    async with await Store.open(tmp_path / "a.db") as store:
        await store.record.enqueue([message("c"), message("a"), message("b")])
        await store.record.enqueue([message("a", seconds=99), message("d")])
        rows = await store.views.outbox()
    assert [r.message_id for r in rows] == ["c", "a", "b", "d"]
    assert [r.seq for r in rows] == sorted(r.seq for r in rows)
    assert rows[1].sim_time == T0  # the first copy of "a" won


async def test_outbox_row_round_trips_every_field(tmp_path: Path) -> None:
    """An OutboxRow carries back the OutboxMessage fields, offsets included."""
    national = OutboxMessage(message_id="s1", event_id=None, kind="error", prefecture=None,
                             stage=None, topic="alertsim/v1/errors", payload=b"{}",
                             qos=1, retain=True, sim_time=None, created_at=T0)
    async with await Store.open(tmp_path / "a.db") as store:
        await store.record.enqueue([message("m1"), national])
        alert, status = await store.views.outbox()
    assert OutboxMessage(**{f: getattr(alert, f) for f in OutboxMessage.__dataclass_fields__}) \
        == message("m1")
    assert (status.event_id, status.prefecture, status.retain, status.sim_time) \
        == (None, None, True, None)
    assert alert.created_at.utcoffset() == timedelta(hours=9)


async def test_outbox_filters_by_event_and_kind(tmp_path: Path) -> None:
    """outbox(event_id, kind) narrows the listing and keeps seq order."""
    async with await Store.open(tmp_path / "a.db") as store:
        await store.record.enqueue([message("a1"), message("s1", kind="state"),
                             message("b1", event_id="EV2"), message("a2")])
        assert [r.message_id for r in await store.views.outbox("EV1")] == ["a1", "s1", "a2"]
        assert [r.message_id for r in await store.views.outbox(kind="alert")] == ["a1", "b1", "a2"]
        assert [r.message_id for r in await store.views.outbox("EV1", "state")] == ["s1"]


async def test_invalid_message_rolls_back_the_whole_batch(tmp_path: Path) -> None:
    """A batch with one bad message (unknown kind) writes nothing."""
    async with await Store.open(tmp_path / "a.db") as store:
        bad = message("bad", kind="gossip")  # type: ignore[arg-type]
        with pytest.raises(StoreError):
            await store.record.enqueue([message("ok"), bad])
        assert await store.views.outbox() == []


async def test_naive_datetime_is_refused(tmp_path: Path) -> None:
    """A datetime without a UTC offset is refused before anything is written."""
    async with await Store.open(tmp_path / "a.db") as store:
        with pytest.raises(ValueError, match="naive"):
            await store.record.record_rejected(raw=b"x", reason="r", source="s",
                                        received_at=datetime(2025, 3, 1, 7, 0))
        assert await store.views.rejected() == []


async def test_unpublished_and_mark_published(tmp_path: Path) -> None:
    """Marked messages leave unpublished(); the first acknowledgement time is kept."""
    async with await Store.open(tmp_path / "a.db") as store:
        await store.record.enqueue([message("m1"), message("m2"), message("m3")])
        await store.record.mark_published("m2", T0 + timedelta(seconds=1))
        await store.record.mark_published("m2", T0 + timedelta(seconds=5))
        assert [r.message_id for r in await store.record.unpublished()] == ["m1", "m3"]
        (m2,) = [r for r in await store.views.outbox() if r.message_id == "m2"]
        assert m2.published_at == T0 + timedelta(seconds=1)
        with pytest.raises(StoreError, match="nope"):
            await store.record.mark_published("nope", T0)


async def test_outbox_survives_a_crash(tmp_path: Path) -> None:
    """Committed messages are visible to a new connection while the old one is still open."""
    path = tmp_path / "a.db"
    crashed = await Store.open(path)
    try:
        await crashed.record.enqueue([message("m1"), message("m2")])
        await crashed.record.mark_published("m1", T0)
        async with await Store.open(path) as restarted:
            assert [r.message_id for r in await restarted.record.unpublished()] == ["m2"]
    finally:
        await crashed.close()


async def test_data_survives_close_and_reopen(tmp_path: Path) -> None:
    """Every table's rows are still there after close and reopen."""
    path = tmp_path / "a.db"
    async with await Store.open(path) as store:
        await store.record.enqueue([message("m1")])
        await store.record.record_detection(raw=b"{}", parsed_json="{}", event_id="EV1", sequence=1,
                                     source="mqtt", received_at=T0)
        await store.record.commit(Change(
            events=(EventRow("EV1", "{}", closed=False, updated_at=T0),),
            decisions=(DecisionRecord("EV1", 1, '{"n": 1}', decided_at=T0),)))
    async with await Store.open(path) as store:
        assert [r.message_id for r in await store.record.unpublished()] == ["m1"]
        assert [(d.event_id, d.sequence) for d in await store.views.detections()] == [("EV1", 1)]
        assert [d.decision_json for d in await store.views.decisions("EV1")] == ['{"n": 1}']
        assert [e.event_id for e in await store.record.open_events()] == ["EV1"]


async def test_concurrent_enqueue_loses_nothing(tmp_path: Path) -> None:
    """20 tasks enqueueing (and writing receipts) at once lose no row and keep batches whole."""
    async with await Store.open(tmp_path / "a.db") as store:

        async def writer(task: int) -> None:
            for batch in range(3):
                await store.record.enqueue([message(f"t{task}-b{batch}-{i}") for i in range(5)])
                await store.record.record_receipt(client_id=f"c{task}", message_id="x",
                                           received_at=T0, recorded_at=T0)

        async with asyncio.TaskGroup() as group:
            for task in range(20):
                group.create_task(writer(task), name=f"writer-{task}")
        rows = await store.views.outbox()
        assert len(rows) == 20 * 3 * 5
        assert len({r.message_id for r in rows}) == len(rows)
        for start in range(0, len(rows), 5):
            batch = rows[start:start + 5]
            prefix = batch[0].message_id.rsplit("-", 1)[0]
            assert [r.message_id for r in batch] == [f"{prefix}-{i}" for i in range(5)]
        assert len(await store.views.receipts("x")) == 20 * 3


async def test_rejected_round_trip(tmp_path: Path) -> None:
    """Rejected raw bytes, reason, source and time come back as stored."""
    raw = b"\xff\xfe not json"
    async with await Store.open(tmp_path / "a.db") as store:
        row_id = await store.record.record_rejected(raw=raw, reason="json_invalid", source="mqtt",
                                             received_at=T0)
        (row,) = await store.views.rejected()
    assert (row.id, row.raw, row.reason, row.source, row.received_at) \
        == (row_id, raw, "json_invalid", "mqtt", T0)


async def test_receipts_keep_duplicates(tmp_path: Path) -> None:
    """Every receipt is a row, duplicates included, and can be filtered by message."""
    later = datetime(2025, 3, 1, 0, 0, 5, tzinfo=UTC)
    async with await Store.open(tmp_path / "a.db") as store:
        for client, msg in [("phone-1", "m1"), ("phone-1", "m1"), ("phone-2", "m2")]:
            await store.record.record_receipt(client_id=client, message_id=msg, received_at=T0,
                                       recorded_at=later)
        assert [r.client_id for r in await store.views.receipts("m1")] == ["phone-1", "phone-1"]
        everything = await store.views.receipts()
    assert len(everything) == 3
    assert everything[0].recorded_at == later
    assert everything[0].recorded_at.utcoffset() == timedelta(0)


async def test_events_upsert_and_open_events(tmp_path: Path) -> None:
    """A committed event state replaces the saved one; closed events leave open_events()."""
    async with await Store.open(tmp_path / "a.db") as store:
        await store.record.commit(Change(events=(
            EventRow("EV1", '{"v": 1}', closed=False, updated_at=T0),
            EventRow("EV2", '{"v": 1}', closed=False, updated_at=T0))))
        await store.record.commit(Change(events=(
            EventRow("EV1", '{"v": 2}', closed=True, updated_at=T0 + timedelta(minutes=5)),)))
        assert [e.event_id for e in await store.record.open_events()] == ["EV2"]
        ev1, ev2 = await store.views.events()
    assert (ev1.event_id, ev1.state_json, ev1.closed) == ("EV1", '{"v": 2}', True)
    assert ev1.updated_at == T0 + timedelta(minutes=5)
    assert ev2.closed is False


async def test_drill_start_and_finish(tmp_path: Path) -> None:
    """A drill is recorded at start and gets its report on finish; a reused id is refused."""
    async with await Store.open(tmp_path / "a.db") as store:
        await store.drills.record_drill(drill_id="D1", scenario="hokkaido-overflight", started_at=T0,
                                 settings_json='{"speed": 10}')
        (started,) = await store.drills.drills()
        assert (started.finished_at, started.report_json) == (None, None)
        await store.drills.finish_drill("D1", T0 + timedelta(minutes=9), '{"ok": true}')
        (finished,) = await store.drills.drills()
        assert finished.report_json == '{"ok": true}'
        assert finished.finished_at == T0 + timedelta(minutes=9)
        with pytest.raises(StoreError):
            await store.drills.record_drill(drill_id="D1", scenario="x", started_at=T0,
                                     settings_json="{}")
        with pytest.raises(StoreError, match="D9"):
            await store.drills.finish_drill("D9", T0, "{}")


async def test_migration_2_fills_msg_type_and_expiry_of_recorded_alerts(tmp_path: Path) -> None:
    """A version-1 record's alerts get msg_type and expires_at from their payload; 'status' rows go."""
    path = tmp_path / "v1.db"
    async with await Store.open(path, migrations=MIGRATIONS[:1]):
        pass
    alert = (b'{"msgType": "Update", "info": [{"expires": "2025-03-01T08:00:00+09:00"}]}')
    with sqlite3.connect(path) as conn:
        conn.executemany(
            "INSERT INTO outbox (message_id, event_id, kind, prefecture, stage, topic, payload,"
            " qos, retain, sim_time, created_at) VALUES (?, 'EV1', ?, NULL, NULL, 't', ?, 1, 0,"
            " NULL, ?)", [("a1", "alert", alert, T0.isoformat()),
                          ("s1", "status", b"online", T0.isoformat()),
                          ("st1", "state", b"", T0.isoformat())])
    conn.close()
    async with await Store.open(path) as store:
        rows = await store.views.outbox()
        await store.record.enqueue([message("new")])
        after = await store.views.outbox()
    assert [(r.message_id, r.kind, r.msg_type) for r in rows] == [
        ("a1", "alert", "Update"), ("st1", "state", None)]
    assert rows[0].expires_at == datetime(2025, 3, 1, 8, 0, tzinfo=JST)
    assert after[-1].seq > rows[-1].seq  # AUTOINCREMENT carried over: seq never reused

