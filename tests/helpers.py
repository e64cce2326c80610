"""Helpers shared by the broker tests."""

from __future__ import annotations

import asyncio

import aiomqtt


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
