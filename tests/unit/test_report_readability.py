"""The drill report reads well as a new user would meet it: short lines, numbered timeline,
JST times, outside subscribers named as such, clear errors and a quiet `| head`."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest

from alertsim.adapters.sqlite.store import Store
from alertsim.cli import main
from alertsim.domain import topics
from alertsim.drills.report import build_report, render_markdown
from alertsim.drills.report.render import MAX_LINE
from alertsim.service.records import OutboxMessage
from tests.helpers import restore_sigint
from tests.unit.test_report import (
    EXPECT_01,
    REAL_T0,
    ack,
    hokkaido_drill,
    record_drill,
    send,
)

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = Path(sys.executable).with_name("alertsim")
CHOLLIMA = ROOT / "scenarios" / "2023-11-21-chollima-1.yaml"
LONG_EVENT = "e" * 64  # the longest event id the contract allows


@pytest.fixture
async def store(tmp_path: Path):  # type: ignore[no-untyped-def]
    async with await Store.open(tmp_path / "drill.db") as opened:
        yield opened


async def wide_drill(store: Store) -> None:
    """A drill with everything that makes lines long: 64-character event ids and
    identifiers, many receivers that disagree, a failure line per receiver."""
    receivers = {f"rx-{n:04d}-with-a-long-client-name": ["01"] for n in range(12)}
    await record_drill(store, expect=EXPECT_01, receivers=receivers)
    for n, stage in enumerate(("shelter", "passed", "cancel"), start=1):
        ident = f"alertsim.3f86974b.{LONG_EVENT}.{n:04d}.{stage}.01.9c1d2e3f4a5b6c7d"
        created = await send(store, ident, stage, "01", at_s=60.0 * n,  # type: ignore[arg-type]
                             event_id=LONG_EVENT)
        for i, client in enumerate(receivers):
            if i % (n + 1):
                await ack(store, client, ident, created, 10 * n + i)


async def test_no_markdown_line_is_longer_than_160(store: Store) -> None:
    """However long the ids and however many receivers disagree, no line exceeds 160."""
    await wide_drill(store)
    report = await build_report(store)
    for compact in (False, True):
        text = render_markdown(report, compact=compact)
        longest = max(text.splitlines(), key=len)
        assert len(longest) <= MAX_LINE, longest
    assert LONG_EVENT in text  # nothing was cut away
    assert report.timeline[0].identifier in text


async def test_an_ordinary_report_keeps_its_tables(store: Store) -> None:
    """Short rows stay Markdown tables (the list form is only for rows too wide)."""
    await hokkaido_drill(store)
    text = render_markdown(await build_report(store))
    assert "| # | Sim time | Created (real) | Event | Prefecture | Stage | msgType | Published |" in text
    assert "| # | Identifier | Topic |" in text
    assert max(map(len, text.splitlines())) <= MAX_LINE


async def test_subscriber_outside_the_fleet_is_named_as_such(store: Store) -> None:
    """A client that is not one of the drill's receivers (say `alertsim subscribe` on the
    drill's root) is listed as outside the fleet, not as "(not subscribed)"."""
    created = await hokkaido_drill(store)
    await ack(store, "operator-laptop", "A1", created["shelter"], 40)
    await ack(store, "rx-x01", "A2", created["passed"], 50)  # fleet, but given Tokyo only
    report = await build_report(store)
    hokkaido = report.per_prefecture[0]
    outside = next(r for r in hokkaido.receivers if r.client_id == "operator-laptop")
    stray = next(r for r in hokkaido.receivers if r.client_id == "rx-x01")
    assert (outside.outside_fleet, outside.missed) == (True, ())
    assert (stray.outside_fleet, stray.subscribed) == (False, False)
    text = render_markdown(report)
    assert "operator-laptop (outside the drill's fleet): shelter" in text
    assert "rx-x01 (not subscribed): passed" in text
    assert "operator-laptop (not subscribed)" not in text
    assert "- Subscribers outside the drill's fleet: operator-laptop" in text
    assert report.passed is True  # an outside subscriber does not change the verdict


async def test_timeline_is_numbered_1_2_3_between_other_outbox_rows(store: Store) -> None:
    """Retained-state rows interleave with alerts in the outbox; the report counts alerts."""
    await record_drill(store, expect=EXPECT_01, receivers={"rx-01": ["01"]})
    for n, stage in enumerate(("shelter", "passed", "cancel"), start=1):
        await store.record.enqueue([OutboxMessage(
            message_id=f"state-{n}", event_id=None, kind="state", prefecture="01",
            stage=None, topic=topics.V1.state("exercise", "01"), payload=b"", qos=1,
            retain=True, sim_time=None, created_at=REAL_T0 + timedelta(seconds=n))])
        await send(store, f"A{n}", stage, "01", at_s=60.0 * n)  # type: ignore[arg-type]
    report = await build_report(store)
    assert [e.seq for e in report.timeline] != [1, 2, 3]  # the outbox's own numbers jump
    text = render_markdown(report)
    numbers = re.findall(r"^\| (\d+) \| \d{4}-", text, re.MULTILINE)
    assert numbers == ["1", "2", "3"]
    assert re.findall(r"^\| (\d+) \| A\d \|", text, re.MULTILINE) == ["1", "2", "3"]


async def test_folded_line_counts_prefectures_only(store: Store) -> None:
    """The console summary folds quiet rows: prefectures are counted, national is named."""
    await hokkaido_drill(store)  # 01 and 13 have receivers; 13 and national stay quiet
    compact = render_markdown(await build_report(store), compact=True)
    assert "1 other prefecture(s) and the national topic: nothing sent" in compact
    assert "2 other place(s)" not in compact


async def test_every_time_is_jst_without_microseconds(store: Store) -> None:
    """Started, sim and real times all read +09:00, to the second or millisecond."""
    await record_drill(store, expect=EXPECT_01, receivers={"rx-01": ["01"]},
                       started_at=REAL_T0 + timedelta(microseconds=123456))
    await send(store, "A1", "shelter", "01", at_s=0.654321)
    report = await build_report(store)
    text = render_markdown(report)
    stamps = re.findall(r"\d{4}-\d\d-\d\dT[\d:.]+(?:[+-]\d\d:\d\d|Z)?", text)
    assert len(stamps) >= 3, stamps
    assert all(s.endswith("+09:00") for s in stamps), stamps
    assert not re.search(r"\d{2}:\d{2}:\d{2}\.\d{4,}", text)
    assert "- Started: 2025-06-01T10:00:00+09:00" in text
    assert "| 2025-06-01T10:00:00.654+09:00 |" in text


def test_unknown_event_exits_2_naming_the_known_ones(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`alertsim report DB --event UNKNOWN` exits 2 and lists the events recorded."""
    db = tmp_path / "drill.db"

    async def fill() -> None:
        async with await Store.open(db) as store:
            await hokkaido_drill(store)

    asyncio.run(fill())
    assert main(["report", str(db), "--event", "nope"]) == 2
    err = capsys.readouterr().err
    assert f"alertsim report: invalid input in {db}:" in err
    assert "event: no event 'nope' in this record (recorded: synthetic-false-alarm)" in err
    assert main(["report", str(db), "--event", "synthetic-false-alarm"]) == 0


def test_report_into_head_exits_quietly(tmp_path: Path) -> None:
    """`alertsim report DB | head -n 3` through a real pipe: head's three lines, and no
    BrokenPipe traceback from alertsim (the report is larger than a pipe's buffer)."""
    db = tmp_path / "big.db"

    async def fill() -> None:
        async with await Store.open(db) as store:
            await record_drill(store, expect=EXPECT_01, receivers={"rx-01": ["01"]})
            for n in range(600):
                await send(store, f"A{n:04d}", "shelter", "01", at_s=float(n))

    asyncio.run(fill())
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    with subprocess.Popen([SCRIPT, "report", str(db)], stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, env=env, preexec_fn=restore_sigint) as report:
        assert report.stdout is not None
        assert report.stderr is not None
        head = subprocess.run(["head", "-n", "3"], stdin=report.stdout, capture_output=True,
                              text=True, timeout=60, check=True)
        report.stdout.close()
        err = report.stderr.read().decode()
        report.wait(timeout=60)
    assert head.stdout.startswith("# Drill report: Synthetic test drill\n")
    assert len(head.stdout.splitlines()) == 3
    assert "Traceback" not in err
    assert "BrokenPipe" not in err
    assert err == ""


def test_dry_run_prints_expectations_in_words(capsys: pytest.CaptureFixture[str]) -> None:
    """The dry run says what was expected and sent per prefecture, not Python reprs."""
    assert main(["drill", str(CHOLLIMA), "--dry-run"]) == 0
    out = capsys.readouterr().out
    tail = out.split("expectations: ", 1)[1]
    assert tail.startswith("met\n")
    assert "  47: sent shelter, passed (as expected)" in tail
    assert "record: matched" in tail
    assert "  silent, the 46 other prefecture(s): nothing sent (as expected)" in tail
    assert "  national: no national message was sent (as expected)" in tail
    assert not re.search(r"[{}\[\]']|True|False", tail), tail


def test_failed_dry_run_says_what_differs(tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    """A wrong expectation is named with what was sent instead."""
    wrong = tmp_path / "wrong.yaml"
    wrong.write_text(CHOLLIMA.read_text("utf-8").replace(
        '"47": [shelter, passed]', '"47": [shelter, cancel]'), "utf-8")
    assert main(["drill", str(wrong), "--dry-run"]) == 1
    out = capsys.readouterr().out
    assert "expectations: NOT met" in out
    assert "  47: sent shelter, passed (expected shelter, cancel)" in out
