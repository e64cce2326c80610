"""The store's write transactions, run whole on aiosqlite's own thread (`transact`).

    transact        BEGIN IMMEDIATE, the work, COMMIT (ROLLBACK on any error)
    write_change    one input's consequences: event states, decisions, outbox rows,
                    withheld messages, the input marked processed (`Store.commit`)
    mark_all        many outbox rows marked published at once (`Store.mark_all_published`)
    insert_receipts many receipts at once (`Store.record_receipts`)

Each runs in one hop to the database thread instead of one per statement: a commit took
six hops (~1.5 ms a detection, a third of its handling), and a caller cancelled in
between can no longer leave a transaction half done.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Callable, Sequence
from typing import TypeVar

from alertsim.adapters.sqlite.rows import opt_text, text
from alertsim.errors import StoreError
from alertsim.service.records import Change, OutboxMessage

__all__ = ["insert_receipts", "mark_all", "transact", "write_change"]

T = TypeVar("T")

# ON CONFLICT names the one constraint to tolerate; INSERT OR IGNORE would also swallow
# CHECK failures such as an unknown kind.
_ENQUEUE = ("INSERT INTO outbox (message_id, event_id, kind, prefecture, stage, msg_type, topic,"
            " payload, qos, retain, sim_time, expires_at, created_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (message_id) DO NOTHING")


def _outbox_params(m: OutboxMessage) -> tuple[object, ...]:
    return (m.message_id, m.event_id, m.kind, m.prefecture, m.stage, m.msg_type, m.topic,
            m.payload, m.qos, int(m.retain), opt_text(m.sim_time), opt_text(m.expires_at),
            text(m.created_at))


def transact(conn: sqlite3.Connection, work: Callable[[sqlite3.Connection], T]) -> T:
    """`work(conn)` as one transaction: committed, or rolled back on any error."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        result = work(conn)
        conn.execute("COMMIT")
    except BaseException:
        with contextlib.suppress(sqlite3.OperationalError):  # no transaction left to undo
            conn.execute("ROLLBACK")
        raise
    return result


def write_change(conn: sqlite3.Connection, change: Change) -> None:
    """The statements of `Store.commit`, inside its transaction."""
    conn.executemany(
        "INSERT INTO events (event_id, state_json, closed, updated_at) VALUES (?, ?, ?, ?)"
        " ON CONFLICT (event_id) DO UPDATE SET state_json = excluded.state_json,"
        " closed = excluded.closed, updated_at = excluded.updated_at",
        [(e.event_id, e.state_json, int(e.closed), text(e.updated_at)) for e in change.events])
    conn.executemany(
        "INSERT INTO decisions (event_id, sequence, decided_at, decision_json)"
        " VALUES (?, ?, ?, ?)",
        [(d.event_id, d.sequence, text(d.decided_at), d.decision_json)
         for d in change.decisions])
    conn.executemany(_ENQUEUE, [_outbox_params(m) for m in change.outbox])
    conn.executemany("INSERT INTO rejected (source, received_at, reason, raw) VALUES (?, ?, ?, ?)",
                     [(source, text(change.processed_at), reason, raw)
                      for source, reason, raw in change.withheld])
    if change.processed is not None:
        kind, row_id = change.processed
        table = "detections" if kind == "detection" else "operator_actions"
        conn.execute(f"UPDATE {table} SET processed_at = ? WHERE id = ?",
                     (text(change.processed_at), row_id))


def mark_all(conn: sqlite3.Connection, message_ids: Sequence[str], published_at: str) -> int:
    """Mark rows published (a first acknowledgement time is kept); returns how many were
    unpublished until now. An id that is not in the outbox at all is a StoreError."""
    ids = list(dict.fromkeys(message_ids))
    fresh = 0
    for first in range(0, len(ids), 500):  # within SQLite's limit on bound parameters
        chunk = ids[first:first + 500]
        marks = ",".join("?" * len(chunk))
        row = conn.execute(f"SELECT count(*) FROM outbox WHERE message_id IN ({marks})",
                           chunk).fetchone()
        if row is None or row[0] != len(chunk):
            raise StoreError("store: marking published: an outbox message is unknown")
        fresh += conn.execute(f"UPDATE outbox SET published_at = ? WHERE published_at IS NULL"
                              f" AND message_id IN ({marks})", [published_at, *chunk]).rowcount
    return fresh


def insert_receipts(conn: sqlite3.Connection, params: Sequence[tuple[str, ...]]) -> None:
    conn.executemany("INSERT INTO receipts (client_id, message_id, received_at, recorded_at)"
                     " VALUES (?, ?, ?, ?)", params)
