"""Dashboard load: does a crowd of dashboard pages delay alerts? (issue 17)

Run: python benchmarks/bench_dashboard_load.py [--events 50] [--readers 300] [--stalled 200]
     [--gap 0.25] [--rounds 3] [--where process|loop]

A Mosquitto (`MosquittoBroker`, free port) carries everything; the service runs in this
process with its MQTT link and SQLite record, as `alertsim serve --dashboard` runs it
(a fresh service, record and topic root for every phase),
with the live dashboard beside it (`--where process`: its own process, the default;
`loop`: in the service's event loop, the old place, for comparison). Two phases, taken
in turn `--rounds` times in this run (quiet, loaded, quiet, loaded, ...), so that a change
in the machine's load falls on both; each phase's samples are pooled:

  no clients   the dashboard open, no page connected
  N clients    `--stalled` streams that connect to /api/stream and never read (receive
               buffer 4 KB) and `--readers` that read everything, all in a process of
               their own

In each phase a probe process (sensor and subscriber: aiomqtt, its own process) publishes
`--events` detections of distinct events across Japan (`alertsim.testing.bursts`), one
every `--gap` s, and takes the first alert of each event from `{root}/exercise/alerts/#`.
Latency = the alert's arrival - the detection's publish, wall clock in the probe process.
A first, unmeasured phase warms the caches, so the baseline is not slowed by them.
Printed: p50/p99/max per phase and per round, the ratio of the pooled p99s (target: within
1.2x), what the crowd saw (frames, bytes, stalled streams dropped), and one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import multiprocessing
import os
import socket
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import aiomqtt

from alertsim.adapters.mqtt.link import run_link
from alertsim.adapters.sqlite.store import Store
from alertsim.brokers.brokers import MosquittoBroker
from alertsim.data import load_atlas
from alertsim.domain.topics import TopicTree
from alertsim.logs import configure_logging
from alertsim.service.clock import ScaledClock
from alertsim.service.config import ServiceConfig
from alertsim.service.service import Service
from alertsim.testing import DEFAULT_LAUNCH_TIME
from alertsim.testing.bursts import burst
from alertsim.web.dashboard import live_dashboard

TARGET_RATIO = 1.2


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(len(ordered) * q / 100) - 1)]


def figures(values: list[float]) -> dict[str, float]:
    return {"p50_ms": round(percentile(values, 50), 1), "p99_ms": round(percentile(values, 99), 1),
            "max_ms": round(max(values), 1), "n": len(values)}


# -- the probe: sensor and subscriber, in a process of their own --------------------------

def probe(port: int, root: str, detections: list[bytes], gap_s: float, out: Connection) -> None:
    out.send(asyncio.run(_probe(port, root, detections, gap_s)))


async def _probe(port: int, root: str, detections: list[bytes], gap_s: float) -> list[float]:
    sent: dict[str, float] = {}
    got: dict[str, float] = {}
    every = asyncio.Event()
    async with aiomqtt.Client("127.0.0.1", port, identifier=f"probe-{uuid.uuid4().hex[:8]}",
                              protocol=aiomqtt.ProtocolVersion.V5) as client:
        await client.subscribe(f"{root}/exercise/alerts/#", qos=1)

        async def listen() -> None:
            async for message in client.messages:
                assert isinstance(message.payload, bytes)
                event_id = json.loads(message.payload)["alertsim"]["event_id"]
                got.setdefault(event_id, time.time())
                if len(got) == len(detections):
                    every.set()

        listener = asyncio.create_task(listen())
        for raw in detections:
            event_id = json.loads(raw)["event_id"]
            sent[event_id] = time.time()
            await client.publish(f"{root}/detections", raw, qos=1)
            await asyncio.sleep(gap_s)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(60):
                await every.wait()
        listener.cancel()
    return [(got[e] - t) * 1000 for e, t in sent.items() if e in got]


# -- the crowd: readers and stalled streams, in a process of their own --------------------

def crowd(port: int, readers: int, stalled: int, control: Connection) -> None:
    control.send(asyncio.run(_crowd(port, readers, stalled, control)))


async def _crowd(port: int, readers: int, stalled: int, control: Connection) -> dict[str, Any]:
    seen = {"bytes": 0, "frames": 0, "ended": 0}
    request = b"GET /api/stream HTTP/1.1\r\nHost: bench\r\n\r\n"

    snapshots = asyncio.Semaphore(0)  # released once per reader that has its snapshot

    async def read() -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(request)
        first = True
        while chunk := await reader.read(65536):
            if first and b"snapshot" in chunk:
                first = False
                snapshots.release()
            seen["bytes"] += len(chunk)
            seen["frames"] += chunk.count(b"\ndata: ")  # also behind a chunk-size line
        seen["ended"] += 1

    stuck = []
    for _ in range(stalled):
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.connect(("127.0.0.1", port))
        sock.sendall(request)
        stuck.append(sock)
    tasks = [asyncio.create_task(read()) for _ in range(readers)]
    for _ in range(readers):  # every reading page has its snapshot: the crowd is settled
        await snapshots.acquire()
    control.send("ready")
    await asyncio.to_thread(control.recv)  # "stop"
    dropped = sum(_was_dropped(s) for s in stuck)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    return seen | {"stalled_dropped": dropped, "stalled": stalled, "readers": readers}


def _was_dropped(sock: socket.socket) -> bool:
    """Read what is left: a dropped stream ends (reset or EOF) once its buffer is read."""
    sock.settimeout(0.02)
    try:
        while sock.recv(1 << 20):
            pass
    except TimeoutError:
        return False
    except OSError:
        return True
    finally:
        sock.close()
    return True


# -- the service and the phases -------------------------------------------------------------

@contextlib.asynccontextmanager
async def service_on(url: str, tree: TopicTree, db: Path) -> AsyncIterator[Service]:
    atlas = load_atlas()
    atlas.warm_up()
    async with await Store.open(db) as store:
        service = Service(atlas=atlas, store=store.record,
                          clock=ScaledClock(start=DEFAULT_LAUNCH_TIME + timedelta(minutes=2)),
                          config=ServiceConfig(status="exercise", national_info=True,
                                               topics=tree))
        connected = asyncio.Event()
        link = asyncio.create_task(run_link(service, url=url, protocol="5",
                                            client_id=f"bench-svc-{uuid.uuid4().hex[:6]}",
                                            connected=connected))
        try:
            await asyncio.wait_for(connected.wait(), 15)
            yield service
        finally:
            link.cancel()
            await asyncio.gather(link, return_exceptions=True)


async def phase(broker: MosquittoBroker, tmp: Path, args: argparse.Namespace,
                clients: bool, name: str) -> dict[str, Any]:
    """One phase on a service of its own (its own record and topic root), so every phase
    starts from the same state: on one service, each phase's 50 open events would slow
    the next phase's decisions, and the later phase of a pair would pay for it."""
    spawn = multiprocessing.get_context("spawn")
    root = f"bench/dashboard/{uuid.uuid4().hex[:8]}"
    detections = [d.model_dump_json(exclude_none=True).encode()
                  for d in burst(args.events, seed=11, prefix=f"{name}-{uuid.uuid4().hex[:4]}")]
    async with service_on(broker.url, TopicTree(root), tmp / f"{name}.db") as service, \
            live_dashboard(service, port=0, isolated=args.where == "process") as url:
        port = int(url.rstrip("/").rsplit(":", 1)[1])
        control, far = spawn.Pipe()
        crowd_process = None
        if clients:
            crowd_process = spawn.Process(target=crowd, args=(port, args.readers,
                                                               args.stalled, far))
            crowd_process.start()
            assert await asyncio.to_thread(control.recv) == "ready"  # every reader is served
        result, sink = spawn.Pipe(duplex=False)
        prober = spawn.Process(target=probe, args=(broker.port, root, detections,
                                                   args.gap, sink))
        prober.start()
        latencies: list[float] = await asyncio.to_thread(result.recv)
        await asyncio.to_thread(prober.join)
        seen: dict[str, Any] = {}
        if crowd_process is not None:
            control.send("stop")
            seen = await asyncio.to_thread(control.recv)
            await asyncio.to_thread(crowd_process.join)
    return {"latencies": latencies, "lost": args.events - len(latencies), "crowd": seen}


def pooled(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    every = [ms for r in rounds for ms in r["latencies"]]
    crowd_seen: dict[str, Any] = {}
    for r in rounds:
        for key, value in r["crowd"].items():
            crowd_seen[key] = crowd_seen.get(key, 0) + value
    return {"latency": figures(every), "lost": sum(r["lost"] for r in rounds),
            "crowd": crowd_seen, "rounds": [figures(r["latencies"]) for r in rounds]}


async def bench(args: argparse.Namespace) -> dict[str, Any]:
    quiet: list[dict[str, Any]] = []
    loaded: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp, MosquittoBroker() as broker:
        broker.start()
        # Unmeasured: the first detections pay for cold caches (projections, imports);
        # measured first, that cost would land in the quiet baseline.
        await phase(broker, Path(tmp), args, clients=False, name="warm-up")
        for n in range(args.rounds):
            quiet.append(await phase(broker, Path(tmp), args, clients=False, name=f"quiet{n}"))
            loaded.append(await phase(broker, Path(tmp), args, clients=True, name=f"loaded{n}"))
    return {"quiet": pooled(quiet), "loaded": pooled(loaded)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=50)
    parser.add_argument("--readers", type=int, default=300)
    parser.add_argument("--stalled", type=int, default=200)
    parser.add_argument("--gap", type=float, default=0.25)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--where", choices=("process", "loop"), default="process")
    args = parser.parse_args()
    configure_logging("console", "warning")
    got = asyncio.run(bench(args))
    quiet, loaded = got["quiet"]["latency"], got["loaded"]["latency"]
    crowd_seen = got["loaded"]["crowd"]
    ratio = round(loaded["p99_ms"] / quiet["p99_ms"], 2) if quiet["p99_ms"] > 0 else None
    print(f"{args.events} detections across Japan, one every {args.gap:g} s; dashboard "
          f"{'in the service loop' if args.where == 'loop' else 'in its own process'}; "
          f"load average {os.getloadavg()[0]:.2f}")
    print(f"{'detection -> first alert':>34} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8} "
          f"{'n':>5} lost   p99 per round")
    clients = args.readers + args.stalled
    for label, key in (("0 dashboard clients", "quiet"),
                       (f"{clients} clients ({args.stalled} stalled)", "loaded")):
        row, per_round = got[key]["latency"], [r["p99_ms"] for r in got[key]["rounds"]]
        print(f"{label:>34} {row['p50_ms']:>8} {row['p99_ms']:>8} {row['max_ms']:>8} "
              f"{row['n']:>5} {got[key]['lost']:>4}   {per_round}")
    met = ratio is not None and ratio <= TARGET_RATIO
    print(f"p99 ratio loaded / quiet: {ratio} (target <= {TARGET_RATIO}: "
          f"{'met' if met else 'missed'})")
    print(f"crowd over {args.rounds} rounds: {crowd_seen.get('frames')} frames, "
          f"{crowd_seen.get('bytes')} bytes to {crowd_seen.get('readers')} reading pages "
          f"({crowd_seen.get('ended')} ended early); stalled streams dropped: "
          f"{crowd_seen.get('stalled_dropped')} of {crowd_seen.get('stalled')}")
    print(json.dumps({"bench": "dashboard_load", "where": args.where, "events": args.events,
                      "rounds": args.rounds,
                      "clients": clients, "quiet": quiet, "loaded": loaded, "ratio_p99": ratio,
                      "target_met": met, "crowd": crowd_seen,
                      "load_average": round(os.getloadavg()[0], 2)}))


if __name__ == "__main__":
    main()
