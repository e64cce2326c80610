"""Base model and shared field types for the domain's pydantic models."""

from __future__ import annotations

from datetime import timedelta, timezone
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

JST = timezone(timedelta(hours=9), "JST")

Latitude = Annotated[float, Field(ge=-90.0, le=90.0, description="degrees north, WGS84")]
Longitude = Annotated[float, Field(ge=-180.0, le=180.0, description="degrees east, WGS84")]


class Frozen(BaseModel):
    """Immutable, strict-about-extras model: the shape of every value inside the core."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)
