"""The record's parts over one connection: transactions written whole or not at all
(errors and cancellation included), and the views closed while a drill is live."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from alertsim.adapters.sqlite.store import Store
from alertsim.errors import LiveReadError, StoreError
from alertsim.service.ports import Record
from alertsim.service.records import Change, DecisionRecord, EventRow, OutboxMessage
from tests.unit.test_store import T0, message


def change(event_id: str, *messages: OutboxMessage) -> Change:
    """A change saving one event and queueing `messages`."""
    return Change(events=(EventRow(event_id, "{}", closed=False, updated_at=T0),),
                  decisions=(DecisionRecord(event_id, 1, "{}", decided_at=T0),),
                  outbox=messages)


async def test_parts_split_the_record(tmp_path: Path) -> None:
    """store.record is the service's Record port; drills and views read what it wrote."""
    async with await Store.open(tmp_path / "a.db") as store:
        record: Record = store.record
        await record.commit(change("EV1", message("m1")))
        assert [e.event_id for e in await store.views.events()] == ["EV1"]
        assert await store.drills.drills() == []
        assert not hasattr(store, "outbox")


async def test_failed_change_writes_nothing(tmp_path: Path) -> None:
    """A change whose last statement fails leaves no event, decision or message behind."""
    bad = message("bad", kind="gossip")  # type: ignore[arg-type]
    async with await Store.open(tmp_path / "a.db") as store:
        with pytest.raises(StoreError, match="committing"):
            await store.record.commit(change("EV1", message("ok"), bad))
        assert await store.views.events() == []
        assert await store.views.decisions("EV1") == []
        assert await store.views.outbox() == []
        await store.record.commit(change("EV2", message("ok")))  # no transaction left open
        assert [r.message_id for r in await store.views.outbox()] == ["ok"]


async def test_cancelled_commit_is_all_or_nothing(tmp_path: Path) -> None:
    """A commit cancelled at any point is written whole or not at all, and the store goes on."""
    async with await Store.open(tmp_path / "a.db") as store:
        for steps in range(12):
            task = asyncio.create_task(store.record.commit(
                change(f"EV{steps}", message(f"a{steps}", event_id=f"EV{steps}"),
                       message(f"b{steps}", event_id=f"EV{steps}"))))
            for _ in range(steps):
                await asyncio.sleep(0)
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            rows = await store.views.outbox(f"EV{steps}")
            events = [e for e in await store.views.events() if e.event_id == f"EV{steps}"]
            assert len(rows) in (0, 2)
            assert len(events) == len(rows) // 2
        await store.record.enqueue([message("after")])
        assert (await store.views.outbox())[-1].message_id == "after"


async def test_unknown_id_rolls_back_the_marks(tmp_path: Path) -> None:
    """mark_all_published with an unknown id marks none of the others."""
    async with await Store.open(tmp_path / "a.db") as store:
        await store.record.enqueue([message("m1"), message("m2")])
        with pytest.raises(StoreError, match="unknown"):
            await store.record.mark_all_published(["m1", "nope"], T0)
        assert await store.record.unpublished_count() == 2
        assert await store.record.mark_all_published(["m1", "m1", "m2"], T0) == 2
        assert await store.record.mark_all_published([], T0) == 0


async def test_views_closed_while_live(tmp_path: Path) -> None:
    """Inside closed_while_live (nested too) every view query raises LiveReadError; the
    service's record still works, and the views reopen on exit, after an error as well."""
    async with await Store.open(tmp_path / "a.db") as store:
        views = store.views
        queries: list[Callable[[], Awaitable[object]]] = [
            views.detections, views.rejected, lambda: views.decisions("EV1"),
            views.outbox, views.events, views.receipts]
        with views.closed_while_live():
            with views.closed_while_live():
                await store.record.enqueue([message("m1")])
            for query in queries:
                with pytest.raises(LiveReadError, match="follow the service's events"):
                    await query()
        assert [r.message_id for r in await views.outbox()] == ["m1"]
        with pytest.raises(RuntimeError), views.closed_while_live():
            raise RuntimeError("boom")
        for query in queries:
            await query()
