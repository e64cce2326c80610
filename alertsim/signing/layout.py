"""The bytes a v2 signature covers: one canonical layout, so any client can rebuild them.

Five fields, in this order, each as a 4-byte big-endian length followed by its bytes:

    1. the version tag  b"alertsim-sig-v2"
    2. the topic        UTF-8, exactly as published (e.g. alertsim/v1/exercise/alerts/13)
    3. sent             ASCII decimal, wall-clock milliseconds since the Unix epoch
    4. expires          ASCII decimal milliseconds, or empty (b"") when it never expires
    5. the payload      the exact original bytes (empty for a cleared retained state)

Length prefixes make the layout unambiguous: no topic or payload can be read as another
field. Ed25519 signs these bytes directly (no pre-hash). Pure: no I/O, no clock.
"""

from __future__ import annotations

import re

from alertsim.signing.signature import Claims, MalformedEnvelope

__all__ = ["VERSION_TAG", "parse_ms", "signed_bytes"]

VERSION_TAG = b"alertsim-sig-v2"
_MS = re.compile(r"^[0-9]{1,16}$")  # 16 digits: past the year 300,000, and no sign


def _field(data: bytes) -> bytes:
    return len(data).to_bytes(4, "big") + data


def signed_bytes(claims: Claims, payload: bytes) -> bytes:
    """The canonical bytes a v2 signature covers (the module docstring's layout)."""
    expires = b"" if claims.expires_ms is None else str(claims.expires_ms).encode("ascii")
    return b"".join(_field(part) for part in (
        VERSION_TAG, claims.topic.encode("utf-8"), str(claims.sent_ms).encode("ascii"),
        expires, payload))


def parse_ms(value: object, what: str) -> int:
    """A carried time (decimal text under MQTT 5, an integer in the envelope) as ms since
    the epoch; MalformedEnvelope when it is anything else (a bool, a sign, a fraction)."""
    text = str(value) if isinstance(value, int) and not isinstance(value, bool) else value
    if not isinstance(text, str) or not _MS.match(text):
        raise MalformedEnvelope(f"{what} is not a decimal count of milliseconds")
    return int(text)
