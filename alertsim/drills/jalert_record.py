"""What J-Alert actually did in a historical launch (a scenario's `record:`), from public
sources: the areas it addressed and when each stage went out. The drill report holds the
drill against it (drills/report/against_record.py)."""

from __future__ import annotations

from datetime import datetime

from pydantic import AwareDatetime, Field, model_validator

from alertsim.domain.model import Frozen
from alertsim.domain.vocabulary import PrefectureStage
from alertsim.drills.scenario_fields import Code, Located, Offset

__all__ = ["DEFAULT_TOLERANCE_S", "JAlertRecord", "RecordedStage"]

DEFAULT_TOLERANCE_S = 120.0  # how far a drill's time may lie from the record's
class RecordedStage(Frozen):
    """One stage J-Alert sent, when (its `sent` time), and to which of the record's areas
    (all of them when `prefectures` is left out)."""

    stage: PrefectureStage
    at: AwareDatetime
    prefectures: tuple[Code, ...] | None = Field(default=None, min_length=1)


class JAlertRecord(Frozen):
    """What J-Alert actually did in a historical launch, from public sources: the areas it
    addressed and the stages each got, for the report to hold the drill against."""

    sources: tuple[str, ...] = Field(min_length=1)
    notes: str = ""
    tolerance: Offset = DEFAULT_TOLERANCE_S
    areas: tuple[Code, ...]
    stages: tuple[RecordedStage, ...] = ()

    @model_validator(mode="after")
    def _stages_within_areas(self) -> JAlertRecord:
        twice = sorted({c for c in self.areas if self.areas.count(c) > 1})
        if twice:
            raise Located(("areas",), f"{', '.join(twice)} listed more than once")
        seen: set[tuple[str, str]] = set()
        for i, recorded in enumerate(self.stages):
            outside = sorted(set(recorded.prefectures or ()) - set(self.areas))
            if outside:
                raise Located(("stages", i, "prefectures"),
                               f"{', '.join(outside)} not among the record's areas; "
                               "list every prefecture J-Alert addressed under 'areas'")
            if not self.areas:
                raise Located(("stages", i), "the record addresses no area, so no stage "
                               "can have been sent; list the areas under 'areas'")
            for code in self.prefectures_of(recorded):
                if (recorded.stage, code) in seen:
                    raise Located(("stages", i),
                                   f"{recorded.stage} to {code} is recorded twice; the "
                                   "record holds one time per prefecture and stage")
                seen.add((recorded.stage, code))
        return self

    def prefectures_of(self, recorded: RecordedStage) -> tuple[str, ...]:
        """The prefectures a recorded stage went to: its own list, or every area."""
        return recorded.prefectures if recorded.prefectures is not None else self.areas

    def times(self) -> dict[tuple[str, str], datetime]:
        """(prefecture, stage) -> when J-Alert sent it."""
        return {(code, recorded.stage): recorded.at
                for recorded in self.stages for code in self.prefectures_of(recorded)}
