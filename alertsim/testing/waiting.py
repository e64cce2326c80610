"""`eventually`: wait in a test until something observable has happened, without sleeping blind.

    await eventually(lambda: len(receiver.deliveries) == 2, what="both alerts delivered")
    rows = await eventually(lambda: store.views.outbox(kind="alert"), what="alerts recorded")

Prefer waiting on an event the code under test sets (an `asyncio.Event`, a retained status
message) when there is one; poll with `eventually` when there is only state to look at.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable
from typing import TypeVar, overload

__all__ = ["eventually"]

T = TypeVar("T")


# `timeout` is the helper's own deadline, as in pytest plugins and asyncio itself.
@overload
async def eventually(condition: Callable[[], Awaitable[T | None]], *, timeout: float = ...,  # noqa: ASYNC109
                     interval: float = ..., what: str = ...) -> T: ...


@overload
async def eventually(condition: Callable[[], T | None], *, timeout: float = ...,  # noqa: ASYNC109
                     interval: float = ..., what: str = ...) -> T: ...


async def eventually(condition: Callable[[], object], *, timeout: float = 5.0,  # noqa: ASYNC109
                     interval: float = 0.02, what: str = "") -> object:
    """Call `condition` (sync or async) every `interval` s until its value is truthy; return it.

    Raises AssertionError naming `what` and the last value when `timeout` s have passed
    (a slow async condition counts against the timeout too).
    """
    last: object = None
    deadline = asyncio.timeout(timeout)
    try:
        async with deadline:
            while True:
                value = condition()
                if inspect.isawaitable(value):
                    value = await value
                if value:
                    return value
                last = value
                await asyncio.sleep(interval)
    except TimeoutError:
        if not deadline.expired():
            raise  # the condition's own TimeoutError
        raise AssertionError(f"not within {timeout} s: {what or 'condition'} "
                             f"(last value: {last!r})") from None
