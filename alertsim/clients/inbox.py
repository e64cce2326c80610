"""What a receiver does with each alert and state message that reaches it (`Inbox`).

No connection here: the receiver (`alertsim.clients.receiver`) hands each message in, and
takes the receipts out to send. For each message, in order:

    verify   the 3.1.1 envelope is always unwrapped; with `trust`, a message unsigned,
             tampered, malformed or signed by an unknown key is rejected before anything
             else: not delivered, not de-duplicated (a forgery cannot suppress the real
             alert with its identifier), no receipt; `on_rejected(topic, reason)`. So is
             a genuine one replayed (`signing.replay`): signed v1 (unless `accept_v1`),
             for another topic, expired, or older than what is held for its topic
    parse    an `Alert` or a `PrefectureState`; one that does not validate is logged
             (`receiver.rejected`) and dropped
    decide   `alertsim.domain.reception.Reception`: de-duplication by identifier, Updates
             and Cancels held until their Alert, the late join read from retained state
    record   every alert handled is a `Delivery`; those shown go to `on_delivery`; each
             one handled queues a `Receipt` (`shown` or `ignored`, and the belief)
    keep     with a `state_file`, what it holds (every identifier handled, the last sent
             per topic) is written after each message and read back at start: a restart
             shows nothing again (a copy is an ignored duplicate, "already shown")
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TypeVar

from pydantic import BaseModel, ValidationError

from alertsim.clients.receiver_options import ReceiverOptions
from alertsim.domain.messages import Alert, Outcome, PrefectureState, Receipt, Via
from alertsim.domain.reception import Handled, Reception
from alertsim.errors import describe_validation_error
from alertsim.logs import get_logger
from alertsim.signing import (
    Claims,
    Kind,
    MalformedEnvelope,
    Memory,
    Policy,
    Verdict,
    check,
    load_memory,
    refusal,
    save_memory,
    unwrap,
)
from alertsim.signing.replay import KEEP_S

__all__ = [
    "Delivery",
    "Inbox",
    "Listeners",
    "OnDelivery",
    "OnMessage",
    "OnRejected",
    "OnState",
    "RawMessage",
    "UserProperties",
]

log = get_logger(__name__)

OnDelivery = Callable[["Delivery"], Awaitable[None] | None]
OnState = Callable[[PrefectureState | None, str], Awaitable[None] | None]
OnRejected = Callable[[str, str], Awaitable[None] | None]  # (topic, reason)
OnMessage = Callable[["RawMessage"], Awaitable[None] | None]
UserProperties = tuple[tuple[str, str], ...]

Parsed = TypeVar("Parsed", bound=BaseModel)


@dataclass(frozen=True)
class Delivery:
    """One alert as a receiver read it; `duplicate` when its identifier was seen before."""

    identifier: str
    prefecture: str | None
    stage: str
    msg_type: str
    received_at: datetime
    duplicate: bool
    alert: Alert
    outcome: Outcome = "shown"
    via: Via = "alert"


@dataclass(frozen=True)
class RawMessage:
    """An alert or state message as it arrived (after any signature check and unwrapping)."""

    topic: str
    payload: bytes
    user_properties: UserProperties
    retained: bool
    received_at: datetime


@dataclass(frozen=True)
class Listeners:
    """Who is told what: `on_delivery` each alert shown; `on_state` each state (None when
    the state topic was cleared) with its prefecture code; `on_rejected` each message
    `trust` refused; `on_message` every alert and state message as it arrived."""

    on_delivery: OnDelivery | None = None
    on_state: OnState | None = None
    on_rejected: OnRejected | None = None
    on_message: OnMessage | None = None


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


async def _call(callback: Callable[..., Awaitable[None] | None], *args: object) -> None:
    result = callback(*args)
    if inspect.isawaitable(result):
        await result


class Inbox:
    """One receiver's messages: verified, decided, recorded, acknowledged.

    `deliveries` keeps every alert handled (duplicates and ignored ones included, a held
    Update once released); `states` the last state per prefecture; `rejected` (topic,
    reason) of what `trust` refused. Receipts wait in `pending_receipts` until
    `receipt_sent()`. `now` is the clock for held Updates falling due (aware UTC).
    `memory` is what it holds against replays (`signing.replay`), from `state_file`.
    """

    def __init__(self, options: ReceiverOptions, listeners: Listeners,
                 now: Callable[[], datetime]) -> None:
        self.client_id = options.client_id
        self.trust = options.trust
        self.listeners = listeners
        self.deliveries: list[Delivery] = []
        self.states: dict[str, PrefectureState | None] = {}
        self.rejected: list[tuple[str, str]] = []
        self.reception = Reception(options.hold_s)
        self.options = options
        self.memory = Memory() if options.state_file is None else load_memory(options.state_file)
        self.reception.known.update(self.memory.shown)  # shown before a restart: not again
        self._remembered = frozenset(self.memory.shown)
        self._policy = Policy(accept_v1=options.accept_v1)
        self._until: dict[str, int] = {}  # identifier -> remember until (ms), from its claims
        self.pending_receipts: deque[Receipt] = deque()
        self._state_prefix = options.state_prefix
        self._now = now
        self._receipt_added = asyncio.Event()
        self._held = asyncio.Event()  # a message was held: its due time may be the first
        self._handled = asyncio.Condition()  # notified after messages are handled

    async def handle(self, topic: str, payload: bytes, properties: UserProperties,
                     retained: bool, received_at: datetime) -> None:
        """Handle one alert or state message, as the module docstring says."""
        opened = await self._verified(topic, payload, properties, received_at)
        if opened is None:
            return
        verified, claims = opened
        if self.listeners.on_message is not None:
            await _call(self.listeners.on_message,
                        RawMessage(topic, verified, properties, retained, received_at))
        if topic.startswith(self._state_prefix):
            await self._handle_state(topic, verified, retained, received_at)
        else:
            await self._handle_alert(topic, verified, received_at, claims)
        self._keep(received_at)

    def _keep(self, now: datetime) -> None:
        """Write what this receiver holds to its state file (when it has one)."""
        if self.options.state_file is not None:
            self.memory.prune(_ms(now))
            save_memory(self.options.state_file, self.memory)

    async def _verified(self, topic: str, payload: bytes, properties: UserProperties,
                        received_at: datetime) -> tuple[bytes, Claims | None] | None:
        """The original payload and its signed claims; None (after `on_rejected`) when
        `trust` refuses it."""
        if self.trust is None:
            try:
                return unwrap(payload, properties)[0], None
            except MalformedEnvelope:
                return payload, None
        original, verdict = check(payload, properties, self.trust)
        reason = self._refusal(topic, verdict, received_at)
        if reason is None:
            if verdict.claims is not None:
                self.memory.accept(verdict.claims)
            return original, verdict.claims
        self.rejected.append((topic, reason))
        log.warning("receiver.unverified", client_id=self.client_id, topic=topic,
                    reason=reason)
        if self.listeners.on_rejected is not None:
            await _call(self.listeners.on_rejected, topic, reason)
        return None

    def _refusal(self, topic: str, verdict: Verdict, received_at: datetime) -> str | None:
        """Why a message is refused: its signature, or (good) its replay (`refusal`)."""
        if not verdict.ok:
            return verdict.reason or "rejected"
        kind: Kind = "state" if topic.startswith(self._state_prefix) else "alert"
        return refusal(verdict.claims, topic=topic, kind=kind, now_ms=_ms(received_at),
                       memory=self.memory, policy=self._policy,
                       expected_topic=self.options.signed_topic(topic))

    def _parsed(self, model: type[Parsed], payload: bytes, topic: str) -> Parsed | None:
        """The payload as `model`, or None after logging why it was rejected."""
        try:
            return model.model_validate_json(payload)
        except ValidationError as exc:
            log.warning("receiver.rejected", client_id=self.client_id, topic=topic,
                        problems=describe_validation_error(exc))
            return None

    async def _handle_state(self, topic: str, payload: bytes, retained: bool,
                            received_at: datetime) -> None:
        code = topic.removeprefix(self._state_prefix)
        state: PrefectureState | None = None
        if payload:
            state = self._parsed(PrefectureState, payload, topic)
            if state is None:
                return
        self.states[code] = state
        if self.listeners.on_state is not None:
            await _call(self.listeners.on_state, state, code)
        await self._emit(self.reception.on_state(code, state, retained=retained,
                                                 received_at=received_at))

    async def _handle_alert(self, topic: str, payload: bytes, received_at: datetime,
                            claims: Claims | None) -> None:
        alert = self._parsed(Alert, payload, topic)
        if alert is None:
            return
        if claims is not None and claims.expires_ms is not None:
            # A copy past this is refused as expired: no need to remember it longer.
            self._until[alert.identifier] = claims.expires_ms + self._policy.skew_ms
        handled = self.reception.on_alert(alert, received_at)
        if self.reception.held:
            self._held.set()
        if not handled:
            log.debug("alert.held", client_id=self.client_id, identifier=alert.identifier,
                      references=list(alert.referenced_identifiers()))
        await self._emit(handled)

    async def release_overdue(self) -> None:
        """Show held Updates whose Alert has not come within the hold limit, at the moment
        the first falls due (woken when a message is held, to look again). Runs until
        cancelled."""
        while True:
            due = self.reception.next_due()
            self._held.clear()
            wait = None if due is None else max(0.0, (due - self._now()).total_seconds())
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(wait):
                    await self._held.wait()
            await self._emit(self.reception.overdue(self._now()))
            self._keep(self._now())

    async def _emit(self, handled: Sequence[Handled]) -> None:
        """Record, show (when shown) and acknowledge each handled message, in order."""
        for h in handled:
            self.memory.remember(h.identifier, self._until.pop(
                h.identifier, _ms(h.received_at) + KEEP_S * 1000))
            if h.duplicate and h.identifier in self._remembered:
                log.info("receiver.duplicate", client_id=self.client_id,
                         identifier=h.identifier, reason="already shown")
            if h.alert is not None:
                await self._record(h, h.alert)
            self.pending_receipts.append(Receipt(
                client_id=self.client_id, identifier=h.identifier, received_at=h.received_at,
                prefecture=h.prefecture, stage=h.stage, duplicate=h.duplicate,
                outcome=h.outcome, via=h.via, belief=h.belief))
            self._receipt_added.set()
        if handled:
            async with self._handled:
                self._handled.notify_all()

    async def _record(self, h: Handled, alert: Alert) -> None:
        """Keep the alert as a `Delivery`, and show it when it is shown."""
        delivery = Delivery(identifier=h.identifier, prefecture=h.prefecture, stage=h.stage,
                            msg_type=alert.msgType, received_at=h.received_at,
                            duplicate=h.duplicate, alert=alert, outcome=h.outcome, via=h.via)
        self.deliveries.append(delivery)
        log.debug("alert.received", client_id=self.client_id, identifier=h.identifier,
                  prefecture=h.prefecture, stage=h.stage, duplicate=h.duplicate,
                  outcome=h.outcome)
        if h.shown and self.listeners.on_delivery is not None:
            await _call(self.listeners.on_delivery, delivery)

    async def next_receipt(self) -> Receipt:
        """The oldest receipt not yet sent, once there is one (it stays queued until
        `receipt_sent()`, so a connection lost while sending it loses nothing)."""
        while not self.pending_receipts:
            self._receipt_added.clear()
            await self._receipt_added.wait()
        return self.pending_receipts[0]

    def receipt_sent(self) -> None:
        """The broker has the oldest receipt: drop it from the queue."""
        self.pending_receipts.popleft()

    def knows(self, identifier: str) -> bool:
        """True once the message `identifier` has been handled (shown, held or ignored)."""
        return identifier in self.reception.known

    async def handled(self, identifier: str) -> None:
        """Return once the message `identifier` has been handled (shown, held or ignored)."""
        async with self._handled:
            await self._handled.wait_for(lambda: self.knows(identifier))
