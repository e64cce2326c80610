"""Input guards: the token bucket and refusal gate as tables (pure, "now" passed in), the
excerpt kept of a refused input, and the service's bounded record of refusals and its
record-size cap, on a real SQLite file."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest

from alertsim.adapters.sqlite.migrations import MIGRATIONS
from alertsim.adapters.sqlite.store import Store
from alertsim.domain import topics
from alertsim.domain.messages import Receipt
from alertsim.domain.prefectures import Atlas
from alertsim.domain.rate import Bucket, Rate, RateGuard, take
from alertsim.domain.refusal import (
    ALL_CLIENTS,
    EXCERPT_BYTES,
    REASON_CHARS,
    InputGuards,
    RefusalGate,
    bounded,
    escaped,
    excerpt,
)
from alertsim.service.clock import ScaledClock
from alertsim.service.config import ServiceConfig
from alertsim.service.service import Service
from alertsim.testing import DEFAULT_LAUNCH_TIME, make_detection

TWO_PER_S = Rate(2.0, 3)


@pytest.mark.parametrize(("bucket", "now", "taken", "after"), [
    (None, 10.0, True, Bucket(2.0, 10.0)),  # a new client starts full
    (Bucket(0.0, 10.0), 10.0, False, Bucket(0.0, 10.0)),  # empty: refused
    (Bucket(0.0, 10.0), 10.4, False, Bucket(0.8, 10.4)),  # refilling, not a token yet
    (Bucket(0.0, 10.0), 10.5, True, Bucket(0.0, 10.5)),  # one token after 0.5 s at 2/s
    (Bucket(0.0, 10.0), 100.0, True, Bucket(2.0, 100.0)),  # never above the burst
    (Bucket(1.0, 10.0), 5.0, True, Bucket(0.0, 10.0)),  # clock backwards: no refill
    (Bucket(0.5, 10.0), 5.0, False, Bucket(0.5, 10.0)),
])
def test_take_table(bucket: Bucket | None, now: float, taken: bool, after: Bucket) -> None:
    """A bucket refills at the rate up to its burst and gives a token when it has one."""
    got, bucket_after = take(bucket, TWO_PER_S, now)
    assert got is taken
    assert bucket_after.tokens == pytest.approx(after.tokens)
    assert bucket_after.at == after.at


@pytest.mark.parametrize(("per_second", "burst", "times", "expected"), [
    (0.0, 3, [0, 0, 0, 0, 100], [True, True, True, False, False]),  # no refill at all
    (1.0, 2, [0, 0, 0, 0.5, 1.0, 1.0], [True, True, False, False, True, False]),
    (10.0, 1, [0, 0.05, 0.1, 0.1], [True, False, True, False]),
])
def test_guard_sequence_table(per_second: float, burst: int, times: list[float],
                              expected: list[bool]) -> None:
    """One client's inputs at the given times: allowed while its bucket holds a token."""
    guard = RateGuard(Rate(per_second, burst))
    assert [guard.allow("c", t) for t in times] == expected


def test_guard_keeps_clients_apart_and_bounded() -> None:
    """One client's flood leaves another's budget whole; at most max_clients are kept."""
    guard = RateGuard(Rate(0.0, 2), max_clients=3)
    assert [guard.allow("flood", 0) for _ in range(4)] == [True, True, False, False]
    assert guard.allow("quiet", 0)
    for name in ("a", "b", "c"):
        guard.allow(name, 0)
    assert len(guard) == 3
    assert guard.allow("flood", 1)  # forgotten (least recently seen): a full bucket again


@pytest.mark.parametrize(("rate", "burst"), [(-1.0, 1), (1.0, 0)])
def test_rate_refuses_nonsense(rate: float, burst: int) -> None:
    """A negative rate or an empty bucket is a configuration error."""
    with pytest.raises(ValueError, match="rate"):
        Rate(rate, burst)


@pytest.mark.parametrize(("raw", "text"), [
    (b'{"a": 1}', '{"a": 1}'),
    ("警報".encode(), "警報"),
    (b"\x1b[31mred\n", "\\x1b[31mred\\n"),  # terminal escapes and newlines cannot act
    (b"\xff\xfe ok", "\\xff\\xfe ok"),  # invalid UTF-8, byte by byte
    (b"back\\x41slash", "back\\\\x41slash"),  # a backslash in the input is doubled
    (b"x" * 300, "x" * 80 + "..."),  # cut at the limit, and says so
])
def test_escaped_table(raw: bytes, text: str) -> None:
    """An excerpt reads as one line of printable text; an escape always means one."""
    assert escaped(raw, 80) == text
    assert escaped(raw, 80).isprintable()


def test_excerpt_and_reason_are_bounded() -> None:
    """A megabyte keeps EXCERPT_BYTES bytes; a long reason is cut and says how much."""
    raw = bytes(range(256)) * 4096
    assert excerpt(raw) == raw[:EXCERPT_BYTES]
    assert excerpt(b"short") == b"short"
    assert bounded("ok") == "ok"
    cut = bounded("e" * (REASON_CHARS + 42))
    assert cut.startswith("e" * REASON_CHARS)
    assert cut.endswith("(42 more characters)")


def test_refusal_gate_rows_then_counts() -> None:
    """Rows while the client and everyone are within their rates; then counts, under the
    client past its own rate and under ALL_CLIENTS past the overall one."""
    gate = RefusalGate(InputGuards(refusal_rows=Rate(0.0, 2), refusal_rows_all=Rate(0.0, 3)))
    assert [gate.recording("a", 0) for _ in range(3)] == [
        ("row", "a"), ("row", "a"), ("count", "a")]
    assert [gate.recording(c, 0) for c in ("b", "c")] == [("row", "b"), ("count", ALL_CLIENTS)]
    unbounded = RefusalGate(InputGuards(refusal_rows=None, refusal_rows_all=None))
    assert {unbounded.recording("a", 0) for _ in range(1000)} == {("row", "a")}


# -- the service on a real SQLite file ----------------------------------------------------


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    """A fresh SQLite record."""
    async with await Store.open(tmp_path / "alertsim.db") as s:
        yield s


def service_on(atlas: Atlas, store: Store, **config: object) -> Service:
    clock = ScaledClock(start=DEFAULT_LAUNCH_TIME + timedelta(minutes=2))
    return Service(atlas=atlas, store=store.record, clock=clock,
                   config=ServiceConfig(**config))  # type: ignore[arg-type]


def receipt(client: str, n: int) -> tuple[bytes, str]:
    body = Receipt(client_id=client, identifier=f"id-{n}", received_at=DEFAULT_LAUNCH_TIME)
    return body.model_dump_json().encode(), topics.receipts(client)


async def test_oversized_refusals_keep_an_excerpt_then_a_counter(atlas: Atlas,
                                                                 store: Store) -> None:
    """Megabyte receipts: the first few get a row (256 bytes and the size), the rest only
    add to their client's counter; nothing of a payload is kept beyond its excerpt."""
    guards = InputGuards(refusal_rows=Rate(0.0, 5))
    service = service_on(atlas, store, guards=guards)
    big = b"\x00{" + b"A" * 1_000_000
    source = topics.receipts("flood")
    assert await service.accept_receipts([(big, source)] * 30) == 0
    rows = await store.views.rejected()
    assert [(len(r.raw), r.size) for r in rows] == [(EXCERPT_BYTES, len(big))] * 5
    assert "payload too large" in rows[0].reason
    (counter,) = await store.views.refusal_counts()
    assert (counter.source, counter.count, counter.bytes) == (source, 25, 25 * len(big))
    assert len(await store.views.outbox(kind="error")) == 5  # reports only for the rows


async def test_receipts_past_their_rate_are_refused_per_client(atlas: Atlas,
                                                               store: Store) -> None:
    """A client over its receipt rate is refused as "rate"; another client is not."""
    service = service_on(atlas, store, guards=InputGuards(receipts=Rate(0.0, 10)))
    flood = [receipt("loud", n) for n in range(15)]
    assert await service.accept_receipts(flood) == 10
    assert await service.accept_receipts([receipt("quiet", 1)]) == 1
    reasons = [r.reason for r in await store.views.rejected()]
    assert len(reasons) == 5
    assert all(r.startswith("rate: receipts client 'loud' sent more than 0/s (burst 10)")
               for r in reasons)
    assert len(await store.views.receipts()) == 11  # nothing accepted is lost


async def test_record_cap_refuses_low_value_writes_but_never_alerts(atlas: Atlas,
                                                                    store: Store) -> None:
    """Past the cap: receipts and refusal rows are dropped, detections still decide,
    record and alert."""
    service = service_on(atlas, store, max_record_bytes=1)  # any record is over it
    assert await service.accept_receipts([receipt("r", 1), (b"{bad", topics.receipts("r"))]) == 0
    assert await store.views.receipts() == []
    assert await store.views.rejected() == []
    assert service.budget.full
    assert service.budget.dropped == {"receipt": 1, "refusal": 1}
    detection = make_detection((40.6, 126.4), (34.33, 178.57), 30, 100, event_id="capped")
    assert await service.accept_detection(detection.model_dump_json().encode())
    assert len(await store.views.detections()) == 1
    assert {a.prefecture for a in await store.views.outbox("capped", kind="alert")} == {
        "01", "02"}


async def test_migration_cuts_rows_kept_whole(tmp_path: Path) -> None:
    """A record from before the guard: its whole refused payloads are cut to their excerpt
    and keep their size."""
    path = tmp_path / "old.db"
    async with await Store.open(path, migrations=MIGRATIONS[:3]):
        pass
    with sqlite3.connect(path) as conn:
        conn.execute("INSERT INTO rejected (source, received_at, reason, raw) VALUES"
                     " ('s', '2023-11-21T13:43:00+00:00', 'r', ?)", (b"z" * 100_000,))
    conn.close()
    async with await Store.open(path) as store:
        (row,) = await store.views.rejected()
    assert (row.raw, row.size) == (b"z" * EXCERPT_BYTES, 100_000)
