"""Burst: N distinct detections published at once to `alertsim serve`; time to the last alert.

Run: python benchmarks/bench_burst.py --detections 100 [--seed 7] [--no-serial]

One Mosquitto (the project's generated config) per run, `alertsim serve` as a subprocess
(its own process, as in production), a subscriber on every test alert topic. N detections
of distinct events (alertsim.testing.bursts, observed "now") are published at once with
QoS 1 from one client; the clock starts before the first publish. Figures per run:

    time to last alert   first detection sent -> last alert received by the subscriber
    decided              first detection sent -> last detection acted on (the record)
    alerts/s             alerts / time to last alert
    lost                 alert rows in serve's outbox that the subscriber never received
    state bytes          the largest retained state message written, and all of them

Runs, in one invocation: `serve` with its windowed pump (default --publish-window 64);
the baseline `serve --publish-window 1` (the serial pump: one PUBACK and one UPDATE at a
time, as before); and the bare broker: the same alert payloads published straight from one
client (pipelined) to the same subscriber, i.e. what the broker and the subscriber alone
take. The last line is one JSON object of the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiomqtt

from alertsim.brokers.brokers import MosquittoBroker
from alertsim.domain import topics
from alertsim.testing.bursts import burst

ALERTS = "alertsim/v1/test/alerts/#"
TARGETS_S = {100: 1.0, 1000: 10.0}  # the targets: N detections -> within S


@dataclass
class Subscriber:
    """Counts alerts (by identifier) and notes when the last one arrived."""

    client: aiomqtt.Client
    seen: dict[str, int] = field(default_factory=dict)
    copies: int = 0
    last_at: float = 0.0
    online: asyncio.Event = field(default_factory=asyncio.Event)

    async def read(self) -> None:
        async for message in self.client.messages:
            payload = message.payload
            assert isinstance(payload, bytes)
            if message.topic.matches(topics.SERVICE_STATUS):
                if json.loads(payload).get("status") == "online":
                    self.online.set()
                continue
            identifier = json.loads(payload)["identifier"]
            self.copies += 1
            self.seen[identifier] = self.seen.get(identifier, 0) + 1
            self.last_at = time.perf_counter()


@contextlib.asynccontextmanager
async def subscribed(port: int, *filters: str) -> AsyncIterator[Subscriber]:
    async with aiomqtt.Client("127.0.0.1", port, identifier=f"bench-sub-{os.getpid()}",
                              max_queued_incoming_messages=0) as client:
        for f in filters:
            await client.subscribe(f, qos=1)
        subscriber = Subscriber(client)
        task = asyncio.create_task(subscriber.read())
        try:
            yield subscriber
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)


def read_db(db: Path) -> dict[str, float]:
    """What serve has recorded: detections acted on, alerts written and published, states."""
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
    try:
        one = lambda sql: con.execute(sql).fetchone()[0] or 0  # noqa: E731
        return {
            "processed": one("SELECT count(*) FROM detections WHERE processed_at IS NOT NULL"),
            "alerts": one("SELECT count(*) FROM outbox WHERE kind = 'alert'"),
            "unpublished": one("SELECT count(*) FROM outbox WHERE published_at IS NULL"),
            "state_max": one("SELECT max(length(payload)) FROM outbox WHERE kind = 'state'"),
            "state_total": one("SELECT sum(length(payload)) FROM outbox WHERE kind = 'state'"),
        }
    finally:
        con.close()


def last_processed(db: Path) -> datetime:
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
    try:
        return datetime.fromisoformat(
            con.execute("SELECT max(processed_at) FROM detections").fetchone()[0])
    finally:
        con.close()


async def wait_for(condition: Callable[[], bool], limit_s: float, what: str) -> None:
    deadline = time.perf_counter() + limit_s
    while not condition():
        if time.perf_counter() > deadline:
            raise SystemExit(f"bench_burst: {what} not within {limit_s:.0f} s")
        await asyncio.sleep(0.05)


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@contextlib.contextmanager
def serving(broker: MosquittoBroker, db: Path, window: int) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(
        [sys.executable, "-m", "alertsim", "serve", "--broker", broker.url, "--db", str(db),
         "--status", "test", "--log-level", "warning", "--publish-window", str(window)],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=sys.stderr,
        env={**os.environ, "ALERTSIM_CLIENT_ID": f"bench-serve-{window}"},
        preexec_fn=_default_sigint)
    try:
        yield process
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


async def publish_all(port: int, messages: list[tuple[str, bytes]]) -> None:
    """Publish every (topic, payload) at once, QoS 1, and wait for all the PUBACKs."""
    async with aiomqtt.Client("127.0.0.1", port, identifier=f"bench-pub-{os.getpid()}",
                              max_inflight_messages=100) as client:
        client.pending_calls_threshold = len(messages) + 1
        await asyncio.gather(*(client.publish(t, p, qos=1, timeout=120) for t, p in messages))


async def run_serve(count: int, seed: int, window: int, workdir: Path) -> dict[str, float]:
    """One burst through `serve --publish-window WINDOW`; its figures."""
    now = datetime.now(UTC)
    detections = burst(count, seed=seed, launch_time=now - timedelta(minutes=1),
                       observed_after=timedelta(minutes=1), prefix=f"burst-w{window}")
    payloads = [(topics.DETECTIONS, d.model_dump_json().encode()) for d in detections]
    db = workdir / f"serve-w{window}.db"
    with MosquittoBroker(data_dir=workdir / f"broker-w{window}") as broker:
        async with subscribed(broker.port, ALERTS, topics.SERVICE_STATUS) as subscriber:
            with serving(broker, db, window) as process:
                await wait_for(lambda: subscriber.online.is_set() or process.poll() is not None,
                               60, "serve online")
                if process.poll() is not None:
                    raise SystemExit(f"bench_burst: serve exited with {process.returncode}")
                start_wall, start = datetime.now(UTC), time.perf_counter()
                await publish_all(broker.port, payloads)
                sent = time.perf_counter() - start
                limit = 60 + count * 0.2
                await wait_for(lambda: read_db(db)["processed"] == count, limit, "all decided")
                await wait_for(lambda: read_db(db)["unpublished"] == 0, limit, "all published")
                recorded = read_db(db)
                await wait_for(lambda: len(subscriber.seen) >= recorded["alerts"], 10,
                               "every alert at the subscriber")
    last = subscriber.last_at - start
    return {"window": window, "alerts": recorded["alerts"], "sent_s": sent,
            "decided_s": (last_processed(db) - start_wall).total_seconds(),
            "time_to_last_alert_s": last, "alerts_per_s": recorded["alerts"] / last,
            "lost": recorded["alerts"] - len(subscriber.seen),
            "duplicates": subscriber.copies - len(subscriber.seen),
            "state_bytes_max": recorded["state_max"], "state_bytes_total": recorded["state_total"],
            "db": str(db)}


async def run_bare(db: Path, workdir: Path) -> dict[str, float]:
    """The same alert payloads straight from one client to the subscriber (no service)."""
    con = sqlite3.connect(db)
    rows = con.execute("SELECT topic, payload FROM outbox WHERE kind = 'alert' ORDER BY seq")
    messages = [(t, bytes(p)) for t, p in rows]
    con.close()
    with MosquittoBroker(data_dir=workdir / "broker-bare") as broker:
        async with subscribed(broker.port, ALERTS) as subscriber:
            start = time.perf_counter()
            await publish_all(broker.port, messages)
            await wait_for(lambda: len(subscriber.seen) >= len(messages), 60, "bare delivery")
    last = subscriber.last_at - start
    return {"messages": len(messages), "time_to_last_s": last,
            "messages_per_s": len(messages) / last}


def report(count: int, ours: dict[str, float], serial: dict[str, float] | None,
           bare: dict[str, float]) -> dict[str, object]:
    print(f"{count} detections at once -> {ours['alerts']:.0f} alerts, load average "
          f"{os.getloadavg()[0]:.2f}")
    print(f"{'':34}{'last alert s':>13}{'alerts/s':>10}{'decided s':>11}{'lost':>6}{'dup':>5}")
    runs = [("serve, window 64", ours)] + ([("serve, serial pump (baseline)", serial)]
                                          if serial else [])
    for name, r in runs:
        print(f"{name:34}{r['time_to_last_alert_s']:13.3f}{r['alerts_per_s']:10.0f}"
              f"{r['decided_s']:11.3f}{r['lost']:6.0f}{r['duplicates']:5.0f}")
    print(f"{'bare broker, same payloads':34}{bare['time_to_last_s']:13.3f}"
          f"{bare['messages_per_s']:10.0f}")
    print(f"largest state message {ours['state_bytes_max']:.0f} B; all states "
          f"{ours['state_bytes_total'] / 1e6:.2f} MB")
    target = TARGETS_S.get(count)
    met = target is not None and ours["time_to_last_alert_s"] <= target and ours["lost"] == 0
    if target is not None:
        print(f"target {count} within {target:g} s, none lost: {'met' if met else 'NOT met'}")
    figures: dict[str, object] = {
        "bench": "burst", "detections": count, "alerts": ours["alerts"],
        "time_to_last_alert_s": round(ours["time_to_last_alert_s"], 3),
        "alerts_per_s": round(ours["alerts_per_s"]), "decided_s": round(ours["decided_s"], 3),
        "lost": ours["lost"], "duplicates": ours["duplicates"],
        "state_bytes_max": ours["state_bytes_max"], "state_bytes_total": ours["state_bytes_total"],
        "baseline_bare_broker_s": round(bare["time_to_last_s"], 3),
        "target_s": target, "target_met": met}
    if serial:
        figures |= {"baseline_serial_s": round(serial["time_to_last_alert_s"], 3),
                    "baseline_serial_alerts_per_s": round(serial["alerts_per_s"]),
                    "speedup_vs_serial": round(serial["time_to_last_alert_s"]
                                               / ours["time_to_last_alert_s"], 2)}
    return figures


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--detections", type=int, default=100)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--window", type=int, default=64)
    parser.add_argument("--no-serial", action="store_true", help="skip the serial baseline")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-burst-") as tmp:
        workdir = Path(tmp)
        ours = await run_serve(args.detections, args.seed, args.window, workdir)
        serial = None if args.no_serial else await run_serve(args.detections, args.seed, 1,
                                                             workdir)
        bare = await run_bare(Path(str(ours["db"])), workdir)
    print(json.dumps(report(args.detections, ours, serial, bare)))


if __name__ == "__main__":
    asyncio.run(main())
