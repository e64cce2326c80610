"""Fuzz: thousands of generated detection payloads, random bytes and the known poison inputs.

Phase 1 (Hypothesis, pure): every payload either validates or raises ValidationError, and
every valid one decides and builds its alerts without an exception.
Phase 2 (a real Mosquitto, the service and its broker link): the whole corpus is
published to the detections topic; the service survives, every payload is accounted for
(recorded, a duplicate of one recorded, or rejected with a row and an errors-topic
message), and a valid detection afterwards still alerts. A rejected row keeps the first
256 bytes and the size, so a payload is matched by those; the refusal-row rate is lifted
(every refusal gets its row here; tests/integration/test_input_guards.py tests the rate).
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, NamedTuple

import aiomqtt
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from alertsim.adapters.mqtt.link import run_link
from alertsim.adapters.sqlite.store import Store
from alertsim.brokers.brokers import MosquittoBroker
from alertsim.domain import topics
from alertsim.domain.detection import Detection
from alertsim.domain.prefectures import Atlas
from alertsim.domain.refusal import InputGuards, excerpt
from alertsim.service.clock import SystemClock
from alertsim.service.config import ServiceConfig
from alertsim.service.observer import DetectionOutcome, InputKind, NullObserver
from alertsim.service.service import Service
from alertsim.testing import eventually

pytestmark = [pytest.mark.slow, pytest.mark.mosquitto, pytest.mark.timeout(600)]

EXAMPLES = int(os.environ.get("ALERTSIM_FUZZ_EXAMPLES", "10000"))
NOW = datetime.now(UTC).replace(microsecond=0)
POISON = [
    {"sequence": 2**63},
    {"launch": {"lat": 40.0, "lon": 125.0, "time": "0001-01-01T00:00:00+09:00"}},
    {"predicted": {"impact": {"lat": 41.0, "lon": 140.0},
                   "impact_time": "9999-12-31T23:59:59+09:00"}},
]

numbers = st.one_of(st.floats(allow_nan=False, allow_infinity=False, width=64),
                    st.integers(min_value=-(2**70), max_value=2**70),
                    st.sampled_from([0, -0.0, 1e308, -1e308, 2**63 - 1, 2**63, 360, 90.0001])
                    ).map(lambda value: value)  # one weight in a one_of, not one per branch
moments = st.one_of(
    st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30),
                 timezones=st.just(UTC)).map(lambda d: d.isoformat()),
    st.integers(-3 * 3600, 3 * 3600).map(lambda s: (NOW + timedelta(seconds=s)).isoformat()),
    st.sampled_from(["2023-11-21T22:43:00", "not a time", "", "2023-13-45T99:99:99+09:00"]))
junk = st.one_of(st.none(), st.booleans(), numbers, st.text(max_size=30), moments,
                 st.lists(st.integers(), max_size=3), st.dictionaries(st.text(max_size=5),
                                                                      st.integers(), max_size=2)
                 ).map(lambda value: value)  # one weight in a one_of, not one per branch


def weighted(usual: st.SearchStrategy[Any], odd: st.SearchStrategy[Any],
             odds: int = 7) -> st.SearchStrategy[Any]:
    """`usual` `odds` times as often as `odd` (a one_of weighs each branch once)."""
    return st.integers(0, odds).flatmap(lambda n: odd if n == 0 else usual)


def near(value: float, spread: float) -> st.SearchStrategy[float]:
    """Mostly plausible numbers around `value` (7 in 8), sometimes anything."""
    return weighted(st.floats(value - spread, value + spread), numbers)


@st.composite
def detection_docs(draw: st.DrawFn) -> dict[str, Any]:
    """A detection document, plausible in shape, with any field possibly broken or gone."""
    launch_s = draw(st.integers(-400, 0))
    launch = NOW + timedelta(seconds=launch_s)
    flight = timedelta(seconds=draw(st.integers(60, 3600)))
    doc: dict[str, Any] = {
        "event_id": draw(weighted(st.from_regex(r"\Afz-[a-z0-9]{6,12}\Z"), junk)),
        "sequence": draw(weighted(st.integers(1, 5), numbers)),
        "observed_at": (launch + timedelta(seconds=draw(st.integers(0, 200)))).isoformat(),
        "object": draw(st.sampled_from(["ballistic_missile", "space_launch_vehicle"] * 4
                                       + ["ufo"])),
        "launch": {"lat": draw(near(40.0, 2)), "lon": draw(near(126.0, 2)),
                   "time": launch.isoformat()},
        "predicted": draw(st.one_of(
            st.fixed_dictionaries({"impact": st.fixed_dictionaries(
                {"lat": near(38.0, 12), "lon": near(140.0, 15)}),
                "impact_time": st.just((launch + flight).isoformat())}),
            st.fixed_dictionaries({"azimuth_deg": near(90, 90), "range_km": near(1500, 1500),
                                   "impact_time": st.just((launch + flight).isoformat())}))),
        "uncertainty": {"cross_track_km": draw(near(50, 50)),
                        "along_track_km": draw(near(100, 100))},
    }
    broken = st.lists(st.sampled_from(sorted(doc)), min_size=1, max_size=2, unique=True)
    for key in draw(st.one_of(st.just([]), st.just([]), broken)):
        action = draw(st.sampled_from(["drop", "junk", "moment"]))
        if action == "drop":
            del doc[key]
        else:
            doc[key] = draw(junk if action == "junk" else moments)
    if draw(st.integers(0, 3)) == 0:
        doc["outcome"] = draw(st.sampled_from(["impact", "orbit", "breakup", "lost", "boom"]))
    if draw(st.integers(0, 20)) == 0:
        doc["extra"] = draw(junk)
    return doc


payloads = st.one_of(
    detection_docs().map(lambda d: json.dumps(d, allow_nan=True).encode()),
    st.binary(max_size=200),
    st.integers(1, 300).map(lambda n: b"[" * n + b"]" * n),  # nesting depth
)


def generate_corpus(atlas: Atlas) -> list[bytes]:
    """Phase 1: the corpus, each payload checked to validate-or-refuse and decide cleanly."""
    corpus: list[bytes] = []
    config = ServiceConfig()

    @settings(max_examples=EXAMPLES, database=None, deadline=None,
              suppress_health_check=list(HealthCheck))
    @given(payloads)
    def check(payload: bytes) -> None:
        corpus.append(payload)
        try:
            detection = Detection.model_validate_json(payload)
        except ValidationError:
            return
        # A valid detection goes through the whole pure chain without an exception, on an
        # engine of its own (as a fresh service would have: no state from other examples).
        engine = config.engine(atlas)
        engine.detection(detection, now=NOW, nonce="fuzz")
        engine.tick(now=detection.impact_time + timedelta(hours=3))

    check()
    base = json.loads(valid_detection("fz-poison"))
    for poison in POISON:
        corpus.append(json.dumps({**base, **poison}).encode())
    return corpus


def valid_detection(event_id: str) -> bytes:
    """A detection over Hokkaido and Aomori observed just now."""
    launch = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=1)
    return json.dumps({
        "event_id": event_id, "sequence": 1, "observed_at": launch.isoformat(),
        "object": "ballistic_missile", "launch": {"lat": 40.6, "lon": 126.4,
                                                  "time": launch.isoformat()},
        "predicted": {"impact": {"lat": 34.33, "lon": 178.57},
                      "impact_time": (launch + timedelta(minutes=14)).isoformat()},
        "uncertainty": {"cross_track_km": 30, "along_track_km": 100}}).encode()


def accounted(store: Store, corpus: list[bytes]) -> Callable[[], Awaitable[Counts | None]]:
    """A condition: every payload is recorded, rejected, or a duplicate of a recorded one."""

    async def check() -> Counts | None:
        recorded = {d.raw for d in await store.views.detections()}
        rejected = {(r.raw, r.size) for r in await store.views.rejected()}
        parsed = {Detection.model_validate_json(r) for r in recorded}
        for payload in corpus:
            if payload in recorded or (excerpt(payload), len(payload)) in rejected:
                continue
            try:
                if Detection.model_validate_json(payload) in parsed:
                    continue
            except ValidationError:
                pass
            return None
        return Counts(len(recorded), len(await store.views.rejected()), len(corpus))

    return check


class Tally(NullObserver):
    """Counts detections as the service takes them (accepted, duplicate, or rejected);
    `done` is set when `expected` have been taken: the test waits on that, not on polls."""

    def __init__(self, expected: int) -> None:
        self.expected = expected
        self.taken = 0
        self.done = asyncio.Event()

    def _took(self) -> None:
        self.taken += 1
        if self.taken >= self.expected:
            self.done.set()

    def detection(self, outcome: DetectionOutcome) -> None:
        if outcome != "refused":  # a refusal is also told as `rejected`
            self._took()

    def rejected(self, kind: InputKind) -> None:
        if kind == "detection":
            self._took()


class Counts(NamedTuple):
    recorded: int
    rejected: int
    total: int


async def test_fuzzed_detections_never_take_the_service_down(
        atlas: Atlas, tmp_path: Path) -> None:
    """Every fuzzed payload is accounted for; the service lives on and still alerts."""
    corpus = await asyncio.to_thread(generate_corpus, atlas)
    assert len(corpus) >= EXAMPLES
    errors: list[bytes] = []
    with MosquittoBroker() as broker:
        async with await Store.open(tmp_path / "fuzz.db") as store, \
                aiomqtt.Client("127.0.0.1", broker.port, identifier="fuzz-errors") as watcher:
            await watcher.subscribe(topics.ERRORS, qos=1)
            tally = Tally(len(corpus))
            every_row = InputGuards(refusal_rows=None, refusal_rows_all=None)
            service = Service(atlas=atlas, store=store.record,
                              config=ServiceConfig(status="test", guards=every_row),
                              clock=SystemClock(), observer=tally)
            connected = asyncio.Event()
            async with asyncio.TaskGroup() as group:
                tasks = [group.create_task(run_link(service, url=broker.url, protocol="5",
                                                    client_id="fuzz-svc", connected=connected)),
                         group.create_task(service.run_timers()),
                         group.create_task(collect(watcher, errors))]
                await asyncio.wait_for(connected.wait(), 10)
                await publish(broker, corpus)
                await asyncio.wait_for(tally.done.wait(), 240)  # every payload taken
                counts = await accounted(store, corpus)()
                assert counts is not None, "a payload taken but neither recorded nor rejected"
                await eventually(lambda: len(errors) >= counts.rejected, timeout=60,
                                 what="an errors-topic message for every rejected payload")
                await publish(broker, [valid_detection("fz-after")])
                alerts = await eventually(
                    lambda: store.views.outbox(event_id="fz-after", kind="alert"), timeout=30,
                    what="alerts for a valid detection after the fuzz")
                assert {a.prefecture for a in alerts} == {"01", "02"}
                assert not any(task.done() for task in tasks)  # nothing died on the way
                for task in tasks:
                    task.cancel()
    print(f"\nfuzz: {counts.total} payloads, {counts.recorded} recorded, {counts.rejected} "
          f"rejected, {counts.total - counts.recorded - counts.rejected} duplicates; "
          f"{len(errors)} errors-topic messages")
    assert counts.recorded >= counts.total // 100  # the generator makes enough valid ones
    assert counts.rejected >= counts.total // 2


async def collect(client: aiomqtt.Client, into: list[bytes]) -> None:
    """Append every message the client receives."""
    async for message in client.messages:
        into.append(message.payload if isinstance(message.payload, bytes) else b"")


async def publish(broker: MosquittoBroker, payloads: list[bytes]) -> None:
    """Publish every payload to the detections topic, QoS 1, in order."""
    async with aiomqtt.Client("127.0.0.1", broker.port, identifier="fuzz-pub") as client:
        for payload in payloads:
            await client.publish(topics.DETECTIONS, payload, qos=1)
