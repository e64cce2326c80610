"""`alertsim conformance` against the reference receiver (all pass) and against a naive
client written here (no de-duplication, no reference handling, deaf to the control topic):
the de-duplication, reference and late-join checks fail, each with a clear reason."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path

import aiomqtt
import pytest

from alertsim.brokers.brokers import MosquittoBroker
from alertsim.cli.conformance import render_table
from alertsim.clients.receiver import Receiver, ReceiverOptions
from alertsim.conformance.runner import ConformanceOptions, run_conformance
from alertsim.domain.messages import Alert, PlaceEvent, Receipt
from alertsim.domain.topics import TopicTree
from alertsim.testing import eventually
from tests.helpers import restore_sigint, running

pytestmark = pytest.mark.mosquitto

SCRIPT = Path(sys.executable).with_name("alertsim")
ROOT = Path(__file__).resolve().parents[2]


def _tree() -> TopicTree:
    return TopicTree(f"test/conformance/{uuid.uuid4().hex[:8]}")


async def test_reference_receiver_passes_every_check(mosquitto: MosquittoBroker) -> None:
    """The reference receiver (the one `alertsim subscribe` runs) passes all checks."""
    tree, client_id = _tree(), f"ref-{uuid.uuid4().hex[:8]}"
    receiver = Receiver(ReceiverOptions(url=mosquitto.url, protocol="5", client_id=client_id,
                                        codes=["13"], status="test", tree=tree, control=True))
    async with running(receiver):
        report = await run_conformance(ConformanceOptions(
            url=mosquitto.url, client_id=client_id, code="13", tree=tree))
    table = render_table(report)
    assert report.passed, table
    assert [c.check for c in report.checks] == [
        "stage shelter", "stage imminent", "stage fell_land", "stage passed",
        "stage fell_sea", "stage cancel", "stage national", "de-duplication",
        "references (Update before its Alert)", "late join (retained state)",
        "receipt schema"]
    assert "held until its Alert" in table
    assert receiver.sessions == 2  # it really left and came back once


async def test_signed_run_against_a_trusting_receiver(mosquitto: MosquittoBroker) -> None:
    """With a signing key (MQTT 5 user properties: conformance speaks what the broker
    offers), a receiver that trusts only that key passes everything and rejects nothing."""
    from alertsim.signing import generate

    key = generate()
    tree, client_id = _tree(), f"signed-{uuid.uuid4().hex[:8]}"
    receiver = Receiver(ReceiverOptions(url=mosquitto.url, protocol="5", client_id=client_id,
                                        codes=["13"], status="test", tree=tree, control=True,
                                        trust=key.trusted()))
    async with running(receiver):
        report = await run_conformance(ConformanceOptions(
            url=mosquitto.url, client_id=client_id, code="13", tree=tree, signer=key))
    assert report.passed, render_table(report)
    assert receiver.rejected == []


@asynccontextmanager
async def _naive_client(url: str, tree: TopicTree, client_id: str, code: str, *,
                        leaves: bool = False) -> AsyncIterator[None]:
    """A client as many first drafts are: shows everything it gets, at once, and believes
    the last thing shown; ignores the state topic, and the control topic too (or, with
    `leaves`, disconnects when told to rejoin and never comes back)."""
    ready = asyncio.Event()

    async def run() -> None:
        async with aiomqtt.Client("127.0.0.1", int(url.rsplit(":", 1)[1]),
                                  identifier=client_id) as client:
            await client.subscribe([(tree.alerts("test", code), 1),
                                    (tree.alerts("test", None), 1),
                                    (tree.conformance_control(client_id), 1)])
            ready.set()
            async for message in client.messages:
                if not message.topic.matches(tree.alerts("test", "+")):
                    if leaves:
                        return
                    continue  # the control topic: not listened to
                assert isinstance(message.payload, bytes)
                alert = Alert.model_validate_json(message.payload)
                receipt = Receipt(
                    client_id=client_id, identifier=alert.identifier,
                    received_at=datetime.now(UTC), prefecture=alert.prefecture,
                    stage=alert.stage, outcome="shown",
                    belief=PlaceEvent(event_id=alert.alertsim.event_id, stage=alert.stage,
                                      identifier=alert.identifier,
                                      sheltering=alert.stage in ("shelter", "imminent")))
                await client.publish(tree.receipts(client_id),
                                     receipt.model_dump_json().encode(), qos=1)

    task = asyncio.create_task(run())
    try:
        async with asyncio.timeout(10):
            await ready.wait()
        yield
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_naive_client_fails_dedup_references_and_late_join(
        mosquitto: MosquittoBroker) -> None:
    """The naive client passes the stages and the schema, and fails exactly the
    de-duplication, reference and late-join checks, each reason saying what went wrong."""
    tree, client_id = _tree(), f"naive-{uuid.uuid4().hex[:8]}"
    async with _naive_client(mosquitto.url, tree, client_id, "13"):
        report = await run_conformance(ConformanceOptions(
            url=mosquitto.url, client_id=client_id, code="13", tree=tree, timeout_s=5))
    verdicts = {c.check: c for c in report.checks}
    failed = sorted(name for name, c in verdicts.items() if c.verdict != "pass")
    assert failed == ["de-duplication", "late join (retained state)",
                      "references (Update before its Alert)"], render_table(report)
    assert all(verdicts[name].verdict == "fail" for name in failed)
    assert "shown 3 times for 3 copies" in verdicts["de-duplication"].reason
    assert "shown before the Alert it refers to" in verdicts[
        "references (Update before its Alert)"].reason
    late = verdicts["late join (retained state)"].reason
    assert "arrived live" in late
    assert tree.conformance_control(client_id) in late
    assert not report.passed


async def test_client_that_never_returns_is_skipped(mosquitto: MosquittoBroker) -> None:
    """A client that leaves when told and never comes back: late join skipped, with why."""
    tree, client_id = _tree(), f"gone-{uuid.uuid4().hex[:8]}"
    async with _naive_client(mosquitto.url, tree, client_id, "13", leaves=True):
        report = await run_conformance(ConformanceOptions(
            url=mosquitto.url, client_id=client_id, code="13", tree=tree, timeout_s=2,
            rejoin_after_s=1))
    late = next(c for c in report.checks if c.check == "late join (retained state)")
    assert late.verdict == "skip", late
    assert "did not come back" in late.reason
    assert not report.passed


async def test_cli_conformance_against_cli_subscriber(tmp_path: Path,
                                                      mosquitto: MosquittoBroker) -> None:
    """`alertsim subscribe --conformance` checked by `alertsim conformance --json`: exit 0,
    the table printed, the JSON written."""
    tree, client_id = _tree(), f"cli-{uuid.uuid4().hex[:8]}"
    env = {**os.environ, "ALERTSIM_LOG_FORMAT": "json"}
    env.pop("ALERTSIM_LOG_LEVEL", None)
    out, err = tmp_path / "sub.out", tmp_path / "sub.err"
    with out.open("w") as stdout, err.open("w") as stderr:
        sub = await asyncio.create_subprocess_exec(
            SCRIPT, "subscribe", "--prefecture", "13", "--status", "test", "--broker",
            mosquitto.url, "--topic-root", tree.root, "--client-id", client_id,
            "--conformance", "--log-level", "debug", stdout=stdout, stderr=stderr,
            env=env, preexec_fn=restore_sigint)
        try:
            await eventually(lambda: "receiver.subscribed" in err.read_text("utf-8"),
                             timeout=20, what="the subscriber subscribed")
            check = await asyncio.create_subprocess_exec(
                SCRIPT, "conformance", "--broker", mosquitto.url, "--client-id", client_id,
                "--prefecture", "13", "--topic-root", tree.root, "--json",
                str(tmp_path / "table.json"), stdout=asyncio.subprocess.PIPE, env=env,
                preexec_fn=restore_sigint)
            async with asyncio.timeout(120):
                printed, _ = await check.communicate()
        finally:
            sub.send_signal(signal.SIGINT)
            async with asyncio.timeout(20):
                await sub.wait()
    text = printed.decode()
    assert check.returncode == 0, text
    assert "all checks passed" in text
    assert "late join (retained state)" in text
    table = json.loads((tmp_path / "table.json").read_text("utf-8"))
    assert table["passed"] is True
    assert len(table["checks"]) == 11


def _minimal_client_source() -> str:
    """The Python block under "## A minimal client" in docs/clients.md."""
    doc = (ROOT / "docs" / "clients.md").read_text("utf-8")
    section = doc.split("\n## A minimal client\n", 1)[1]
    return section.split("```python\n", 1)[1].split("```", 1)[0]


def test_minimal_client_fits_in_30_lines() -> None:
    source = _minimal_client_source()
    assert len([line for line in source.splitlines() if line.strip()]) <= 30
    assert max(len(line) for line in source.splitlines()) <= 100


async def test_minimal_client_from_the_docs(tmp_path: Path, mosquitto: MosquittoBroker) -> None:
    """The doc's minimal client, run as written against Mosquitto: it prints what it shows,
    and conformance passes it on every check but the late join, as the doc says."""
    tree, client_id = _tree(), f"mini-{uuid.uuid4().hex[:8]}"
    script = tmp_path / "client.py"
    script.write_text(_minimal_client_source(), "utf-8")
    env = {**os.environ, "MQTT_HOST": "127.0.0.1", "MQTT_PORT": str(mosquitto.port),
           "ALERTSIM_ROOT": tree.root, "CLIENT_ID": client_id}
    out = tmp_path / "client.out"
    with out.open("w") as stdout:
        proc = await asyncio.create_subprocess_exec(sys.executable, str(script), stdout=stdout,
                                                    stderr=asyncio.subprocess.STDOUT, env=env,
                                                    preexec_fn=restore_sigint)
        try:
            await _until_subscribed(mosquitto.url, tree, client_id)
            report = await run_conformance(ConformanceOptions(
                url=mosquitto.url, client_id=client_id, code="13", tree=tree, timeout_s=5))
        finally:
            proc.kill()
            await proc.wait()
    verdicts = {c.check: c.verdict for c in report.checks}
    assert [name for name, v in verdicts.items() if v != "pass"] == [
        "late join (retained state)"], render_table(report)
    assert "TEST shelter" in out.read_text("utf-8")


async def _until_subscribed(url: str, tree: TopicTree, client_id: str) -> None:
    """Publish a probe alert until the client acknowledges one (then it is subscribed)."""
    from alertsim.conformance.script import Script
    from alertsim.domain.publication import Publication
    from alertsim.mqtt.client import MqttSettings, connect
    from alertsim.mqtt.messages import publish, received

    script = Script("13", "東京都", "Tokyo", now=datetime.now(UTC))
    async with connect(MqttSettings(url=url, client_id=f"probe-{uuid.uuid4().hex[:8]}")) as c:
        await c.subscribe(tree.receipts(client_id), qos=1)
        async with asyncio.timeout(30):
            while True:
                probe = script.alert(f"probe{uuid.uuid4().hex[:6]}", "shelter")
                await publish(c, Publication(tree.alerts("test", "13"),
                                             probe.model_dump_json().encode()))
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(0.5):
                        async for _ in received(c):
                            return
