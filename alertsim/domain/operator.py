"""An operator's command for one event (cancel or close): the operator topic's payload."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from alertsim.domain.detection import EventId
from alertsim.domain.model import Frozen
from alertsim.domain.vocabulary import Action

__all__ = ["OperatorAction", "RequestId"]

RequestId = Annotated[str, Field(pattern=r"^[A-Za-z0-9._-]{1,64}$",
                                 description="1-64 characters of [A-Za-z0-9._-]")]


class OperatorAction(Frozen):
    """An operator's command for one event: the payload of the operator topic."""

    action: Action
    event_id: EventId
    # Optional, chosen by the sender: a refusal's excerpt on the errors topic carries the
    # whole payload, this id included, so `alertsim cancel/close` can tell its own refusal.
    request_id: RequestId | None = None
