"""The draft a builder page edits: one launch, its first detection, later updates and the
operator's actions, with offsets from the launch. `Draft.model_validate(body)` checks the
page's JSON; every problem names its field (`aim.range_km`, `updates[0].at`)."""

from __future__ import annotations

from pydantic import Field, model_validator

from alertsim.builder.sites import site
from alertsim.domain.detection import (
    MAX_RANGE_KM,
    EventId,
    GeoPoint,
    Launch,
    ObjectKind,
    Outcome,
    Uncertainty,
)
from alertsim.domain.model import Frozen
from alertsim.domain.vocabulary import Action, PolicyChoice, Status
from alertsim.drills.scenario_fields import Offset

__all__ = ["ActionStep", "Aim", "Draft", "Update"]

MAX_UPDATES = 20
MAX_ACTIONS = 10


class Aim(Frozen):
    """Where it is predicted to fall: a target point, or an azimuth and a ground range."""

    target: GeoPoint | None = None
    azimuth_deg: float | None = Field(default=None, ge=0.0, lt=360.0)
    range_km: float | None = Field(default=None, ge=0.001, le=MAX_RANGE_KM)

    @model_validator(mode="after")
    def _one_form(self) -> Aim:
        bearing = (self.azimuth_deg, self.range_km)
        if self.target is None and None in bearing:
            raise ValueError("give a target, or both azimuth_deg and range_km")
        if self.target is not None and bearing != (None, None):
            raise ValueError("give a target or an azimuth and range, not both")
        return self


class Update(Frozen):
    """A later detection of the same launch: a new sequence at `at`, the first detection's
    aim and uncertainty unless given, and an outcome on a final update."""

    at: Offset
    aim: Aim | None = None
    uncertainty: Uncertainty | None = None
    outcome: Outcome | None = None


class ActionStep(Frozen):
    """The operator cancels or closes the event at `at`."""

    at: Offset
    action: Action


class Draft(Frozen):
    """Everything the builder needs to write a one-launch scenario."""

    title: str = Field(min_length=1, max_length=200)
    event_id: EventId
    status: Status = "exercise"
    policy: PolicyChoice = "auto"
    object: ObjectKind = "ballistic_missile"
    site: str | None = None  # a listed site's key (named in the sources); None: clicked
    launch: Launch
    aim: Aim
    # None: estimated from the range (compose.estimated_flight_s)
    flight_min: float | None = Field(default=None, gt=0.0, le=240.0)
    detect_at: Offset = 120.0  # the first detection, from the launch
    uncertainty: Uncertainty
    updates: tuple[Update, ...] = Field(default=(), max_length=MAX_UPDATES)
    actions: tuple[ActionStep, ...] = Field(default=(), max_length=MAX_ACTIONS)
    notes: str = Field(default="", max_length=4000)

    @model_validator(mode="after")
    def _after_the_first_detection(self) -> Draft:
        if self.site is not None and site(self.site) is None:
            raise ValueError(f"unknown launch site {self.site!r}")
        steps = [("updates", i, u.at) for i, u in enumerate(self.updates)]
        steps += [("actions", i, a.at) for i, a in enumerate(self.actions)]
        for field, i, at in steps:
            if at < self.detect_at:
                raise ValueError(f"{field}[{i}].at: {at:g} s is before the first detection "
                                 f"({self.detect_at:g} s)")
        return self
