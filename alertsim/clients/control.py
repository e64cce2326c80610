"""The conformance control messages a receiver obeys (`alertsim conformance`).

With `control`, a receiver also listens on `{root}/conformance/control/{client_id}`. The
one message it knows is `{"action": "rejoin", "after_s": N}` (0 <= N <= 300): leave at
once and come back N seconds later with a clean session, as a device switched off would,
so that it must rely on the retained state. Pure: the receiver acts on the answer.
"""

from __future__ import annotations

import json

__all__ = ["MAX_REJOIN_AFTER_S", "rejoin_after"]

MAX_REJOIN_AFTER_S = 300.0


def rejoin_after(payload: bytes) -> float:
    """The seconds to stay away, from a rejoin message; ValueError saying what is wrong
    with anything else (the receiver logs it and carries on)."""
    try:
        body = json.loads(payload)
        after = float(body["after_s"])
        action = body.get("action")
    except (ValueError, KeyError, TypeError) as exc:
        raise ValueError(str(exc)) from exc
    if action != "rejoin" or not 0 <= after <= MAX_REJOIN_AFTER_S:
        raise ValueError("action must be rejoin, after_s 0..300")
    return after
