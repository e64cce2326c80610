"""The service's notices besides alerts and states: the payloads of the errors topic and of
the retained service status. The service builds them from these models, and `alertsim
schema error|status` prints their schemas, so payload and schema cannot drift apart.

    ErrorReport    {root}/errors: one rejected input, with the reason and an excerpt
    ServiceStatus  {root}/service/status (retained): online, or offline (the last will)
    JstTime        the one rule for times in payloads: an aware datetime kept in JST, so
                   it is written with +09:00 like the alerts' `sent` (never `Z`)
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, AwareDatetime, Field

from alertsim.domain.model import JST, Frozen

__all__ = ["EXCERPT_BYTES", "ErrorReport", "JstTime", "ServiceStatus", "error_report",
           "in_jst"]

EXCERPT_BYTES = 200


def in_jst(moment: datetime) -> datetime:
    """The same instant in JST (+09:00)."""
    return moment.astimezone(JST)


JstTime = Annotated[AwareDatetime, AfterValidator(in_jst)]


class ErrorReport(Frozen):
    """An input the service would not act on, as published on the errors topic."""

    source: str = Field(description="the topic (or file) the input came from")
    reason: str = Field(description="why it was refused, for people to read")
    received_at: JstTime = Field(description="when the service received it (+09:00)")
    size: int = Field(ge=0, description="the input's size in bytes")
    excerpt: str = Field(description=f"its first {EXCERPT_BYTES} bytes as UTF-8 (invalid "
                                     "bytes replaced)")


class ServiceStatus(Frozen):
    """Whether the service is connected: `online` once it listens, `offline` as last will."""

    status: Literal["online", "offline"]


def error_report(raw: bytes, *, reason: str, source: str,
                 received_at: AwareDatetime) -> ErrorReport:
    """The report of one rejected input: its size and a readable excerpt."""
    return ErrorReport(source=source, reason=reason, received_at=received_at, size=len(raw),
                       excerpt=raw[:EXCERPT_BYTES].decode("utf-8", "replace"))
