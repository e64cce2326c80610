"""The record's schema: migrations applied in order, counted by `PRAGMA user_version`.

    1  detections, rejected, decisions, outbox, events, receipts, drills
    2  outbox rows carry msg_type and expires_at (so the publisher never parses a payload);
       the never-written 'status' kind is gone
    3  inputs are recorded before they are acted on: detections get processed_at (NULL =
       recorded, not yet decided; redone at start-up), operator actions get a table
    4  refused inputs cost a bounded amount: `rejected.raw` keeps the first 256 bytes
       (`domain.refusal.EXCERPT_BYTES`) and `size` the input's length (rows written before
       are cut the same way, freeing their pages for reuse); `refusal_counts` counts, per
       client (topic), the refusals past its rate that got no row of their own
    5  the audit log: operator actions keep who sent them (`by_user`, the payload's `by`)
       and the service's answer (`answer`: 'applied' or the refusal's reason); refused
       actions get a row too (`processed_at` = when refused). Rows before this version were
       all applied once processed.

Append new scripts; never edit one that has shipped. Each runs in its own transaction.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

import aiosqlite

from alertsim.adapters.sqlite.rows import mapped
from alertsim.errors import StoreError

__all__ = ["MIGRATIONS", "prepare"]

MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE detections (
        id          INTEGER PRIMARY KEY,
        event_id    TEXT    NOT NULL,
        sequence    INTEGER NOT NULL,
        source      TEXT    NOT NULL,
        received_at TEXT    NOT NULL,
        raw         BLOB    NOT NULL,
        parsed_json TEXT    NOT NULL CHECK (json_valid(parsed_json))
    );
    CREATE INDEX detections_event ON detections (event_id, sequence);
    CREATE TABLE rejected (
        id          INTEGER PRIMARY KEY,
        source      TEXT NOT NULL,
        received_at TEXT NOT NULL,
        reason      TEXT NOT NULL,
        raw         BLOB NOT NULL
    );
    CREATE TABLE decisions (
        id            INTEGER PRIMARY KEY,
        event_id      TEXT    NOT NULL,
        sequence      INTEGER NOT NULL,
        decided_at    TEXT    NOT NULL,
        decision_json TEXT    NOT NULL CHECK (json_valid(decision_json))
    );
    CREATE INDEX decisions_event ON decisions (event_id, sequence);
    CREATE TABLE outbox (
        seq          INTEGER PRIMARY KEY AUTOINCREMENT,
        message_id   TEXT    NOT NULL UNIQUE,
        event_id     TEXT,
        kind         TEXT    NOT NULL CHECK (kind IN ('alert', 'state', 'status', 'error')),
        prefecture   TEXT    CHECK (prefecture GLOB '[0-9][0-9]'),
        stage        TEXT,
        topic        TEXT    NOT NULL,
        payload      BLOB    NOT NULL,
        qos          INTEGER NOT NULL CHECK (qos IN (0, 1, 2)),
        retain       INTEGER NOT NULL CHECK (retain IN (0, 1)),
        sim_time     TEXT,
        created_at   TEXT    NOT NULL,
        published_at TEXT
    );
    CREATE INDEX outbox_unpublished ON outbox (seq) WHERE published_at IS NULL;
    CREATE INDEX outbox_event ON outbox (event_id, seq);
    CREATE TABLE events (
        event_id   TEXT    PRIMARY KEY,
        state_json TEXT    NOT NULL CHECK (json_valid(state_json)),
        closed     INTEGER NOT NULL CHECK (closed IN (0, 1)),
        updated_at TEXT    NOT NULL
    );
    CREATE TABLE receipts (
        id          INTEGER PRIMARY KEY,
        client_id   TEXT NOT NULL,
        message_id  TEXT NOT NULL,
        received_at TEXT NOT NULL,
        recorded_at TEXT NOT NULL
    );
    CREATE INDEX receipts_message ON receipts (message_id);
    CREATE TABLE drills (
        drill_id      TEXT PRIMARY KEY,
        scenario      TEXT NOT NULL,
        started_at    TEXT NOT NULL,
        settings_json TEXT NOT NULL CHECK (json_valid(settings_json)),
        finished_at   TEXT,
        report_json   TEXT CHECK (report_json IS NULL OR json_valid(report_json))
    );
    """,
    """
    CREATE TABLE outbox_v2 (
        seq          INTEGER PRIMARY KEY AUTOINCREMENT,
        message_id   TEXT    NOT NULL UNIQUE,
        event_id     TEXT,
        kind         TEXT    NOT NULL CHECK (kind IN ('alert', 'state', 'error')),
        prefecture   TEXT    CHECK (prefecture GLOB '[0-9][0-9]'),
        stage        TEXT,
        msg_type     TEXT    CHECK (msg_type IS NULL OR msg_type IN ('Alert', 'Update', 'Cancel')),
        topic        TEXT    NOT NULL,
        payload      BLOB    NOT NULL,
        qos          INTEGER NOT NULL CHECK (qos IN (0, 1, 2)),
        retain       INTEGER NOT NULL CHECK (retain IN (0, 1)),
        sim_time     TEXT,
        expires_at   TEXT,
        created_at   TEXT    NOT NULL,
        published_at TEXT
    );
    -- Alerts recorded before this version: msgType and expiry from their own payload.
    INSERT INTO outbox_v2 (seq, message_id, event_id, kind, prefecture, stage, msg_type, topic,
                           payload, qos, retain, sim_time, expires_at, created_at, published_at)
    SELECT seq, message_id, event_id, kind, prefecture, stage,
           CASE kind WHEN 'alert' THEN json_extract(CAST(payload AS TEXT), '$.msgType') END,
           topic, payload, qos, retain, sim_time,
           CASE kind WHEN 'alert' THEN json_extract(CAST(payload AS TEXT), '$.info[0].expires') END,
           created_at, published_at
    FROM outbox WHERE kind != 'status';
    DROP TABLE outbox;
    ALTER TABLE outbox_v2 RENAME TO outbox;
    CREATE INDEX outbox_unpublished ON outbox (seq) WHERE published_at IS NULL;
    CREATE INDEX outbox_event ON outbox (event_id, seq);
    """,
    """
    ALTER TABLE detections ADD COLUMN processed_at TEXT;
    UPDATE detections SET processed_at = received_at;
    CREATE INDEX detections_unprocessed ON detections (id) WHERE processed_at IS NULL;
    CREATE TABLE operator_actions (
        id           INTEGER PRIMARY KEY,
        event_id     TEXT NOT NULL,
        action       TEXT NOT NULL CHECK (action IN ('cancel', 'close')),
        source       TEXT NOT NULL,
        received_at  TEXT NOT NULL,
        raw          BLOB NOT NULL,
        processed_at TEXT
    );
    CREATE INDEX operator_actions_unprocessed ON operator_actions (id)
        WHERE processed_at IS NULL;
    """,
    """
    ALTER TABLE rejected ADD COLUMN size INTEGER;
    UPDATE rejected SET size = length(raw);
    UPDATE rejected SET raw = substr(raw, 1, 256) WHERE length(raw) > 256;
    CREATE TABLE refusal_counts (
        source   TEXT    PRIMARY KEY,
        count    INTEGER NOT NULL CHECK (count >= 0),
        bytes    INTEGER NOT NULL CHECK (bytes >= 0),
        first_at TEXT    NOT NULL,
        last_at  TEXT    NOT NULL
    );
    """,
    """
    ALTER TABLE operator_actions ADD COLUMN by_user TEXT;
    ALTER TABLE operator_actions ADD COLUMN answer TEXT;
    UPDATE operator_actions SET answer = 'applied' WHERE processed_at IS NOT NULL;
    """,
)



async def prepare(db: aiosqlite.Connection, where: str, migrations: Sequence[str]) -> None:
    with mapped(f"opening {where}"):
        await db.execute("PRAGMA journal_mode=WAL")
        await db.execute("PRAGMA foreign_keys=ON")
        await db.execute("PRAGMA synchronous=NORMAL")
        async with db.execute("PRAGMA user_version") as cursor:
            row = await cursor.fetchone()
    version = int(row[0]) if row else 0
    if version > len(migrations):
        raise StoreError(f"store: {where} has schema version {version}, newer than the "
                         f"{len(migrations)} this alertsim knows; upgrade alertsim")
    for number in range(version + 1, len(migrations) + 1):
        # executescript commits any open transaction first, so the script carries its own.
        script = (f"BEGIN IMMEDIATE;\n{migrations[number - 1]};\n"
                  f"PRAGMA user_version = {number};\nCOMMIT;")
        with mapped(f"migration {number} of {where}"):
            try:
                await db.executescript(script)
            except sqlite3.Error:
                if db.in_transaction:
                    await db.execute("ROLLBACK")
                raise


