"""What a refused input costs the record: a bounded excerpt, its size, a bounded reason,
and, past a rate per client, a counter instead of a row.

    excerpt        the first EXCERPT_BYTES bytes, kept in the record beside the full size
    escaped        an excerpt as one line of printable text, for logs and people
    bounded        a reason cut at REASON_CHARS (a schema error can list every bad field)
    InputGuards    the rates: receipts per client, refusal rows per client and overall
    RefusalGate    per refusal: a row (excerpt, reason, errors-topic message) or a count

A "client" is the topic the input came in on: MQTT tells a subscriber nothing about the
sender, and only receipts carry an identity in their topic (`receipts/{client_id}`).
Detections and operator actions share one topic each, so everyone who may publish there
is one client. Their acceptance is never rate limited (a flood would then shut out the
real sensor and stop alerts); only the recording of their refusals is.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final, Literal

from alertsim.domain.rate import Rate, RateGuard

__all__ = ["ALL_CLIENTS", "EXCERPT_BYTES", "REASON_CHARS", "InputGuards", "Recording",
           "RefusalGate", "bounded", "escaped", "excerpt"]

EXCERPT_BYTES: Final = 256
REASON_CHARS: Final = 500
ALL_CLIENTS: Final = "*"  # the counter of refusals beyond the overall rate, any client
Recording = Literal["row", "count"]


def excerpt(raw: bytes) -> bytes:
    """The first EXCERPT_BYTES bytes of an input (the record keeps these and the size)."""
    return raw[:EXCERPT_BYTES]


def _printable(char: str) -> str:
    code = ord(char)
    if 0xDC80 <= code <= 0xDCFF:  # an undecodable byte (surrogateescape)
        return f"\\x{code - 0xDC00:02x}"
    if char == "\\":
        return "\\\\"  # so that an escape in the output always means an escape
    return char if char.isprintable() else char.encode("unicode_escape").decode("ascii")


def escaped(raw: bytes, limit: int = EXCERPT_BYTES) -> str:
    """The first `limit` bytes as one line of printable text: valid UTF-8 as is, other
    bytes, control characters and backslashes escaped; '...' when the input was longer."""
    text = raw[:limit].decode("utf-8", "surrogateescape")
    return "".join(_printable(c) for c in text) + ("..." if len(raw) > limit else "")


def bounded(reason: str) -> str:
    """`reason` cut to REASON_CHARS characters, saying how much was left out."""
    if len(reason) <= REASON_CHARS:
        return reason
    return f"{reason[:REASON_CHARS]}... ({len(reason) - REASON_CHARS} more characters)"


@dataclass(frozen=True)
class InputGuards:
    """Rates that bound what one client costs; None: no limit.

    `receipts`: receipts accepted per receipts client id. `refusal_rows`: refusals recorded
    one row each (excerpt, reason, errors-topic message) per client, and `refusal_rows_all`
    over all clients together (made-up client ids each get a fresh bucket); past either,
    a refusal only adds to a counter.
    """

    receipts: Rate | None = field(default_factory=lambda: Rate(200.0, 2000))
    refusal_rows: Rate | None = field(default_factory=lambda: Rate(0.2, 20))
    refusal_rows_all: Rate | None = field(default_factory=lambda: Rate(2.0, 100))


class RefusalGate:
    """Per refusal: "row" while the client and everyone together are within their rates,
    else "count" under the key to add to (the client, or ALL_CLIENTS past the overall rate,
    so that made-up client ids cannot multiply the counters either)."""

    def __init__(self, guards: InputGuards) -> None:
        self._client = None if guards.refusal_rows is None else RateGuard(guards.refusal_rows)
        self._all = (None if guards.refusal_rows_all is None
                     else RateGuard(guards.refusal_rows_all, max_clients=1))

    def recording(self, client: str, now: float) -> tuple[Recording, str]:
        """How to record this refusal of `client`'s input at `now` (monotonic seconds)."""
        if self._client is not None and not self._client.allow(client, now):
            return "count", client
        if self._all is not None and not self._all.allow(ALL_CLIENTS, now):
            return "count", ALL_CLIENTS
        return "row", client
