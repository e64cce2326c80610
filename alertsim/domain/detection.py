"""Detection contract v1: a simulated launch detection or one of its track updates.

A detection names an event; a later `sequence` for the same event supersedes earlier ones.
The prediction is either an impact point or an azimuth and range; both end at
`impact_time`. `uncertainty` is the corridor half-width around the ground track
(`cross_track_km`) and how far the impact may fall beyond or short of the predicted point
(`along_track_km`).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    AwareDatetime,
    Discriminator,
    Field,
    Tag,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pyproj import Geod

from alertsim.domain.model import Frozen, Latitude, Longitude

MAX_RANGE_KM = 15_000.0
# Bounds every later step can handle: SQLite's signed 64-bit integers; datetimes far from
# datetime.min/max (alerts add hours to them, JST conversion shifts them); flights no
# longer than any rocket's; an observation near its launch.
MAX_SEQUENCE = 2**63 - 1
EARLIEST = datetime(1950, 1, 1, tzinfo=UTC)
LATEST = datetime(2200, 1, 1, tzinfo=UTC)
MAX_FLIGHT = timedelta(hours=4)
OBSERVED_BEFORE_LAUNCH = timedelta(hours=1)
OBSERVED_AFTER_LAUNCH = timedelta(days=2)
GEOD = Geod(ellps="WGS84")


def _in_era(moment: datetime) -> datetime:
    if not EARLIEST <= moment < LATEST:
        raise ValueError(f"must be between {EARLIEST:%Y-%m-%d} and {LATEST:%Y-%m-%d} (UTC)")
    return moment


Moment = Annotated[AwareDatetime, AfterValidator(_in_era)]

EventId = Annotated[str, Field(pattern=r"^[A-Za-z0-9._-]{1,64}$",
                               description="1-64 characters of [A-Za-z0-9._-]")]
ObjectKind = Literal["ballistic_missile", "space_launch_vehicle"]
Outcome = Literal["impact", "orbit", "breakup", "lost"]


class GeoPoint(Frozen):
    lat: Latitude
    lon: Longitude


class Launch(GeoPoint):
    time: Moment


class PredictedImpact(Frozen):
    """Prediction given as an impact point."""

    impact: GeoPoint
    impact_time: Moment


class PredictedBearing(Frozen):
    """Prediction given as an initial azimuth and a ground range from the launch point."""

    azimuth_deg: float = Field(ge=0.0, lt=360.0)
    range_km: float = Field(ge=0.001, le=MAX_RANGE_KM)  # at least 1 m, as for an impact point
    impact_time: Moment


def _prediction_form(value: object) -> str:
    """Pick the prediction form by its keys, so errors speak of one form, not both."""
    if isinstance(value, dict):
        return "bearing-form" if "azimuth_deg" in value or "range_km" in value else "impact-form"
    return "bearing-form" if isinstance(value, PredictedBearing) else "impact-form"


Prediction = Annotated[
    Annotated[PredictedImpact, Tag("impact-form")]
    | Annotated[PredictedBearing, Tag("bearing-form")],
    Discriminator(_prediction_form),
]
# Union tags appear in error locations; error formatting drops them.
PREDICTION_TAGS = frozenset({"impact-form", "bearing-form"})


class Uncertainty(Frozen):
    cross_track_km: float = Field(ge=0.0, le=2_000.0)
    along_track_km: float = Field(ge=0.0, le=5_000.0)


class Detection(Frozen):
    """One detection update (contract v1); see docs/schema/detection.schema.json."""

    event_id: EventId
    sequence: int = Field(ge=1, le=MAX_SEQUENCE, strict=True)
    observed_at: Moment
    object: ObjectKind
    launch: Launch
    predicted: Prediction
    apogee_km: float | None = Field(default=None, gt=0.0, le=10_000.0)
    uncertainty: Uncertainty
    outcome: Outcome | None = None

    @field_validator("predicted")
    @classmethod
    def _prediction_is_a_flight(
        cls, predicted: PredictedImpact | PredictedBearing, info: ValidationInfo
    ) -> PredictedImpact | PredictedBearing:
        launch = info.data.get("launch")
        if not isinstance(launch, Launch):
            return predicted  # launch already failed; its own error says why
        if predicted.impact_time <= launch.time:
            raise ValueError("impact_time must be later than launch.time")
        if predicted.impact_time - launch.time > MAX_FLIGHT:
            raise ValueError(f"a flight may last at most {MAX_FLIGHT.total_seconds() / 3600:g} "
                             "hours (impact_time - launch.time)")
        if isinstance(predicted, PredictedImpact):
            impact = predicted.impact
            _, _, metres = GEOD.inv(launch.lon, launch.lat, impact.lon, impact.lat)
            if metres < 1.0:
                raise ValueError("impact point equals the launch point")
            if metres / 1000.0 > MAX_RANGE_KM:
                raise ValueError(
                    f"range {metres / 1000.0:,.0f} km exceeds the {MAX_RANGE_KM:,.0f} km limit")
        return predicted

    @model_validator(mode="after")
    def _observed_near_launch(self) -> Detection:
        if not (self.launch.time - OBSERVED_BEFORE_LAUNCH <= self.observed_at
                <= self.launch.time + OBSERVED_AFTER_LAUNCH):
            raise ValueError("observed_at must be between 1 hour before and 2 days after "
                             "launch.time")
        return self

    @property
    def impact_time(self) -> datetime:
        return self.predicted.impact_time

    def impact_point(self) -> tuple[float, float]:
        """Predicted impact as (lon, lat), whichever form the prediction took."""
        if isinstance(self.predicted, PredictedImpact):
            return self.predicted.impact.lon, self.predicted.impact.lat
        lon, lat, _ = GEOD.fwd(self.launch.lon, self.launch.lat, self.predicted.azimuth_deg,
                               self.predicted.range_km * 1000.0)
        return float(lon), float(lat)
