"""Test data builders: a valid detection from the numbers an issue table states."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from alertsim.domain.detection import Detection, ObjectKind, Outcome
from alertsim.domain.model import JST

__all__ = ["DEFAULT_LAUNCH_TIME", "make_detection"]

DEFAULT_LAUNCH_TIME = datetime(2023, 11, 21, 22, 43, tzinfo=JST)


def make_detection(
    launch: tuple[float, float],
    impact: tuple[float, float],
    cross_track_km: float,
    along_track_km: float,
    *,
    event_id: str = "test-event",
    sequence: int = 1,
    launch_time: datetime = DEFAULT_LAUNCH_TIME,
    flight: timedelta = timedelta(minutes=14),
    observed_after: timedelta = timedelta(minutes=2),
    object_kind: ObjectKind = "ballistic_missile",
    apogee_km: float | None = None,
    outcome: Outcome | None = None,
) -> Detection:
    """A valid detection from (lat, lon) pairs, the way the issue tables state cases."""
    doc: dict[str, Any] = {
        "event_id": event_id,
        "sequence": sequence,
        "observed_at": (launch_time + observed_after).isoformat(),
        "object": object_kind,
        "launch": {"lat": launch[0], "lon": launch[1], "time": launch_time.isoformat()},
        "predicted": {"impact": {"lat": impact[0], "lon": impact[1]},
                      "impact_time": (launch_time + flight).isoformat()},
        "uncertainty": {"cross_track_km": cross_track_km, "along_track_km": along_track_km},
        "apogee_km": apogee_km,
        "outcome": outcome,
    }
    return Detection.model_validate(doc)
