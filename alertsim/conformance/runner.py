"""`alertsim conformance`: play the scripted sequence to one client and judge its receipts.

The client under test subscribes, as any receiver does, to `{root}/test/alerts/{code}`,
`{root}/test/alerts/national` and `{root}/test/state/{code}`, and to its control topic
`{root}/conformance/control/{client_id}`; it acknowledges every alert on
`{root}/receipts/{client_id}` (`Receipt`). The run, check by check:

1. every stage (shelter, imminent, fell_land, passed, fell_sea, cancel, national) in three
   small events and a national message: each shown, believed at its stage;
2. de-duplication: an Alert twice, its Update, the Alert again: shown once, belief kept;
3. references: an Update published before its Alert: held (or the Alert ignored);
4. late join: `{"action": "rejoin", "after_s": N}` on the control topic; N/2 s later an
   Alert and the retained state naming it; the client, back after N s with a clean
   session, must learn it from the retained state (receipt `via: state`), then apply a
   Cancel referring to it. No receipt at all: the check is skipped, with the reason;
5. the receipts themselves: valid, with `outcome` and `belief`.

Each step waits for its receipts at most `timeout_s`. The retained state of the prefecture
on the `test` tree is cleared before and after: do not run this on a tree a service uses.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from pydantic import ValidationError

from alertsim.conformance.judge import (
    CheckResult,
    ConformanceReport,
    judge_duplicate,
    judge_late_join,
    judge_receipts,
    judge_reorder,
    judge_stage,
)
from alertsim.conformance.script import Script
from alertsim.data import load_atlas
from alertsim.domain.messages import Alert, PrefectureState, Receipt
from alertsim.domain.publication import Publication
from alertsim.domain.topics import V1, TopicTree
from alertsim.mqtt.client import Client, MqttSettings, connect
from alertsim.mqtt.messages import publish, received, subscribe
from alertsim.mqtt.negotiation import negotiate_protocol
from alertsim.mqtt.protocol import Protocol
from alertsim.mqtt.url import redacted
from alertsim.signing import SigningKey, sign_publication

__all__ = ["ConformanceOptions", "run_conformance"]

REJOIN_AFTER_S = 3.0


@dataclass(frozen=True)
class ConformanceOptions:
    url: str
    client_id: str
    code: str = "13"
    tree: TopicTree = V1
    timeout_s: float = 10.0
    rejoin_after_s: float = REJOIN_AFTER_S
    ca_file: Path | None = None
    signer: SigningKey | None = None


@dataclass
class _Run:
    """One run's connection and everything the client acknowledged, in arrival order."""

    client: Client
    protocol: Protocol
    opts: ConformanceOptions
    script: Script
    receipts: list[Receipt] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    async def _out(self, message: Publication) -> None:
        if self.opts.signer is not None:
            message = sign_publication(message, self.opts.signer, self.protocol)
        await publish(self.client, message, protocol=self.protocol)

    async def send(self, *alerts: Alert) -> None:
        for alert in alerts:
            await self._out(Publication(
                self.opts.tree.alerts("test", alert.prefecture),
                alert.model_dump_json().encode(), qos=1, content_type="application/json",
                user_properties=(("kind", "alert"), ("identifier", alert.identifier),
                                 ("msgType", alert.msgType), ("stage", alert.stage))))

    async def retain(self, state: PrefectureState | None) -> None:
        payload = b"" if state is None else state.model_dump_json().encode()
        await self._out(Publication(self.opts.tree.state("test", self.opts.code), payload,
                                    qos=1, retain=True, user_properties=(("kind", "state"),)))

    async def control(self, body: dict[str, object]) -> None:
        # Never retained: a retained request would be obeyed again on every reconnect.
        await publish(self.client, Publication(
            self.opts.tree.conformance_control(self.opts.client_id),
            json.dumps(body).encode(), qos=1), protocol=self.protocol)

    async def collect(self) -> None:
        """Read the client's receipts until cancelled."""
        async for message in received(self.client):
            try:
                self.receipts.append(Receipt.model_validate_json(message.payload))
            except ValidationError as exc:
                self.problems.append(f"a receipt that is not a valid Receipt "
                                     f"({exc.error_count()} error(s): {exc.errors()[0]['msg']})")
            self.changed.set()

    async def receipts_for(self, alerts: Sequence[Alert], count: int,
                           timeout_s: float | None = None) -> list[Receipt]:
        """Receipts naming `alerts`, once there are `count` of them or after the timeout."""
        wanted = {a.identifier for a in alerts}

        def mine() -> list[Receipt]:
            return [r for r in self.receipts if r.identifier in wanted]

        try:
            async with asyncio.timeout(timeout_s or self.opts.timeout_s):
                while len(mine()) < count:
                    self.changed.clear()
                    await self.changed.wait()
        except TimeoutError:
            pass
        return mine()


async def _stages(run: _Run) -> list[CheckResult]:
    s = run.script
    a1 = s.alert("a", "shelter")
    a2 = s.alert("a", "imminent", (a1,))
    a3 = s.alert("a", "fell_land", (a1, a2))
    b1 = s.alert("b", "shelter")
    b2 = s.alert("b", "passed", (b1,))
    b3 = s.alert("b", "fell_sea", (b1, b2))
    c1 = s.alert("c", "shelter")
    c2 = s.alert("c", "cancel", (c1,))
    n1 = s.alert("n", "national")
    every = (a1, a2, a3, b1, b2, b3, c1, c2, n1)
    await run.send(*every)
    got = await run.receipts_for(every, len(every))
    return [judge_stage(f"stage {a.stage}", a, got, run.opts.timeout_s)
            for a in (a1, a2, a3, b2, b3, c2, n1)]


async def _duplicate(run: _Run) -> CheckResult:
    d1 = run.script.alert("d", "shelter")
    d2 = run.script.alert("d", "passed", (d1,))
    await run.send(d1, d1, d2, d1)
    return judge_duplicate(d1, d2, await run.receipts_for((d1, d2), 4), copies=3)


async def _reorder(run: _Run) -> CheckResult:
    r1 = run.script.alert("r", "shelter")
    r2 = run.script.alert("r", "passed", (r1,))
    await run.send(r2, r1)
    return judge_reorder(r1, r2, await run.receipts_for((r1, r2), 2))


async def _late_join(run: _Run) -> CheckResult:
    after = run.opts.rejoin_after_s
    await run.control({"action": "rejoin", "after_s": after})
    # The contract gives a client half its `after_s` to leave (docs/clients.md); another
    # client's connection is not observable over MQTT, so this is a deadline, not a guess.
    await asyncio.sleep(after / 2)
    l1 = run.script.alert("l", "shelter")
    await run.send(l1)
    await run.retain(run.script.state(l1))
    waited = after + run.opts.timeout_s
    got = await run.receipts_for((l1,), 1, timeout_s=waited)
    l2 = run.script.alert("l", "cancel", (l1,))
    if got:
        await run.send(l2)
        got = await run.receipts_for((l1, l2), len(got) + 1)
    await run.retain(None)
    return judge_late_join(l1, l2, got, run.opts.tree.conformance_control(run.opts.client_id),
                           waited)


async def run_conformance(opts: ConformanceOptions) -> ConformanceReport:
    """Play the sequence to `opts.client_id` and judge what it acknowledged."""
    protocol = await negotiate_protocol(opts.url, ca_file=opts.ca_file)
    place = load_atlas().by_code[opts.code]
    script = Script(opts.code, place.name_ja, place.name_en, now=datetime.now(UTC))
    settings = MqttSettings(url=opts.url, client_id=f"alertsim-conformance-{script.run}",
                            protocol=protocol, ca_file=opts.ca_file)
    async with connect(settings) as client:
        await subscribe(client, opts.tree.receipts(opts.client_id))
        run = _Run(client, protocol, opts, script)
        reader = asyncio.create_task(run.collect(), name="conformance-receipts")
        try:
            await run.retain(None)
            checks = [*await _stages(run), await _duplicate(run), await _reorder(run),
                      await _late_join(run)]
        finally:
            reader.cancel()
            await asyncio.gather(reader, return_exceptions=True)
    checks.append(judge_receipts(run.receipts, run.problems, opts.client_id))
    return ConformanceReport(client_id=opts.client_id, prefecture=opts.code,
                             topic_root=opts.tree.root, broker=redacted(opts.url),
                             run=script.run, checks=tuple(checks),
                             passed=all(c.verdict == "pass" for c in checks))
