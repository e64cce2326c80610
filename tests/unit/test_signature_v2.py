"""Signature v2, the pure parts: the byte layout, the replay verdicts (a table), the
receiver's memory and its file, v1 behind a flag, and what subscribe prints and picks."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from alertsim.cli.render import default_client_id, render_alert
from alertsim.cli.subscribe import claim_state_file
from alertsim.clients.receiver_options import ReceiverOptions
from alertsim.domain import texts
from alertsim.domain.messages import build_alert
from alertsim.domain.publication import Publication
from alertsim.domain.topics import TopicTree
from alertsim.errors import InputError
from alertsim.signing import (
    REASON_V1,
    Claims,
    Memory,
    Policy,
    check,
    claim,
    claims_of,
    generate,
    load_memory,
    refusal,
    release,
    save_memory,
    sign_publication,
    sign_publication_v1,
    signed_bytes,
)
from alertsim.signing.replay import MAX_SHOWN

T0 = 1_700_000_000_000  # 2023-11-14T22:13:20Z
TOPIC = "alertsim/v1/exercise/alerts/13"
OTHER = "alertsim/v1/exercise/alerts/47"
STATE = "alertsim/v1/exercise/state/13"


def test_layout_is_length_prefixed_fields() -> None:
    """The signed bytes: tag, topic, sent, expires, payload, each with a 4-byte length."""
    claims = Claims("a/b", 12, 3456)
    assert signed_bytes(claims, b"xy") == (
        b"\x00\x00\x00\x0falertsim-sig-v2" b"\x00\x00\x00\x03a/b" b"\x00\x00\x00\x0212"
        b"\x00\x00\x00\x043456" b"\x00\x00\x00\x02xy")
    never = signed_bytes(Claims("a/b", 12, None), b"")
    assert never.endswith(b"\x00\x00\x00\x0212" b"\x00\x00\x00\x00" b"\x00\x00\x00\x00")


def test_layout_cannot_be_shifted_between_fields() -> None:
    """Moving bytes from the topic into the payload changes the signed bytes."""
    assert signed_bytes(Claims("a/b", 1), b"c") != signed_bytes(Claims("a/", 1), b"bc")


def test_claims_of_a_publication() -> None:
    """Sent is the publication's own; expiry is sent plus its MQTT 5 expiry, or none."""
    alert = Publication(TOPIC, b"{}", expiry_s=90, sent_ms=T0)
    assert claims_of(alert) == Claims(TOPIC, T0, T0 + 90_000)
    assert claims_of(Publication(STATE, b"", retain=True, sent_ms=T0)) == Claims(STATE, T0)


@pytest.mark.parametrize("protocol", ["5", "3.1.1"])
def test_v1_signatures_verify_without_claims(protocol: str) -> None:
    """A v1 message still verifies as version 1, with no claims for the guard to bind."""
    key = generate()
    signed = sign_publication_v1(Publication(TOPIC, b"{}"), key,
                                 "5" if protocol == "5" else "3.1.1")
    original, verdict = check(signed.payload, signed.user_properties, key.trusted())
    assert (original, verdict.ok, verdict.version, verdict.claims) == (b"{}", True, 1, None)


@pytest.mark.parametrize("protocol", ["5", "3.1.1"])
def test_changed_claims_fail_the_signature(protocol: str) -> None:
    """Any claim changed in transit (here the topic) is a bad signature, on either protocol."""
    key = generate()
    signed = sign_publication(Publication(TOPIC, b"{}", sent_ms=T0), key,
                              "5" if protocol == "5" else "3.1.1")
    if protocol == "5":
        props = tuple((n, OTHER if n == "sig-topic" else v) for n, v in signed.user_properties)
        verdict = check(signed.payload, props, key.trusted())[1]
    else:
        body = json.loads(signed.payload) | {"topic": OTHER}
        verdict = check(json.dumps(body).encode(), (), key.trusted())[1]
    assert (verdict.ok, verdict.reason) == (False, "bad signature (tampered or wrong key)")


HELD = Memory(sent={TOPIC: T0, STATE: T0})
STRICT, LENIENT = Policy(), Policy(accept_v1=True)


@pytest.mark.parametrize(("claims", "topic", "kind", "now", "policy", "reason"), [
    (Claims(TOPIC, T0, T0 + 60_000), TOPIC, "alert", T0 + 1000, STRICT, None),
    (None, TOPIC, "alert", T0, STRICT, REASON_V1),
    (None, TOPIC, "alert", T0, LENIENT, None),
    (Claims(OTHER, T0, T0 + 60_000), TOPIC, "alert", T0, STRICT,
     f"signed for topic {OTHER}, received on {TOPIC}"),
    (Claims("alertsim/v1/exercise/state/47", T0), STATE, "state", T0, STRICT,
     f"signed for topic alertsim/v1/exercise/state/47, received on {STATE}"),
    (Claims(TOPIC, T0, T0 + 60_000), TOPIC, "alert", T0 + 90_000, STRICT, None),  # skew
    (Claims(TOPIC, T0, T0 + 60_000), TOPIC, "alert", T0 + 90_001, STRICT,
     "expired at 2023-11-14T22:14:20Z"),
    (Claims(TOPIC, T0 - 3 * 86_400_000, T0 - 3 * 86_400_000 + 60_000), TOPIC, "alert", T0,
     STRICT, "expired at 2023-11-11T22:14:20Z"),
    (Claims(STATE, T0 - 3 * 86_400_000), STATE, "state", T0, STRICT,
     "older than the state held (sent 2023-11-14T22:13:20Z)"),
    (Claims(STATE, T0 - 1), STATE, "state", T0, STRICT,
     "older than the state held (sent 2023-11-14T22:13:20Z)"),
    (Claims(STATE, T0), STATE, "state", T0, STRICT, None),  # the same one again
    (Claims(TOPIC, T0 - 30_000, T0 + 60_000), TOPIC, "alert", T0, STRICT, None),  # reorder
    (Claims(TOPIC, T0 - 30_001, T0 + 60_000), TOPIC, "alert", T0, STRICT,
     "older than the alert held (sent 2023-11-14T22:13:20Z)"),
    (Claims(TOPIC, T0 + 30_001, T0 + 90_000), TOPIC, "alert", T0, STRICT,
     "sent at 2023-11-14T22:13:50Z, ahead of this receiver's clock"),
    (Claims(OTHER, T0 - 86_400_000), OTHER, "alert", T0, STRICT, None),  # nothing held there
], ids=["fresh", "v1", "v1-accepted", "other-topic", "cleared-state-other-place",
        "expired-within-skew", "expired", "three-days-old", "old-state", "state-1ms-older",
        "state-same", "alert-reordered", "alert-older", "future", "first-on-topic"])
def test_refusal_table(claims: Claims | None, topic: str, kind: str, now: int,
                       policy: Policy, reason: str | None) -> None:
    """Each replay gets its specific reason; a fresh, in-order, in-place copy none."""
    assert refusal(claims, topic=topic, kind="state" if kind == "state" else "alert",
                   now_ms=now, memory=HELD, policy=policy) == reason


def test_relay_names_the_origin_topic() -> None:
    """Behind a relay the expected topic is the origin's; the received one is not enough."""
    claims = Claims(TOPIC, T0, T0 + 60_000)
    relayed = "alertsim/v1/relay/exercise/alerts/13"
    assert refusal(claims, topic=relayed, kind="alert", now_ms=T0, memory=Memory(),
                   policy=STRICT, expected_topic=TOPIC) is None
    assert refusal(claims, topic=relayed, kind="alert", now_ms=T0, memory=Memory(),
                   policy=STRICT) == f"signed for topic {TOPIC}, received on {relayed}"
    options = ReceiverOptions(url="mqtt://h", protocol="5", client_id="rx", codes=["13"],
                              tree=TopicTree("alertsim/v1/relay"),
                              signed_tree=TopicTree("alertsim/v1"))
    assert options.signed_topic(relayed) == TOPIC


def test_memory_keeps_the_latest_and_forgets_the_expired() -> None:
    """Sent only moves forward; identifiers past their time, and beyond the cap, go."""
    memory = Memory()
    memory.accept(Claims(TOPIC, T0))
    memory.accept(Claims(TOPIC, T0 - 5))
    assert memory.sent == {TOPIC: T0}
    memory.remember("old", T0 - 1)
    memory.remember("new", T0 + 1)
    memory.prune(T0)
    assert memory.shown == {"new": T0 + 1}
    for n in range(MAX_SHOWN + 10):
        memory.remember(f"id-{n}", T0 + 10 + n)
    memory.prune(T0)
    assert len(memory.shown) == MAX_SHOWN
    assert "new" not in memory.shown
    assert f"id-{MAX_SHOWN + 9}" in memory.shown


def test_memory_file_round_trip_and_corruption(tmp_path: Path) -> None:
    """The file reads back what was written; no file is empty; garbage is an InputError."""
    path = tmp_path / "rx" / "state.json"
    assert load_memory(path) == Memory()
    memory = Memory("alertsim-sub-13-0a0b0c0d", {TOPIC: T0}, {"id-1": T0 + 5})
    save_memory(path, memory)
    assert load_memory(path) == memory
    for garbage in ("not json", '{"version": 9}', '{"version": 1, "shown": {"a": "x"}}'):
        path.write_text(garbage)
        with pytest.raises(InputError) as info:
            load_memory(path)
        assert info.value.source == str(path)


def test_state_file_is_claimed_by_one_subscriber(tmp_path: Path) -> None:
    """A locked state file cannot be claimed again until it is released."""
    path = tmp_path / "state.json"
    lock = claim(path)
    assert lock is not None
    assert claim(path) is None
    release(lock)
    again = claim(path)
    assert again is not None
    release(again)


def test_default_client_ids_are_unique_and_stable(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """Two default subscribers for 13 get two state files and two ids; a restart the same."""
    monkeypatch.setenv("HOME", str(tmp_path))
    first_path, first_id, first_lock = claim_state_file(None, None, ["13"])
    second_path, second_id, second_lock = claim_state_file(None, None, ["13"])
    assert first_path != second_path
    assert first_id != second_id
    assert first_id.startswith("alertsim-sub-13-")
    release(first_lock)
    path, again, lock = claim_state_file(None, None, ["13"])
    assert (path, again) == (first_path, first_id)
    release(lock)
    release(second_lock)
    given = tmp_path / "mine.json"
    path, client_id, lock = claim_state_file(given, "rx-fixed", ["13"])
    assert (path, client_id) == (given, "rx-fixed")
    with pytest.raises(InputError, match="in use by another subscriber"):
        claim_state_file(given, "rx-fixed", ["13"])
    release(lock)


@pytest.mark.parametrize(("codes", "expected"), [
    (["47"], "alertsim-sub-47-0a0b0c0d"),
    (["47", "47", "01"], "alertsim-sub-47-01-0a0b0c0d"),
])
def test_default_client_id(codes: list[str], expected: str) -> None:
    """The default client id lists the prefectures once each, then the random tag."""
    assert default_client_id(codes, "0a0b0c0d") == expected


def test_default_client_id_fits_receipt_rule() -> None:
    """With all 47 prefectures the default client id is still at most 64 characters."""
    client_id = default_client_id([f"{n:02d}" for n in range(1, 48)], "0a0b0c0d")
    assert len(client_id) <= 64
    assert client_id.endswith("-0a0b0c0d")
    ReceiverOptions(url="mqtt://127.0.0.1:1", protocol="5", client_id=client_id, codes=["01"])


def test_alert_text_shows_sent_and_expiry_dates() -> None:
    """The subscriber prints when the alert was sent and when it expires, with the date."""
    alert = build_alert(identifier="id-1", sender="alertsim.test", status="Exercise",
                        sent=datetime(2023, 11, 21, 13, 46, 5, tzinfo=UTC), msg_type="Alert",
                        stage="shelter", texts=texts.shelter(), event_id="ev", sequence=1,
                        object_kind="ballistic_missile", code="47", name_ja="沖縄県",
                        name_en="Okinawa")
    text = render_alert(alert, "en").splitlines()
    assert "Sent: 2023-11-21 22:46:05 JST" in text
    lasts = alert.info[0].expires - alert.sent
    assert lasts.total_seconds() > 0
    when = (datetime(2023, 11, 21, 22, 46, 5) + lasts).strftime("%Y-%m-%d %H:%M:%S")
    assert f"Expires: {when} JST" in text
    assert "発表時刻: 2023-11-21 22:46:05 JST" in render_alert(alert, "ja").splitlines()


# ---- the verifying client in docs/clients.md ---------------------------------------------


def _doc_client(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                key_pem: bytes) -> dict[str, Any]:
    """The Python block under "## Verifying signatures (v2)" in docs/clients.md, run."""
    doc = (Path(__file__).resolve().parents[2] / "docs" / "clients.md").read_text("utf-8")
    section = doc.split("\n## Verifying signatures (v2)\n", 1)[1]
    source = section.split("```python\n", 1)[1].split("```", 1)[0]
    (tmp_path / "signing.pub").write_bytes(key_pem)
    monkeypatch.setenv("ALERTSIM_KEY", str(tmp_path / "signing.pub"))
    monkeypatch.setenv("MEMORY", str(tmp_path / "memory.json"))
    namespace: dict[str, Any] = {}
    exec(compile(source, "clients.md", "exec"), namespace)  # our own docs, as written
    return namespace


@pytest.mark.parametrize("protocol", ["5", "3.1.1"])
def test_doc_client_refuses_what_the_receivers_refuse(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, protocol: str) -> None:
    """The docs' client takes a genuine message and refuses the replays, with reasons; what
    it remembers is there again after a restart."""
    key = generate()
    client = _doc_client(tmp_path, monkeypatch, key.public_pem())
    verified = client["verified"]
    proto: Any = "5" if protocol == "5" else "3.1.1"

    def signed(topic: str, payload: bytes, sent: int, expiry_s: int | None = 600) -> Any:
        message = sign_publication(Publication(topic, payload, expiry_s=expiry_s,
                                               sent_ms=sent), key, proto)
        return message.payload, dict(message.user_properties)

    assert verified(TOPIC, *signed(TOPIC, b"{}", T0), T0) == b"{}"
    assert verified(TOPIC, *signed(OTHER, b"{}", T0), T0) == \
        f"signed for topic {OTHER}, received on {TOPIC}"
    assert verified(TOPIC, *signed(TOPIC, b"{}", T0 - 86_400_000), T0) == \
        f"expired at {T0 - 86_400_000 + 600_000}"
    assert verified(STATE, *signed(STATE, b"", T0, None), T0) == b""
    assert verified(STATE, *signed(STATE, b"x", T0 - 1, None), T0) == \
        f"older than what is held (sent {T0})"
    payload, props = signed(TOPIC, b"{}", T0)
    if protocol == "5":  # a claim changed in transit
        props["sig-sent"] = str(T0 + 1)
    else:
        payload = json.dumps(json.loads(payload) | {"sent": T0 + 1}).encode()
    assert verified(TOPIC, payload, props, T0) == "bad signature"
    legacy = sign_publication_v1(Publication(TOPIC, b"{}"), key, proto)
    assert verified(TOPIC, legacy.payload, dict(legacy.user_properties), T0) == \
        "unsigned (or signature v1)"
    client["remember"]("id-1", 2**50)
    again = _doc_client(tmp_path, monkeypatch, key.public_pem())
    assert again["held"]["shown"] == {"id-1": 2**50}
    assert again["held"]["sent"] == {TOPIC: T0, STATE: T0}
