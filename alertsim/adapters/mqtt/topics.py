"""MQTT topic names (v1). Every topic alertsim uses is built here and nowhere else.

    alertsim/v1/detections                    in: detection v1 JSON
    alertsim/v1/operator                      in: {"action": "cancel"|"close", "event_id": ...}
    alertsim/v1/receipts/{client_id}          in: receipts from receivers
    alertsim/v1/{status}/alerts/{code}        out: alerts for one prefecture (QoS 1)
    alertsim/v1/{status}/alerts/national      out: national information
    alertsim/v1/{status}/state/{code}         out, retained: the prefecture's current state
    alertsim/v1/errors                        out: rejected inputs, with the reason
    alertsim/v1/service/status                out, retained: online / offline (last will)

`{status}` is `exercise` or `test`, never `actual`.
"""

from __future__ import annotations

from typing import Literal

from alertsim.domain.messages import AlertStatus

ROOT = "alertsim/v1"
DETECTIONS = f"{ROOT}/detections"
OPERATOR = f"{ROOT}/operator"
RECEIPTS_ALL = f"{ROOT}/receipts/+"
ERRORS = f"{ROOT}/errors"
SERVICE_STATUS = f"{ROOT}/service/status"
TopicStatus = Literal["exercise", "test"]


def alerts(status: TopicStatus, code: str | None) -> str:
    return f"{ROOT}/{status}/alerts/{code or 'national'}"


def state(status: TopicStatus, code: str) -> str:
    return f"{ROOT}/{status}/state/{code}"


def receipts(client_id: str) -> str:
    return f"{ROOT}/receipts/{client_id}"


def client_of_receipt(topic: str) -> str:
    """The client id at the end of a receipts topic."""
    return topic.rsplit("/", 1)[-1]


def alert_status(status: TopicStatus) -> AlertStatus:
    """The CAP status (Exercise/Test) of a topic status segment (exercise/test)."""
    return "Exercise" if status == "exercise" else "Test"
