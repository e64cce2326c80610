"""Helpers shared by the broker tests."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import aiomqtt

from alertsim.adapters.mqtt.receiver import Receiver


async def receive(client: aiomqtt.Client, count: int,
                  timeout_s: float = 5.0) -> list[aiomqtt.Message]:
    """The next `count` messages the client gets, or TimeoutError."""
    received: list[aiomqtt.Message] = []
    async with asyncio.timeout(timeout_s):
        async for message in client.messages:
            received.append(message)
            if len(received) == count:
                break
    return received


@asynccontextmanager
async def running(receiver: Receiver, timeout_s: float = 10.0) -> AsyncIterator[Receiver]:
    """The receiver running and subscribed (within `timeout_s`); stopped on exit."""
    ready = asyncio.Event()
    task = asyncio.create_task(receiver.run(ready), name=f"test:{receiver.client_id}")
    try:
        async with asyncio.timeout(timeout_s):
            await ready.wait()
        yield receiver
    finally:
        receiver.stop()
        await task
