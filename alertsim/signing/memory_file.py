"""A receiver's `Memory` in a small JSON file, so that a restart forgets nothing it held.

    {"version": 1, "client_id": "alertsim-sub-13-1a2b3c4d" or null,
     "sent": {"TOPIC": MS, ...}, "shown": {"IDENTIFIER": UNTIL_MS, ...}}

Written whole to a temporary file next to it, then renamed over it: a crash leaves the
old file or the new one, never half of one. `claim` takes an exclusive lock (a `.lock`
file beside it, held until the process ends) so that two receivers never share a file.
"""

from __future__ import annotations

import fcntl
import json
import os
from pathlib import Path
from typing import IO

from alertsim.errors import InputError
from alertsim.signing.replay import Memory

__all__ = ["claim", "load_memory", "release", "save_memory"]

_VERSION = 1


def _table(body: dict[str, object], name: str) -> dict[str, int]:
    table = body.get(name, {})
    if not isinstance(table, dict) or not all(
            isinstance(k, str) and type(v) is int for k, v in table.items()):
        raise ValueError(f"{name}: not an object of integers")
    return dict(table)


def _memory(body: object) -> Memory:
    if not isinstance(body, dict) or body.get("version") != _VERSION:
        raise ValueError(f"not a version {_VERSION} receiver memory")
    client_id = body.get("client_id")
    if client_id is not None and not isinstance(client_id, str):
        raise ValueError("client_id: not a string")
    return Memory(client_id, _table(body, "sent"), _table(body, "shown"))


def load_memory(path: Path) -> Memory:
    """The memory in `path`; empty when there is no file yet. InputError naming the file
    when it is not one (delete it to start afresh)."""
    try:
        return _memory(json.loads(path.read_bytes()))
    except FileNotFoundError:
        return Memory()
    except (OSError, ValueError) as exc:
        raise InputError(source=str(path), problems=[f"receiver memory: {exc}"]) from exc


def save_memory(path: Path, memory: Memory) -> None:
    """Write `memory` to `path` atomically (temporary file, fsync, rename)."""
    body = {"version": _VERSION, "client_id": memory.client_id, "sent": memory.sent,
            "shown": memory.shown}
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp")
    with temporary.open("w", encoding="utf-8") as file:
        json.dump(body, file, separators=(",", ":"))
        file.flush()
        os.fsync(file.fileno())
    temporary.replace(path)


def claim(path: Path) -> IO[bytes] | None:
    """Lock `path` for this process (its `.lock` beside it); the open lock file, to keep
    while the receiver runs, or None when another process holds it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    lock = path.with_name(f"{path.name}.lock").open("ab")
    try:
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        lock.close()
        return None
    return lock


def release(lock: IO[bytes]) -> None:
    """Give the lock back (closing the file releases it)."""
    lock.close()
