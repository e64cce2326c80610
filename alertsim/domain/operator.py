"""An operator's command for one event (cancel or close): the operator topic's payload."""

from __future__ import annotations

import re
from typing import Annotated, Final

from pydantic import Field

from alertsim.domain.detection import EventId
from alertsim.domain.model import Frozen
from alertsim.domain.vocabulary import Action

__all__ = ["OperatorAction", "OperatorName", "RequestId", "operator_name"]

RequestId = Annotated[str, Field(pattern=r"^[A-Za-z0-9._-]{1,64}$",
                                 description="1-64 characters of [A-Za-z0-9._-]")]
_NAME: Final = r"^[A-Za-z0-9._@-]{1,64}$"
OperatorName = Annotated[str, Field(pattern=_NAME,
                                    description="1-64 characters of [A-Za-z0-9._@-]")]


def operator_name(user: str | None) -> str | None:
    """A broker user name as the payload's `by`, None when it cannot be one."""
    return user if user is not None and re.fullmatch(_NAME, user) else None


class OperatorAction(Frozen):
    """An operator's command for one event: the payload of the operator topic."""

    action: Action
    event_id: EventId
    # Optional, chosen by the sender: a refusal's excerpt on the errors topic carries the
    # whole payload, this id included, so `alertsim cancel/close` can tell its own refusal.
    request_id: RequestId | None = None
    # Optional: who sent it (the operator's broker user name), kept in the audit log. The
    # sender says it; the broker's ACL (only the operator role writes this topic) is what
    # vouches for it (docs/operator.md).
    by: OperatorName | None = None
