"""Alert identifiers: readable, never reused, unguessable; and the shared identity that
lets redundant services mint the same ones (docs/redundancy.md). Pure."""

from __future__ import annotations

import hashlib
from datetime import UTC

from alertsim.domain.detection import Detection
from alertsim.domain.event_state import EventState
from alertsim.domain.vocabulary import Stage

__all__ = ["identifier", "shared_identity"]


def shared_identity(detection: Detection, shared_secret: bytes) -> tuple[str, str]:
    """(nonce, secret) of a new event for services sharing `shared_secret`: the same in
    every one of them (from the event id and launch time), unguessable without it."""
    key = hashlib.blake2b(shared_secret, digest_size=64).digest()  # any length -> one key
    launch = detection.launch.time.astimezone(UTC).isoformat()
    digest = hashlib.blake2b(f"alertsim.identity.v1|{detection.event_id}|{launch}".encode(),
                             key=key, digest_size=36).hexdigest()
    return digest[:8], digest[8:]


def identifier(state: EventState, counter: int, stage: Stage, code: str | None,
               since_sequence: int = 0) -> str:
    """`alertsim.NONCE.EVENT.COUNTER.STAGE.PLACE.MAC`: readable, never reused (a fresh
    nonce per event, a counter within it), and unguessable (MAC keyed by the event's
    unpublished secret). With a shared identity, `since_sequence` (the sequence that
    opened the place's warning) stands in for the counter: services whose timers and
    inputs interleave differently still mint the same identifier for the same alert."""
    place = code or "national"
    number = since_sequence if state.shared_identity else counter
    mac = hashlib.blake2b(f"{state.event_id}|{number}|{stage}|{place}".encode(),
                          key=state.secret.encode()[:64], digest_size=8).hexdigest()
    return f"alertsim.{state.nonce}.{state.event_id}.{number:04d}.{stage}.{place}.{mac}"
