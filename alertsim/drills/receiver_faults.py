"""The receiver-side faults of a drill (`ReceiverFaults`): drop-connection and late-join.

They act on the drill's in-process `Receiver`s, when the fault relay
(`alertsim.drills.faults`) says what it has just relayed:

    drop-connection  one or two receivers of the expected prefectures, chosen before they
                     start (they get persistent sessions, so the broker keeps what arrives
                     while they are away), lose their connection right after handling their
                     prefecture's first Alert relayed, and reconnect with the usual backoff
    late-join        one more receiver per expected prefecture (`rx-TOKEN-late-CODE`,
                     `late_join_plan`) starts only once that prefecture's state names an
                     alert, so it must learn it from the retained state

Each fault applied is recorded through the relay's `record`; at `stop()`, how often each
dropped receiver connected in all.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import Callable, Iterable, Mapping
from typing import Literal

from alertsim.clients.receiver import Receiver, ReceiverOptions

__all__ = ["ReceiverFaultKind", "ReceiverFaults", "late_join_plan"]

ReceiverFaultKind = Literal["drop-connection", "late-join"]
Record = Callable[[ReceiverFaultKind, str, str], None]  # (kind, target, detail)
HANDLED_WAIT_S = 5.0  # a drop waits this long for the receiver to have handled the Alert
MAX_DROPS = 2
READY_S = 15.0  # a late joiner has this long to subscribe


def late_join_plan(codes: Iterable[str], token: str) -> dict[str, list[str]]:
    """One late-joining receiver per prefecture, `rx-{token}-late-{code}`."""
    return {f"rx-{token}-late-{code}": [code] for code in sorted(set(codes))}


class ReceiverFaults:
    """Drops and late joiners of one drill. `kinds` says which apply; `rng` is the relay's
    (one seed chooses every fault); `late` are the late joiners' options, one prefecture
    each."""

    def __init__(self, kinds: frozenset[str], rng: random.Random, record: Record,
                 late: Iterable[ReceiverOptions] = ()) -> None:
        self.kinds = kinds
        self.rng = rng
        self.record = record
        self._drops: dict[str, Receiver] = {}  # client id -> receiver still to drop
        self._dropped: dict[str, Receiver] = {}
        self._late = {options.codes[0]: Receiver(options) for options in late}
        self._all_late = list(self._late.values())
        self._late_tasks: list[asyncio.Task[None]] = []

    def prepare(self, receivers: Mapping[str, Receiver], codes: Iterable[str]) -> None:
        """Choose the receivers to drop (before they start: they get persistent sessions,
        so the broker keeps what arrives while they are away)."""
        if "drop-connection" not in self.kinds:
            return
        wanted = set(codes)
        candidates = sorted(cid for cid, r in receivers.items() if wanted & set(r.codes))
        for cid in self.rng.sample(candidates, min(MAX_DROPS, len(candidates))):
            receivers[cid].keep_session()
            self._drops[cid] = receivers[cid]

    async def alert_relayed(self, identifier: str, prefecture: str | None,
                            described: str) -> None:
        """An Alert went out: drop the connection of a chosen receiver of its prefecture,
        once it has it (`described` names the alert in the record)."""
        for cid, receiver in list(self._drops.items()):
            if prefecture not in receiver.codes:
                continue
            del self._drops[cid]
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(HANDLED_WAIT_S):
                    await receiver.handled(identifier)
            handled = receiver.inbox.knows(identifier)
            receiver.drop_connection()
            self._dropped[cid] = receiver
            self.record("drop-connection", cid,
                        f"connection dropped {'after it handled' if handled else 'before it had'}"
                        f" {described}; it reconnects to its persistent session")

    async def state_named_alert(self, code: str) -> None:
        """Prefecture `code`'s state, naming an alert, went out: start its late joiner (if
        one still waits) and return once it has subscribed."""
        receiver = self._late.pop(code, None)
        if receiver is None:
            return
        ready = asyncio.Event()
        self._late_tasks.append(asyncio.create_task(receiver.run(ready),
                                                    name=f"late:{receiver.client_id}"))
        async with asyncio.timeout(READY_S):
            await ready.wait()
        self.record("late-join", receiver.client_id,
                    f"started once prefecture {code}'s state named an alert; it learns "
                    "that alert from the retained state")

    def receivers(self) -> dict[str, Receiver]:
        """The late joiners started so far and the receivers dropped, by client id."""
        return {**{r.client_id: r for r in self._started()}, **self._dropped}

    def _started(self) -> list[Receiver]:
        waiting = list(self._late.values())
        return [r for r in self._all_late if r not in waiting]

    async def stop(self) -> None:
        """Stop the late joiners; record how often each dropped receiver connected."""
        for receiver in self._started():
            receiver.stop()
        await asyncio.gather(*self._late_tasks, return_exceptions=True)
        for cid, receiver in self._dropped.items():
            self.record("drop-connection", cid, f"connected {receiver.sessions} times in all")
