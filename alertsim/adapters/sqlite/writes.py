"""The statements of the record's write transactions, run inside `Database.transaction`.

    change_statements  one input's consequences: event states, decisions, outbox rows,
                       withheld messages, the input marked processed (`ServiceRecord.commit`)
    write_all          runs those statements
    mark_all           many outbox rows marked published at once
                       (`ServiceRecord.mark_all_published`)

A statement with nothing to write is left out: each one is a hop to aiosqlite's thread.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import aiosqlite

from alertsim.adapters.sqlite.rows import opt_text, text
from alertsim.domain.refusal import bounded, excerpt
from alertsim.errors import StoreError
from alertsim.service.records import Change, OutboxMessage

__all__ = ["COUNT_REFUSALS", "INSERT_RECEIPT", "REFUSED_ACTION", "REJECT", "Statement",
           "change_statements",
           "mark_all", "rejected_params", "write_all"]

Statement = tuple[str, list[tuple[object, ...]]]

# ON CONFLICT names the one constraint to tolerate; INSERT OR IGNORE would also swallow
# CHECK failures such as an unknown kind.
_ENQUEUE = ("INSERT INTO outbox (message_id, event_id, kind, prefecture, stage, msg_type, topic,"
            " payload, qos, retain, sim_time, expires_at, created_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (message_id) DO NOTHING")
INSERT_RECEIPT = ("INSERT INTO receipts (client_id, message_id, received_at, recorded_at)"
                  " VALUES (?, ?, ?, ?)")
_SAVE_EVENT = ("INSERT INTO events (event_id, state_json, closed, updated_at) VALUES (?, ?, ?, ?)"
               " ON CONFLICT (event_id) DO UPDATE SET state_json = excluded.state_json,"
               " closed = excluded.closed, updated_at = excluded.updated_at")
_DECIDE = ("INSERT INTO decisions (event_id, sequence, decided_at, decision_json)"
           " VALUES (?, ?, ?, ?)")
# Refusals keep an excerpt and the size, never a whole payload (`domain.refusal`).
REJECT = ("INSERT INTO rejected (source, received_at, reason, raw, size)"
          " VALUES (?, ?, ?, ?, ?)")
# An operator action the service refused, kept for the audit log with its answer.
REFUSED_ACTION = ("INSERT INTO operator_actions (event_id, action, source, received_at, raw,"
                  " by_user, answer, processed_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)")
# An input acted on; an operator action's answer is 'applied' (the audit log's).
_PROCESSED = {
    "detection": "UPDATE detections SET processed_at = ? WHERE id = ?",
    "operator": "UPDATE operator_actions SET processed_at = ?, answer = 'applied' WHERE id = ?",
}
COUNT_REFUSALS = ("INSERT INTO refusal_counts (source, count, bytes, first_at, last_at)"
                  " VALUES (?, ?, ?, ?, ?) ON CONFLICT (source) DO UPDATE SET"
                  " count = count + excluded.count, bytes = bytes + excluded.bytes,"
                  " last_at = excluded.last_at")


def rejected_params(source: str, received_at: datetime, reason: str,
                    raw: bytes) -> tuple[object, ...]:
    """An INSERT's parameters for a refused input: a bounded excerpt, reason and the size."""
    return (source, text(received_at), bounded(reason), excerpt(raw), len(raw))


def _outbox_params(m: OutboxMessage) -> tuple[object, ...]:
    return (m.message_id, m.event_id, m.kind, m.prefecture, m.stage, m.msg_type, m.topic,
            m.payload, m.qos, int(m.retain), opt_text(m.sim_time), opt_text(m.expires_at),
            text(m.created_at))


def change_statements(change: Change) -> list[Statement]:
    """(sql, rows) of each table `change` writes, empty ones left out; times become text
    here, so a naive datetime is refused (ValueError) before a transaction opens."""
    statements: list[Statement] = [
        (_SAVE_EVENT, [(e.event_id, e.state_json, int(e.closed), text(e.updated_at))
                       for e in change.events]),
        (_DECIDE, [(d.event_id, d.sequence, text(d.decided_at), d.decision_json)
                   for d in change.decisions]),
        (_ENQUEUE, [_outbox_params(m) for m in change.outbox]),
        (REJECT, [rejected_params(source, change.processed_at, reason, raw)
                  for source, reason, raw in change.withheld]),
    ]
    if change.processed is not None:
        kind, row_id = change.processed
        statements.append((_PROCESSED[kind], [(text(change.processed_at), row_id)]))
    return [(sql, rows) for sql, rows in statements if rows]


async def write_all(db: aiosqlite.Connection, statements: Sequence[Statement]) -> None:
    """Run each (sql, rows) with executemany, in order (inside the caller's transaction)."""
    for sql, rows in statements:
        await db.executemany(sql, rows)


async def mark_all(db: aiosqlite.Connection, message_ids: Sequence[str],
                   published_at: str) -> int:
    """Mark rows published (a first acknowledgement time is kept); returns how many were
    unpublished until now. An id that is not in the outbox at all is a StoreError."""
    ids = list(dict.fromkeys(message_ids))
    fresh = 0
    for first in range(0, len(ids), 500):  # within SQLite's limit on bound parameters
        chunk = ids[first:first + 500]
        marks = ",".join("?" * len(chunk))
        rows = list(await db.execute_fetchall(
            f"SELECT count(*) FROM outbox WHERE message_id IN ({marks})", chunk))
        if not rows or rows[0][0] != len(chunk):
            raise StoreError("store: marking published: an outbox message is unknown")
        async with db.execute(f"UPDATE outbox SET published_at = ? WHERE published_at IS NULL"
                              f" AND message_id IN ({marks})", [published_at, *chunk]) as cursor:
            fresh += cursor.rowcount
    return fresh
