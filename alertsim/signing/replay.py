"""What a receiver holds against replays, and its verdict on a verified signature's claims.

A good signature says only who made the message. A genuine copy can still be replayed:
on another prefecture's topic, days later, or after a newer message. `refusal` judges a
verified signature against what the receiver holds (`Memory`), with "now" passed in:

    v1         a signature over the payload alone (no topic, no time): refused unless
               the receiver accepts v1 (`--accept-v1`)
    topic      signed for another topic than the one it arrived on
    expired    past its signed expiry, by the receiver's clock, beyond SKEW_S
    future     sent later than the receiver's clock allows (SKEW_S): it would otherwise
               make every genuine message after it look older
    older      sent before the message held for that topic: strictly for a state (the
               newest state is the truth), beyond REORDER_S for an alert (the service's
               Updates may arrive before their Alert, which the receiver holds for them)

`Memory` is also what the receiver keeps across restarts (`memory_file`): the sent time
of the last message accepted per topic, and the identifiers handled, each until its
signed expiry (plus SKEW_S, after which a copy is refused as expired anyway) or for
KEEP_S when it has none. Pure: no I/O, no clock.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal

from alertsim.domain.reception import HOLD_S
from alertsim.signing.signature import Claims

__all__ = [
    "KEEP_S",
    "MAX_SHOWN",
    "REASON_V1",
    "REORDER_S",
    "SKEW_S",
    "Kind",
    "Memory",
    "Policy",
    "refusal",
    "when",
]

SKEW_S = 30  # clocks of service and receiver may disagree by this much either way
REORDER_S = HOLD_S  # an Update may overtake its Alert; the receiver holds it this long
KEEP_S = 24 * 3600  # an identifier with no signed expiry is remembered this long
MAX_SHOWN = 5000  # identifiers kept at most (the latest to expire); the file stays small
REASON_V1 = ("signature v1 (not bound to topic or time): refused without --accept-v1")

Kind = Literal["alert", "state"]


@dataclass(frozen=True)
class Policy:
    """How strict a receiver is: v1 signatures accepted or not, the tolerances in ms."""

    accept_v1: bool = False
    skew_ms: int = SKEW_S * 1000
    reorder_ms: int = int(REORDER_S * 1000)


def when(ms: int) -> str:
    """A wall-clock instant as people read it in a reason: 2024-05-01T03:00:00Z."""
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class Memory:
    """What a receiver holds: `sent` (topic -> ms of the last message accepted there),
    `shown` (identifier -> ms until which it is remembered), and the `client_id` a
    subscriber made up for itself (kept with them so that it stays the same)."""

    client_id: str | None = None
    sent: dict[str, int] = field(default_factory=dict)
    shown: dict[str, int] = field(default_factory=dict)

    def accept(self, claims: Claims) -> None:
        """A message with these claims was accepted on `claims.topic`."""
        held = self.sent.get(claims.topic)
        self.sent[claims.topic] = claims.sent_ms if held is None else max(held, claims.sent_ms)

    def remember(self, identifier: str, until_ms: int) -> None:
        self.shown[identifier] = max(until_ms, self.shown.get(identifier, until_ms))

    def prune(self, now_ms: int) -> None:
        """Forget identifiers past their time, then all but the MAX_SHOWN latest."""
        self.shown = {i: t for i, t in self.shown.items() if t >= now_ms}
        if len(self.shown) > MAX_SHOWN:
            kept = heapq.nlargest(MAX_SHOWN, self.shown.items(), key=lambda item: item[1])
            self.shown = dict(kept)


def _time_refusal(claims: Claims, now_ms: int, policy: Policy) -> str | None:
    if claims.expires_ms is not None and now_ms > claims.expires_ms + policy.skew_ms:
        return f"expired at {when(claims.expires_ms)}"
    if claims.sent_ms > now_ms + policy.skew_ms:
        return f"sent at {when(claims.sent_ms)}, ahead of this receiver's clock"
    return None


def refusal(claims: Claims | None, *, topic: str, kind: Kind, now_ms: int, memory: Memory,
            policy: Policy, expected_topic: str | None = None) -> str | None:
    """Why a message with a good signature (`claims` None: v1) that arrived on `topic` is
    refused, or None when it is accepted. `expected_topic`: the topic it must have been
    signed for (default `topic`; a receiver behind a relay that moves topics names the
    origin's)."""
    if claims is None:
        return None if policy.accept_v1 else REASON_V1
    if claims.topic != (expected_topic or topic):
        return f"signed for topic {claims.topic}, received on {topic}"
    late = _time_refusal(claims, now_ms, policy)
    if late is not None:
        return late
    held = memory.sent.get(claims.topic)
    slack = policy.reorder_ms if kind == "alert" else 0
    if held is not None and claims.sent_ms < held - slack:
        return f"older than the {kind} held (sent {when(held)})"
    return None
