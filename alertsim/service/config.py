"""The service's configuration: what it sends as, under which rule, and its limits."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

from alertsim.domain.admission import Limits
from alertsim.domain.lifecycle import DEFAULT_CONFIRM_AFTER, FlowRules
from alertsim.domain.prefectures import Atlas
from alertsim.domain.refusal import InputGuards
from alertsim.domain.timeline import Engine
from alertsim.domain.topics import TopicTree
from alertsim.domain.vocabulary import (
    DEFAULT_POLICY,
    AlertStatus,
    PolicyChoice,
    Status,
    alert_status,
)
from alertsim.service.pump import PUBLISH_WINDOW

__all__ = ["ServiceConfig"]


@dataclass(frozen=True)
class ServiceConfig:
    status: Status = "exercise"
    policy: PolicyChoice = DEFAULT_POLICY  # auto: the rule of each detection's launch date
    sender: str = "alertsim@simulator.invalid"
    max_payload_bytes: int = 65_536
    close_after: timedelta = timedelta(minutes=10)
    # With no detection confirming a passage, "passed" waits this long after the last window.
    confirm_after: timedelta = DEFAULT_CONFIRM_AFTER
    national_info: bool = False  # alertsim's own national message (J-Alert has none)
    limits: Limits = field(default_factory=Limits)
    topics: TopicTree = field(default_factory=TopicTree)
    publish_window: int = PUBLISH_WINDOW  # QoS 1 publishes in flight; 1 = the serial pump
    # What one client may cost: receipts per client, refusal rows (`domain.refusal`)
    guards: InputGuards = field(default_factory=InputGuards)
    # Past this size the record takes no more refusal rows or receipts; alerts go on
    # (`service.budget`). None: no cap.
    max_record_bytes: int | None = None

    @property
    def alert_status(self) -> AlertStatus:
        return alert_status(self.status)

    def engine(self, atlas: Atlas) -> Engine:
        """The pure decision and lifecycle engine this configuration runs."""
        rules = FlowRules(confirm_after=self.confirm_after, national=self.national_info)
        return Engine(atlas=atlas, policy=self.policy, status=self.alert_status,
                      sender=self.sender, close_after=self.close_after, events={}, rules=rules)
