"""The one reconnect loop: run a broker session again after a BrokerError, with backoff.

    async def session(up: Callable[[], None]) -> None:
        async with connect(settings) as client:
            await subscribe(client, topic)
            up()                      # established: the next loss backs off from the start
            async for topic, payload in incoming(client):
                ...

    await reconnecting(session, what="receiver", client_id="rx-01")

`reconnecting` runs `session(up)`; when it raises `BrokerError` (alone or in an exception
group from a TaskGroup) it logs, sleeps a "full jitter" delay from `backoff_delays` and runs
it again; whatever `session` returns is returned. Other errors propagate.

Cancellation always propagates at once: `CancelledError` is never caught, and a
cancellation that something underneath lost is raised again instead of reconnecting. (In
Python 3.11 `asyncio.wait_for` returns the result when the awaited future completes in the
same loop iteration as the cancel, and a TaskGroup reports a child's error instead of its
parent's cancellation.) Each attempt runs in a task of its own, so the loop's task counts
only the cancellations asked of it (`Task.cancelling()`): a 3.11 TaskGroup whose child fails
after the body has finished leaves a cancel request on its own task that is never withdrawn.

Log events (structlog, logger `alertsim.reconnect`), with `what`, `error`, `retry_in_s` and
the caller's fields: `broker.unreachable` when an attempt failed before `up()`,
`broker.disconnected` when an established session was lost.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable, Coroutine, Iterator
from typing import Any, TypeVar

import structlog

from alertsim.errors import BrokerError

__all__ = ["Session", "backoff_delays", "reconnecting"]

log = structlog.get_logger("alertsim.reconnect")

T = TypeVar("T")

# A session gets `up`, to call once it is established (connected, subscribed).
Session = Callable[[Callable[[], None]], Coroutine[Any, Any, T]]


def backoff_delays(*, rng: random.Random, initial: float = 0.2, maximum: float = 10.0,
                   factor: float = 2.0) -> Iterator[float]:
    """Endless "full jitter" backoff: attempt n sleeps uniform(0, min(maximum, initial*factor**n)).

    Pure apart from `rng`; pass a seeded `random.Random` in tests.
    """
    if initial <= 0 or maximum < initial or factor < 1:
        raise ValueError("need 0 < initial <= maximum and factor >= 1")
    ceiling = initial
    while True:
        yield rng.uniform(0.0, ceiling)
        ceiling = min(maximum, ceiling * factor)


def _first_leaf(error: BaseException) -> BaseException:
    while isinstance(error, BaseExceptionGroup):
        error = error.exceptions[0]
    return error


async def reconnecting(session: Session[T], *, what: str, rng: random.Random | None = None,
                       initial: float = 0.2, maximum: float = 10.0, **fields: object) -> T:
    """Run `session(up)` until it returns, again after each BrokerError, with jittered backoff.

    `what` and `fields` go into the log lines. Delays come from `backoff_delays(rng=rng,
    initial=initial, maximum=maximum)` and start again from `initial` after a session that
    called `up()`. Cancellation is never retried: see the module docstring.
    """
    task = asyncio.current_task()
    already_cancelling = task.cancelling() if task is not None else 0
    rng = rng or random.Random()
    delays = backoff_delays(rng=rng, initial=initial, maximum=maximum)
    while True:
        established = False

        def up() -> None:
            nonlocal established
            established = True

        lost: BaseException | None = None
        attempt = asyncio.create_task(session(up), name=f"{what}: session")
        try:
            return await attempt  # cancelling this task cancels the attempt and waits for it
        except* BrokerError as group:
            lost = _first_leaf(group)
        if task is not None and task.cancelling() > already_cancelling:
            # Cancelled while the session failed, and the CancelledError got lost on the way.
            raise asyncio.CancelledError(f"{what}: cancelled while the broker session ended")
        if established:
            delays = backoff_delays(rng=rng, initial=initial, maximum=maximum)
        delay = next(delays)
        log.warning("broker.disconnected" if established else "broker.unreachable",
                    what=what, error=str(lost), retry_in_s=round(delay, 2), **fields)
        await asyncio.sleep(delay)
