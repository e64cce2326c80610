"""MQTT topic names (v1). Every topic alertsim uses is built here and nowhere else.

    {root}/detections                    in: detection v1 JSON
    {root}/operator                      in: {"action": "cancel"|"close", "event_id": ...}
    {root}/receipts/{client_id}          in: receipts from receivers
    {root}/{status}/alerts/{code}        out: alerts for one prefecture (QoS 1)
    {root}/{status}/alerts/national      out: national information
    {root}/{status}/state/{code}         out, retained: the prefecture's current state
    {root}/{status}/cap/{code}           out (serve/drill --cap): the alert as CAP 1.2 XML
    {root}/{status}/cap/national         out (serve/drill --cap): national, as CAP 1.2 XML
    {root}/errors                        out: rejected inputs, with the reason
    {root}/service/status                out, retained: online / offline (last will)
    {root}/conformance/control/{client}  out (`alertsim conformance`): {"action": "rejoin",
                                         "after_s": N} asks a client under test to rejoin

`{root}` is `alertsim/v1` for a service (`serve`); each drill runs under a root of its own,
`alertsim/v1/drills/{drill_id}`, so no service on the same broker sees a drill's inputs
and no drill sees another's. `{status}` is `exercise` or `test`, never `actual`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

from alertsim.domain.vocabulary import Status

__all__ = ["DEFAULT_ROOT", "TopicTree", "drill_root", "is_topic_root"]

DEFAULT_ROOT: Final = "alertsim/v1"
_ROOT = re.compile(r"^[A-Za-z0-9._-]+(/[A-Za-z0-9._-]+)*$")


def is_topic_root(text: str) -> bool:
    """True for a topic prefix of plain levels: no wildcards, no empty or `$` levels."""
    return len(text) <= 200 and _ROOT.match(text) is not None


def drill_root(drill_id: str) -> str:
    """The topic root of one drill."""
    return f"{DEFAULT_ROOT}/drills/{drill_id}"


@dataclass(frozen=True)
class TopicTree:
    """The topics under one root; `TopicTree()` is the service's `alertsim/v1` tree."""

    root: str = DEFAULT_ROOT

    def __post_init__(self) -> None:
        if not is_topic_root(self.root):
            raise ValueError(f"topic root: plain levels of A-Z a-z 0-9 . _ - separated by /, "
                             f"no wildcards (got {self.root!r})")

    @property
    def detections(self) -> str:
        return f"{self.root}/detections"

    @property
    def operator(self) -> str:
        return f"{self.root}/operator"

    @property
    def receipts_all(self) -> str:
        return f"{self.root}/receipts/+"

    @property
    def errors(self) -> str:
        return f"{self.root}/errors"

    @property
    def service_status(self) -> str:
        return f"{self.root}/service/status"

    def alerts(self, status: Status, code: str | None) -> str:
        return f"{self.root}/{status}/alerts/{code or 'national'}"

    def cap(self, status: Status, code: str | None) -> str:
        """Where `--cap` publishes the CAP 1.2 XML of an alert (QoS 1, not retained)."""
        return f"{self.root}/{status}/cap/{code or 'national'}"

    def state(self, status: Status, code: str) -> str:
        return f"{self.root}/{status}/state/{code}"

    def receipts(self, client_id: str) -> str:
        return f"{self.root}/receipts/{client_id}"

    def conformance_control(self, client_id: str) -> str:
        """Where `alertsim conformance` tells the client under test to rejoin (QoS 1)."""
        return f"{self.root}/conformance/control/{client_id}"

    def is_receipt(self, topic: str) -> bool:
        """True for a receipts topic of this tree."""
        return topic.startswith(f"{self.root}/receipts/")

    def client_of_receipt(self, topic: str) -> str:
        """The client id at the end of a receipts topic."""
        return topic.removeprefix(f"{self.root}/receipts/")


# The service's own tree, for callers that never change the root.
V1: Final = TopicTree()
ROOT: Final = V1.root
DETECTIONS: Final = V1.detections
OPERATOR: Final = V1.operator
RECEIPTS_ALL: Final = V1.receipts_all
ERRORS: Final = V1.errors
SERVICE_STATUS: Final = V1.service_status
alerts = V1.alerts
state = V1.state
receipts = V1.receipts
client_of_receipt = V1.client_of_receipt
