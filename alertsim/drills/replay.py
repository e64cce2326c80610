"""`alertsim replay`: publish a recorded event's alerts again, in their original rhythm.

For client developers who need the same traffic twice. Identifiers are never reused, so
each replayed alert gets a fresh identifier (the original one plus a replay token) and
its references are rewritten to match; texts, stages, topics and order are unchanged.
The rhythm is the recorded simulated `sent` times, divided by `speed`.
"""

from __future__ import annotations

import asyncio
import sys
import uuid
from pathlib import Path
from typing import TextIO

from alertsim.adapters.sqlite.store import Store
from alertsim.domain.messages import Alert
from alertsim.domain.publication import Publication
from alertsim.domain.vocabulary import Reference
from alertsim.errors import InputError
from alertsim.mqtt.client import MqttSettings, connect
from alertsim.mqtt.messages import publish
from alertsim.mqtt.negotiation import negotiate_protocol


def rewrite(alert: Alert, token: str, mapping: dict[str, str]) -> Alert:
    """The same alert under a new identifier, referencing the new identifiers."""
    new_id = f"{alert.identifier}.replay-{token}"
    mapping[alert.identifier] = new_id
    references = []
    for ref in alert.references:
        old = Reference.parse(ref)
        new = Reference(old.sender, mapping.get(old.identifier, old.identifier), old.sent)
        references.append(str(new))
    return alert.model_copy(update={"identifier": new_id, "references": tuple(references)})


async def replay(db: Path, event_id: str, *, url: str, speed: float = 1.0,
                 ca_file: Path | None = None, out: TextIO | None = None) -> int:
    """Publish the event's alerts again; returns how many were published."""
    out = out or sys.stdout
    async with await Store.open(db) as store:
        rows = await store.views.outbox(event_id=event_id, kind="alert")
    if not rows:
        raise InputError("--event", [f"no alerts recorded for event {event_id!r} in {db}"])
    protocol = await negotiate_protocol(url, ca_file=ca_file)
    token = uuid.uuid4().hex[:6]
    mapping: dict[str, str] = {}
    settings = MqttSettings(url=url, client_id=f"alertsim-replay-{token}", protocol=protocol,
                            ca_file=ca_file)
    first = rows[0].sim_time
    loop = asyncio.get_running_loop()
    started = loop.time()
    async with connect(settings) as client:
        for row in rows:
            offset = ((row.sim_time - first).total_seconds() / speed
                      if row.sim_time and first else 0.0)
            await asyncio.sleep(max(0.0, started + offset - loop.time()))
            alert = rewrite(Alert.model_validate_json(row.payload), token, mapping)
            await publish(client, Publication(
                row.topic, alert.model_dump_json().encode(), qos=1,
                content_type="application/json",
                user_properties=(("identifier", alert.identifier), ("stage", alert.stage))),
                protocol=protocol)
            print(f"[+{offset:7.1f}s] {row.topic} {alert.stage} {alert.identifier}",
                  file=out, flush=True)
    return len(rows)
