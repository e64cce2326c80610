"""A national-scale drill: one detection warning 30+ prefectures, N receivers, x60 clock.

Run: python benchmarks/bench_wide_drill.py --receivers 20000 [--brokers 2] [--speed 60]

`alertsim drill benchmarks/scenarios/wide-overflight.yaml --receivers N` as the issue asks
for it, with one change of topology when N is large: one Mosquitto process holds at most
as many connections as it has file handles (20,000 here, a hard limit this machine will
not raise), so `--brokers 2` starts a second Mosquitto bridged from the first (it copies
`alertsim/#` in) and the drill's process fleet spreads its shards over both. The service,
the 47 reference receivers and the timeline use the first broker.

Printed: the fleet's own lines (receivers subscribed and connect time; deliveries, missed,
duplicates, wrong-area, p99 after `sent-at`), then one JSON line with the report's
verdict and totals (deliveries, missed, duplicates over every place; its failures). No
baseline: this is a pass/fail run at scale; bench_fanout.py holds the side-by-side figures.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import json
import resource
import tempfile
import time
from pathlib import Path
from typing import Any

from alertsim.brokers.brokers import MosquittoBroker
from alertsim.drills.runner import DrillOptions, run_drill
from alertsim.logs import configure_logging

SCENARIO = Path(__file__).resolve().parent / "scenarios" / "wide-overflight.yaml"


def raise_file_limit() -> int:
    """The open-file limit raised to the hard limit (the brokers inherit it)."""
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


async def run(receivers: int, brokers: int, speed: float) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp, contextlib.ExitStack() as stack:
        first = stack.enter_context(MosquittoBroker(persistence=False))
        more = [stack.enter_context(MosquittoBroker(
            persistence=False, bridge_from=f"127.0.0.1:{first.port}"))
            for _ in range(brokers - 1)]
        out = io.StringIO()
        started = time.perf_counter()
        outcome = await run_drill(DrillOptions(
            scenario_path=SCENARIO, speed=speed, broker_url=first.url,
            extra_receivers=receivers - 47, reports_dir=Path(tmp),
            fleet_urls=tuple(b.url for b in more), out=out))
        wall_s = time.perf_counter() - started
        report = outcome.report
        printed = out.getvalue()
    places = (*report.per_prefecture, report.national)
    warned = [p for p in report.per_prefecture if p.sent]
    return {"bench": "wide_drill", "receivers": receivers, "brokers": brokers,
            "speed": speed, "passed": outcome.passed, "wall_s": round(wall_s, 1),
            "prefectures_warned": len(warned),
            "deliveries": sum(p.deliveries for p in places),
            "missed": sum(p.missed for p in places),
            "duplicates": sum(p.duplicates for p in places),
            "failures": list(report.failures),
            "printed": [line for line in printed.splitlines() if "fleet:" in line]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--receivers", type=int, default=20_000)
    parser.add_argument("--brokers", type=int, default=2)
    parser.add_argument("--speed", type=float, default=60.0)
    args = parser.parse_args()
    configure_logging(level="warning")
    limit = raise_file_limit()
    print(f"open-file limit {limit}; {args.receivers} receivers over {args.brokers} "
          f"broker(s); {SCENARIO.name} at x{args.speed:g}")
    figures = asyncio.run(run(args.receivers, args.brokers, args.speed))
    for line in figures.pop("printed"):
        print(line)
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
