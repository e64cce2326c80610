"""Run every benchmark once and write benchmarks/RESULTS.md from their JSON lines.

Run: python benchmarks/results.py [--out benchmarks/RESULTS.md] [--skip NAME ...]

Runs, one after another (each in its own process, so none slows another):

    decide        bench_decide.py
    burst-100     bench_burst.py --detections 100
    burst-1000    bench_burst.py --detections 1000
    replay        bench_replay.py (x60)
    fanout-1000   bench_fanout.py --receivers 1000     (when bench_fanout.py exists)
    fanout-10000  bench_fanout.py --receivers 10000

Each benchmark prints its figures beside a baseline measured in the same run and ends
with one JSON line; RESULTS.md gets a description of the machine and the date, a summary
table of the figures against the issue's targets, and every benchmark's own output. A
benchmark that fails is reported as failed (with the end of its output), not left out.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
TIMEOUT_S = 1800


@dataclass
class Run:
    name: str
    argv: list[str]
    figures: dict[str, Any] | None = None
    output: str = ""
    seconds: float = 0.0
    error: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


def planned() -> list[Run]:
    py = sys.executable
    runs = [Run("decide", [py, str(HERE / "bench_decide.py")]),
            Run("burst-100", [py, str(HERE / "bench_burst.py"), "--detections", "100"]),
            Run("burst-1000", [py, str(HERE / "bench_burst.py"), "--detections", "1000"]),
            Run("replay", [py, str(HERE / "bench_replay.py")])]
    if (HERE / "bench_fanout.py").exists():
        runs += [Run(f"fanout-{n}", [py, str(HERE / "bench_fanout.py"), "--receivers", str(n)])
                 for n in (1000, 10000)]
    return runs


def execute(run: Run) -> None:
    print(f"== {run.name}: {' '.join(Path(a).name if a.endswith('.py') else a for a in run.argv)}",
          flush=True)
    started = time.perf_counter()
    try:
        done = subprocess.run(run.argv, capture_output=True, text=True, timeout=TIMEOUT_S,
                              stdin=subprocess.DEVNULL, check=False, cwd=HERE.parent)
    except subprocess.TimeoutExpired as exc:
        run.error = f"timed out after {TIMEOUT_S} s"
        run.output = (exc.stdout or b"").decode() if isinstance(exc.stdout, bytes) else ""
        return
    finally:
        run.seconds = time.perf_counter() - started
    run.output = done.stdout
    lines = [line for line in done.stdout.splitlines() if line.strip()]
    try:
        run.figures = json.loads(lines[-1]) if lines else None
    except json.JSONDecodeError:
        run.figures = None
    if done.returncode != 0 or run.figures is None:
        tail = "\n".join((done.stdout + done.stderr).splitlines()[-15:])
        run.error = f"exit {done.returncode}, no JSON figures\n{tail}"
    print(run.output if not run.error else run.error, flush=True)


def _read(path: str) -> str:
    try:
        return Path(path).read_text("utf-8")
    except OSError:
        return ""


def machine() -> list[tuple[str, str]]:
    cpu = next((line.split(":", 1)[1].strip() for line in _read("/proc/cpuinfo").splitlines()
                if line.startswith("model name")), platform.processor() or "unknown")
    memory = next((line.split(":", 1)[1].strip() for line in _read("/proc/meminfo").splitlines()
                   if line.startswith("MemTotal")), "unknown")
    mosquitto = "not found"
    binary = shutil.which("mosquitto") or next(
        (p for p in ("/usr/sbin/mosquitto", "/sbin/mosquitto") if Path(p).exists()), None)
    if binary:
        version = subprocess.run([binary, "-h"], capture_output=True, text=True, check=False)
        mosquitto = next((line for line in (version.stdout + version.stderr).splitlines()
                          if "version" in line), "unknown version")
    os_name = next((line.split("=", 1)[1].strip('"') for line in
                    _read("/etc/os-release").splitlines() if line.startswith("PRETTY_NAME")),
                   platform.platform())
    return [("date (UTC)", datetime.now(UTC).strftime("%Y-%m-%d %H:%M")),
            ("OS", f"{os_name}, kernel {platform.release()}"),
            ("CPU", f"{cpu}, {os.cpu_count()} logical cores"),
            ("memory", memory),
            ("Python", platform.python_version()),
            ("broker", mosquitto),
            ("load average at start", " ".join(f"{x:.2f}" for x in os.getloadavg())),
            ("note", "a shared machine: other work may run at the same time; figures are "
                     "indicative, the baselines beside them were measured in the same run")]


def _fmt(value: Any, unit: str = "") -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "met" if value else "**missed**"
    if isinstance(value, float):
        return f"{value:g}{unit}"
    return f"{value}{unit}"


def summary_rows(runs: list[Run]) -> list[tuple[str, ...]]:
    """(benchmark, figure, alertsim, baseline, target, met) for the summary table."""
    rows: list[tuple[str, ...]] = []
    for run in runs:
        f = run.figures
        if f is None:
            rows.append((run.name, "failed", "-", "-", "-", "-"))
            continue
        if run.name == "decide":
            rows.append((run.name, "decision p99 (median)",
                         f"{_fmt(f['p99_ms'], ' ms')} ({_fmt(f['median_ms'], ' ms')})",
                         f"{_fmt(f['baseline_p99_ms'], ' ms')} naive decide",
                         "p99 <= 2 ms", _fmt(f.get("target_met"))))
        elif run.name.startswith("burst"):
            serial = f.get("baseline_serial_s")
            rows.append((run.name, f"{f['detections']} detections -> {f['alerts']} alerts: "
                         f"last alert, alerts/s, lost",
                         f"{_fmt(f['time_to_last_alert_s'], ' s')}, {f['alerts_per_s']}/s, "
                         f"lost {f['lost']}",
                         f"serial pump {_fmt(serial, ' s')}; bare broker "
                         f"{_fmt(f['baseline_bare_broker_s'], ' s')}",
                         f"<= {_fmt(f['target_s'], ' s')}, none lost",
                         _fmt(f.get("target_met"))))
        elif run.name == "replay":
            rows.append((run.name, f"x{f['speed']:g} error p50 / p99 / max ({f['messages']} msgs)",
                         f"{f['p50_ms']} / {f['p99_ms']} / {f['max_ms']} ms",
                         f"asyncio.sleep alone {f['baseline_p50_ms']} / {f['baseline_p99_ms']}"
                         f" / {f['baseline_max_ms']} ms", "<= 50 ms", _fmt(f.get("target_met"))))
        elif run.name.startswith("fanout"):
            met = f["p99_ms"] <= 300 and f.get("ratio", 99) <= 1.5
            rows.append((run.name, f"{f['receivers']} receivers: last-receiver p99, connect",
                         f"{_fmt(f['p99_ms'], ' ms')}, connect {_fmt(f.get('connect_s'), ' s')}",
                         f"bare broker p99 {_fmt(f.get('baseline_p99_ms'), ' ms')} "
                         f"(ratio {_fmt(f.get('ratio'))})",
                         "p99 <= 300 ms and <= 1.5x baseline (10,000)",
                         _fmt(met) if f["receivers"] >= 10000 else "-"))
    return rows


def render(runs: list[Run], about: list[tuple[str, str]]) -> str:
    out = ["# Benchmark results", "",
           "Written by `python benchmarks/results.py` (do not edit by hand); each benchmark "
           "also runs on its own with the command shown.", "", "## Machine", "",
           "| | |", "|---|---|"]
    out += [f"| {k} | {v} |" for k, v in about]
    out += ["", "## Summary", "",
            "| benchmark | figure | alertsim | baseline (same run) | target | |",
            "|---|---|---|---|---|---|"]
    out += ["| " + " | ".join(row) + " |" for row in summary_rows(runs)]
    for run in runs:
        command = " ".join(f"benchmarks/{Path(a).name}" if a.endswith(".py") else a
                           for a in run.argv[1:])
        out += ["", f"## {run.name}", "", f"`python {command}` ({run.seconds:.0f} s)", ""]
        if run.error:
            out += ["**Failed**:", "", "```", run.error, "```"]
        else:
            out += ["```", run.output.rstrip(), "```"]
    return "\n".join(out) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=HERE / "RESULTS.md")
    parser.add_argument("--skip", action="append", default=[], metavar="NAME")
    args = parser.parse_args()
    about = machine()
    runs = [r for r in planned() if r.name not in args.skip]
    for run in runs:
        execute(run)
    args.out.write_text(render(runs, about), "utf-8")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
