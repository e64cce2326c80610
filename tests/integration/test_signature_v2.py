"""Signature v2 against a real Mosquitto, under MQTT 5 and 3.1.1: genuine signed messages
replayed on another topic, after their expiry, or (a cleared state) onto another
prefecture are refused by the reference receiver and by `alertsim subscribe --trust`;
what was shown is not shown again after a restart."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path

import pytest

from alertsim.brokers.brokers import MosquittoBroker
from alertsim.clients.receiver import Receiver, ReceiverOptions
from alertsim.domain import texts
from alertsim.domain.messages import Alert, PlaceEvent, PrefectureState, build_alert
from alertsim.domain.publication import Publication
from alertsim.domain.topics import TopicTree
from alertsim.mqtt.client import Client, MqttSettings, connect
from alertsim.mqtt.messages import publish
from alertsim.mqtt.protocol import Protocol
from alertsim.signing import (
    REASON_V1,
    SigningKey,
    generate,
    save_key_pair,
    sign_publication,
    sign_publication_v1,
)
from alertsim.signing.replay import when
from alertsim.testing import eventually
from tests.helpers import restore_sigint, running

SCRIPT = Path(sys.executable).with_name("alertsim")
DAY_MS = 86_400_000
PROTOCOLS = [pytest.param("5", id="mqtt5"), pytest.param("3.1.1", id="mqtt311")]


def _uid(name: str) -> str:
    return f"{name}-{uuid.uuid4().hex[:10]}"


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def _alert(code: str, name_en: str) -> Alert:
    return build_alert(identifier=_uid("alertsim.v2"), sender="alertsim.test",
                       status="Exercise", sent=datetime.now(UTC), msg_type="Alert",
                       stage="shelter", texts=texts.shelter(), event_id=_uid("ev"),
                       sequence=1, object_kind="ballistic_missile", code=code,
                       name_ja="県", name_en=name_en)


def _state(code: str) -> bytes:
    return PrefectureState(code=code, status="Exercise", updated=datetime.now(UTC),
                           events=(PlaceEvent(event_id="ev", stage="shelter", identifier="id",
                                              sheltering=True),)).model_dump_json().encode()


class Signer:
    """The service's signatures, made here as `serve` makes them (kind, sent, expiry)."""

    def __init__(self, tree: TopicTree, protocol: Protocol) -> None:
        self.key: SigningKey = generate()
        self.tree, self.protocol = tree, protocol

    def alert(self, alert: Alert, *, sent_ms: int | None = None) -> Publication:
        return sign_publication(Publication(
            self.tree.alerts("exercise", alert.prefecture), alert.model_dump_json().encode(),
            qos=1, expiry_s=600, sent_ms=sent_ms or _now_ms(),
            user_properties=(("kind", "alert"), ("identifier", alert.identifier))),
            self.key, self.protocol)

    def state(self, code: str, payload: bytes, *, sent_ms: int | None = None) -> Publication:
        return sign_publication(Publication(
            self.tree.state("exercise", code), payload, qos=1, retain=True,
            sent_ms=sent_ms or _now_ms(), user_properties=(("kind", "state"),)),
            self.key, self.protocol)


def _moved(message: Publication, topic: str) -> Publication:
    """The same signed bytes and properties, published on `topic` (a replay)."""
    return Publication(topic, message.payload, qos=1, retain=message.retain,
                       user_properties=message.user_properties)


@asynccontextmanager
async def _client(url: str, protocol: Protocol) -> AsyncIterator[Client]:
    async with connect(MqttSettings(url=url, client_id=_uid("pub"), protocol=protocol)) as c:
        yield c


async def _send(client: Client, protocol: Protocol, *messages: Publication) -> None:
    for message in messages:
        await publish(client, message, protocol=protocol)


def _replays(signer: Signer) -> tuple[list[Publication], list[str]]:
    """An Okinawa alert on Tokyo's topic, a three-day-old Tokyo alert, Okinawa's cleared
    state on Tokyo's state topic; and the reasons each must be refused with."""
    tree = signer.tree
    okinawa = signer.alert(_alert("47", "Okinawa"))
    old_ms = _now_ms() - 3 * DAY_MS
    old = signer.alert(_alert("13", "Tokyo"), sent_ms=old_ms)
    cleared = signer.state("47", b"")
    tokyo_alerts, tokyo_state = tree.alerts("exercise", "13"), tree.state("exercise", "13")
    return ([_moved(okinawa, tokyo_alerts), old, _moved(cleared, tokyo_state)],
            [f"signed for topic {okinawa.topic}, received on {tokyo_alerts}",
             f"expired at {when(old_ms + 600_000)}",
             f"signed for topic {cleared.topic}, received on {tokyo_state}"])


# ---- the reference receiver ------------------------------------------------------------------


def _receiver(url: str, protocol: Protocol, signer: Signer, state_file: Path,
              client_id: str, *, accept_v1: bool = False) -> Receiver:
    return Receiver(ReceiverOptions(url=url, protocol=protocol, client_id=client_id,
                                    codes=["13"], tree=signer.tree, trust=signer.key.trusted(),
                                    state_file=state_file, accept_v1=accept_v1))


def _shown(receiver: Receiver) -> list[str]:
    return [d.identifier for d in receiver.deliveries if d.outcome == "shown"]


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_receiver_refuses_replays_and_remembers(mosquitto: MosquittoBroker,
                                                      tmp_path: Path, protocol: Protocol) -> None:
    """The reference receiver refuses each replay with its reason, and an older state; after
    a restart the alert it showed comes again and is not shown."""
    signer = Signer(TopicTree(f"v2-test/{uuid.uuid4().hex[:8]}"), protocol)
    replays, reasons = _replays(signer)
    newer, older = _now_ms(), _now_ms() - 10_000
    held_state = _state("13")
    tokyo = _alert("13", "Tokyo")
    genuine = signer.alert(tokyo)
    state_file, client_id = tmp_path / "rx.json", _uid("rx")
    receiver = _receiver(mosquitto.url, protocol, signer, state_file, client_id)
    async with running(receiver), _client(mosquitto.url, protocol) as attacker:
        await _send(attacker, protocol, *replays, signer.state("13", held_state, sent_ms=newer),
                    signer.state("13", _state("13"), sent_ms=older), genuine)
        await eventually(lambda: len(receiver.rejected) >= 4 and _shown(receiver),
                         what="four refusals and the genuine alert")
    assert [reason for _, reason in receiver.rejected] == [
        *reasons, f"older than the state held (sent {when(newer)})"]
    assert _shown(receiver) == [tokyo.identifier]
    # the newer genuine state: neither the replayed clear nor the older one replaced it
    assert receiver.states == {"13": PrefectureState.model_validate_json(held_state)}

    restarted = _receiver(mosquitto.url, protocol, signer, state_file, client_id)
    marker = _alert("13", "Tokyo")
    async with running(restarted), _client(mosquitto.url, protocol) as attacker:
        await _send(attacker, protocol, genuine, signer.alert(marker))
        await eventually(lambda: len(restarted.deliveries) >= 2,
                         what="the copy handled and the new alert shown")
    assert _shown(restarted) == [marker.identifier]
    assert [(d.identifier, d.duplicate) for d in restarted.deliveries] == [
        (tokyo.identifier, True), (marker.identifier, False)]


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_v1_only_behind_the_flag(mosquitto: MosquittoBroker, tmp_path: Path,
                                       protocol: Protocol) -> None:
    """A v1-signed alert is refused by default with its reason, shown with accept_v1."""
    signer = Signer(TopicTree(f"v2-test/{uuid.uuid4().hex[:8]}"), protocol)
    strict = _receiver(mosquitto.url, protocol, signer, tmp_path / "a.json", _uid("rx"))
    lenient = _receiver(mosquitto.url, protocol, signer, tmp_path / "b.json", _uid("rx"),
                        accept_v1=True)
    alert = _alert("13", "Tokyo")
    legacy = sign_publication_v1(Publication(
        signer.tree.alerts("exercise", "13"), alert.model_dump_json().encode(), qos=1,
        user_properties=(("kind", "alert"),)), signer.key, protocol)
    async with running(strict), running(lenient), _client(mosquitto.url, protocol) as link:
        await _send(link, protocol, legacy)
        await eventually(lambda: strict.rejected and _shown(lenient), what="both judged it")
    assert [reason for _, reason in strict.rejected] == [REASON_V1]
    assert _shown(lenient) == [alert.identifier]


# ---- `alertsim subscribe --trust` ------------------------------------------------------------


async def _subscribe(url: str, tmp_path: Path, run: str, flags: list[str],
                     ready: str, then: Callable[[], Awaitable[None]]) -> tuple[str, str]:
    """Run `alertsim subscribe` until `ready` is on its stdout, `await then()`, Ctrl-C;
    returns (stdout, stderr)."""
    out, err = tmp_path / f"{run}.out", tmp_path / f"{run}.err"
    env = {**os.environ, "ALERTSIM_LOG_FORMAT": "json", "HOME": str(tmp_path)}
    env.pop("ALERTSIM_LOG_LEVEL", None)
    with out.open("w") as stdout, err.open("w") as stderr:
        proc = await asyncio.create_subprocess_exec(
            SCRIPT, "subscribe", "--prefecture", "13", "--broker", url, "--lang", "en",
            *flags, stdout=stdout, stderr=stderr, env=env, preexec_fn=restore_sigint)
        try:
            await eventually(lambda: ready in out.read_text("utf-8"), timeout=20,
                             what=f"the subscriber showing {ready!r}")
            await then()
            proc.send_signal(signal.SIGINT)
            async with asyncio.timeout(20):
                assert await proc.wait() == 130
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
    return out.read_text("utf-8"), err.read_text("utf-8")


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_subscribe_refuses_replays_and_remembers(mosquitto: MosquittoBroker,
                                                       tmp_path: Path,
                                                       protocol: Protocol) -> None:
    """`subscribe --trust` refuses each replay on stderr with its reason, prints the date
    sent and the expiry, and after a restart (its default client id and persistent
    session kept in the state file) does not show the alert again."""
    signer = Signer(TopicTree(f"v2-test/{uuid.uuid4().hex[:8]}"), protocol)
    _, public = save_key_pair(signer.key, tmp_path / "keys")
    flags = ["--topic-root", signer.tree.root, "--trust", str(public),
             "--state-file", str(tmp_path / "sub.json")]
    replays, reasons = _replays(signer)
    tokyo = _alert("13", "Tokyo")
    genuine = signer.alert(tokyo)
    async with _client(mosquitto.url, protocol) as attacker:
        await _send(attacker, protocol, signer.state("13", _state("13")))

        async def first() -> None:
            await _send(attacker, protocol, *replays, genuine)
            await eventually(lambda: tokyo.identifier in (tmp_path / "1.out").read_text()
                             and (tmp_path / "1.err").read_text().count("rejected ") >= 3,
                             timeout=20, what="three replays refused, the alert shown")

        out, err = await _subscribe(mosquitto.url, tmp_path, "1", flags,
                                    "[13] EXERCISE state: SHELTERING", first)
        # While it is away its session queues a copy of what it showed, then a new alert.
        marker = _alert("13", "Tokyo")
        await _send(attacker, protocol, genuine, signer.alert(marker))

        async def second() -> None:
            await eventually(lambda: marker.identifier in (tmp_path / "2.out").read_text(),
                             timeout=20, what="the new alert shown after the restart")

        again, _ = await _subscribe(mosquitto.url, tmp_path, "2", flags, "-- Alert", second)
        await _send(attacker, protocol, Publication(signer.tree.state("exercise", "13"), b"",
                                                    retain=True))
    for (topic, reason) in zip((r.topic for r in replays), reasons, strict=True):
        assert f"rejected {topic}: {reason}" in err
    assert "Okinawa" not in out
    assert "no active alert" not in out
    assert out.count(tokyo.identifier) == 1
    assert any(line.startswith("Sent: 20") and line.endswith(" JST") for line in out.splitlines())
    assert any(line.startswith("Expires: 20") for line in out.splitlines())
    assert tokyo.identifier not in again
    assert marker.identifier in again
    assert "Traceback" not in err
