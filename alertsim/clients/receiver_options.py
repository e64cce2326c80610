"""What a receiver is (`ReceiverOptions`): its broker, identity, prefectures and trust.

Checked when built: an `InputError` names every bad prefecture code, a client id the
`Receipt` model would refuse, and a status other than exercise or test. From the options
come the MQTT connection (`settings`: a persistent session, fixed id and no clean start,
when asked) and the topic filters the receiver subscribes to (`subscriptions`).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from alertsim.domain.reception import HOLD_S
from alertsim.domain.topics import V1, TopicTree
from alertsim.domain.vocabulary import Status, is_prefecture_code
from alertsim.errors import InputError
from alertsim.mqtt.client import MqttSettings
from alertsim.mqtt.protocol import Protocol
from alertsim.signing import TrustedKeys

__all__ = ["SESSION_EXPIRY_S", "ReceiverOptions"]

_CLIENT_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")  # the Receipt model's client_id rule
# Under MQTT 5 the broker keeps a persistent receiver's session (subscriptions and queued
# QoS 1 alerts) this long after it disconnects.
SESSION_EXPIRY_S = 24 * 3600


@dataclass(frozen=True)
class ReceiverOptions:
    """One receiver's settings; `codes` keeps each prefecture once, in the order given.

    `national`: also the national topic. `persistent`: keep the session across
    connections. `trust`: handle only what one of its keys signed (v2: for the topic it
    arrives on, not expired, not older than what is held; `signing.replay`), and v1
    signatures only with `accept_v1`. `state_file`: where what it holds (identifiers
    handled, last sent per topic) is kept across restarts; None: in memory only.
    `signed_tree`: the tree signatures name, when this receiver listens to a relay that
    moves topics (a drill's fault relay); default `tree`. `control`: obey the conformance
    control topic. `hold_s`: how long an Update waits for its Alert.
    """

    url: str
    protocol: Protocol
    client_id: str
    codes: Sequence[str]
    status: Status = "exercise"
    national: bool = True
    persistent: bool = True
    tree: TopicTree = V1
    trust: TrustedKeys | None = None
    ca_file: Path | None = None
    control: bool = False
    hold_s: float = HOLD_S
    accept_v1: bool = False
    state_file: Path | None = None
    signed_tree: TopicTree | None = None

    def __post_init__(self) -> None:
        problems = [f"codes: {code!r} is not a JIS X 0401 prefecture code (01..47)"
                    for code in self.codes if not is_prefecture_code(code)]
        if not _CLIENT_ID.match(self.client_id):
            problems.append(f"client_id: 1 to 64 of A-Z a-z 0-9 . _ - (got {self.client_id!r})")
        if self.status not in ("exercise", "test"):
            problems.append(f"status: exercise or test (got {self.status!r})")
        if problems:
            raise InputError(source="receiver", problems=problems)
        # A frozen dataclass normalises its own field this way (it has no setter).
        object.__setattr__(self, "codes", tuple(dict.fromkeys(self.codes)))

    @property
    def state_prefix(self) -> str:
        """The state topics' common prefix: a state topic is this plus a prefecture code."""
        return self.tree.state(self.status, "")

    def signed_topic(self, topic: str) -> str:
        """The topic a message received on `topic` must have been signed for."""
        if self.signed_tree is None or not topic.startswith(self.tree.root + "/"):
            return topic
        return self.signed_tree.root + topic.removeprefix(self.tree.root)

    @property
    def control_topic(self) -> str:
        """Where `alertsim conformance` sends this receiver its control messages."""
        return self.tree.conformance_control(self.client_id)

    def settings(self, *, clean: bool = False) -> MqttSettings:
        """The connection: a persistent session (fixed id, no clean start) when asked,
        unless `clean` (coming back as a device that was off)."""
        return MqttSettings(url=self.url, client_id=self.client_id, protocol=self.protocol,
                            clean_start=not self.persistent or clean,
                            session_expiry_s=SESSION_EXPIRY_S, ca_file=self.ca_file)

    def subscriptions(self) -> list[tuple[str, int]]:
        """Topic filters with QoS 1: alerts per prefecture, national, state per prefecture,
        and with `control` the conformance control topic."""
        filters = [self.tree.alerts(self.status, code) for code in self.codes]
        if self.national:
            filters.append(self.tree.alerts(self.status, None))
        filters += [self.tree.state(self.status, code) for code in self.codes]
        if self.control:
            filters.append(self.control_topic)
        return [(topic, 1) for topic in filters]
