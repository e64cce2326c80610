"""Replay timing: how far each message of an x60 `alertsim replay` lands from its schedule.

Run: python benchmarks/bench_replay.py [--speed 60] [--scenario FILE ...]

Each scenario (default: every file in scenarios/) is played on the pure engine's virtual
clock (as `drill --dry-run` does) and its alerts are written to a SQLite record exactly as
the service writes them; then `alertsim.drills.replay.replay` publishes every event of it
again at `--speed`, one event after another, to a Mosquitto, and a subscriber notes when
each message arrives. The scenarios replay side by side (as several replays on one
machine would), and the baseline runs at the same time. The error of a message is how
late it arrives against its event's schedule (sim offset /
speed), anchored on the event's most punctual message:

    error_i = (arrival_i - offset_i / speed) - min over the event of (arrival - offset / speed)

measured end to end (replay's sleep, connect, publish, broker, subscriber). The baseline is the same
schedules kept by `asyncio.sleep` alone in this process (no MQTT): the loop's own timing
error. Ends with one JSON line of the figures (ms).
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import statistics
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import aiomqtt

from alertsim.adapters.sqlite.store import Store
from alertsim.brokers.brokers import MosquittoBroker
from alertsim.data import load_atlas
from alertsim.domain.messages import Alert
from alertsim.domain.timeline import simulate
from alertsim.domain.topics import TopicTree
from alertsim.drills.replay import replay
from alertsim.drills.scenario import load_scenario
from alertsim.service.config import ServiceConfig
from alertsim.service.outgoing import alert_message
from alertsim.testing import eventually

ROOT = Path(__file__).resolve().parent.parent
TARGET_MS = 50.0


Schedule = dict[str, list[float]]  # event id -> sim offsets (s) of its alerts, in order


async def record(scenario_path: Path, db: Path,
                 nonce: str) -> tuple[Schedule, dict[str, list[str]]]:
    """The scenario's alerts written to `db` as the service would: each event's schedule
    and identifiers in order (a nonce of their own per scenario)."""
    scenario = load_scenario(scenario_path)
    engine = ServiceConfig(status=scenario.status, policy=scenario.policy).engine(load_atlas())
    sent = list(simulate(scenario.timeline_inputs(), engine, nonce=nonce))
    now = datetime.now(UTC)
    async with await Store.open(db) as store:
        await store.record.enqueue([alert_message(s.alert, TopicTree(), scenario.status, now)
                             for s in sent])
    offsets: Schedule = {}
    identifiers: dict[str, list[str]] = {}
    for s in sent:
        offsets.setdefault(s.alert.alertsim.event_id, []).append(s.alert.sent.timestamp())
        identifiers.setdefault(s.alert.alertsim.event_id, []).append(s.alert.identifier)
    schedule = {e: [t - times[0] for t in times] for e, times in offsets.items()}
    return schedule, identifiers


class Arrivals:
    """One subscriber for every replay: arrival time by original identifier."""

    def __init__(self) -> None:
        self.at: dict[str, float] = {}

    async def read(self, client: aiomqtt.Client) -> None:
        async for message in client.messages:
            assert isinstance(message.payload, bytes)
            identifier = Alert.model_validate_json(message.payload).identifier
            self.at[identifier.split(".replay-")[0]] = time.perf_counter()


async def replay_all(db: Path, schedule: Schedule, url: str, speed: float) -> None:
    for event_id in schedule:
        await replay(db, event_id, url=url, speed=speed, out=io.StringIO())


def replay_errors(schedule: Schedule, identifiers: dict[str, list[str]], arrivals: Arrivals,
                  speed: float) -> list[float]:
    """The error (s) of each message of each event (`lateness`)."""
    return [e for event_id, offsets in schedule.items()
            for e in lateness([arrivals.at[i] for i in identifiers[event_id]], offsets, speed)]


def lateness(times: list[float], offsets: list[float], speed: float) -> list[float]:
    """How late each message came against the event's schedule, anchored on its most
    punctual message (the replay's own start is not observable from outside)."""
    anchor = min(t - o / speed for t, o in zip(times, offsets, strict=True))
    return [t - o / speed - anchor for t, o in zip(times, offsets, strict=True)]


async def sleep_errors(schedules: Schedule, speed: float) -> list[float]:
    """The baseline: the same schedules kept by asyncio.sleep alone."""
    loop = asyncio.get_running_loop()
    errors: list[float] = []
    for offsets in schedules.values():
        started = loop.time()
        woke: list[float] = []
        for offset in offsets:
            await asyncio.sleep(max(0.0, started + offset / speed - loop.time()))
            woke.append(loop.time())
        errors += lateness(woke, offsets, speed)
    return errors


def summary(errors: list[float]) -> dict[str, float]:
    ms = sorted(e * 1000 for e in errors)
    return {"p50_ms": round(statistics.median(ms), 2),
            "p99_ms": round(ms[min(len(ms) - 1, int(len(ms) * 0.99))], 2),
            "max_ms": round(max(ms, key=abs), 2)}


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--speed", type=float, default=60.0)
    parser.add_argument("--scenario", type=Path, action="append")
    args = parser.parse_args()
    scenarios = args.scenario or sorted((ROOT / "scenarios").glob("*.yaml"))
    with tempfile.TemporaryDirectory(prefix="bench-replay-") as tmp, \
            MosquittoBroker(data_dir=Path(tmp) / "broker") as broker:
        recorded = [(Path(tmp) / f"{n}.db", *await record(path, Path(tmp) / f"{n}.db",
                                                           f"bench{n}"))
                    for n, path in enumerate(scenarios)]
        arrivals = Arrivals()
        async with aiomqtt.Client("127.0.0.1", broker.port, identifier=f"bench-{os.getpid()}",
                                  max_queued_incoming_messages=0) as client:
            await client.subscribe("alertsim/v1/+/alerts/#", qos=1)
            reader = asyncio.create_task(arrivals.read(client))
            started = time.perf_counter()
            base_runs = await asyncio.gather(
                *(replay_all(db, schedule, broker.url, args.speed)
                  for db, schedule, _ in recorded),
                *(sleep_errors(schedule, args.speed) for _, schedule, _ in recorded))
            took = time.perf_counter() - started
            total = sum(len(i) for *_, ids in recorded for i in ids.values())
            await eventually(lambda: len(arrivals.at) >= total, timeout=30)
            reader.cancel()
    ours = [e for _, schedule, ids in recorded
            for e in replay_errors(schedule, ids, arrivals, args.speed)]
    base = [e for run in base_runs[len(recorded):] if run for e in run]
    mine, baseline = summary(ours), summary(base)
    print(f"x{args.speed:g} replay of {len(scenarios)} scenarios side by side, {len(ours)} "
          f"messages in {took:.1f} s, load average {os.getloadavg()[0]:.2f}")
    print(f"{'error vs schedule (ms)':34}{'p50':>8}{'p99':>8}{'max':>8}")
    print(f"{'alertsim replay, end to end':34}{mine['p50_ms']:8.2f}{mine['p99_ms']:8.2f}"
          f"{mine['max_ms']:8.2f}")
    print(f"{'asyncio.sleep alone (baseline)':34}{baseline['p50_ms']:8.2f}"
          f"{baseline['p99_ms']:8.2f}{baseline['max_ms']:8.2f}")
    met = abs(mine["max_ms"]) <= TARGET_MS
    print(f"target every message within {TARGET_MS:g} ms: {'met' if met else 'NOT met'}")
    print(json.dumps({"bench": "replay", "speed": args.speed, "messages": len(ours),
                      "scenarios": len(scenarios), **mine,
                      **{f"baseline_{k}": v for k, v in baseline.items()},
                      "target_ms": TARGET_MS, "target_met": met}))


if __name__ == "__main__":
    asyncio.run(main())
