"""Detection bounds: every value that validates is one the whole chain can handle."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from alertsim.cli import main
from alertsim.domain.detection import MAX_SEQUENCE, Detection
from alertsim.domain.prefectures import Atlas
from alertsim.domain.timeline import Engine
from alertsim.errors import describe_validation_error
from alertsim.testing import make_detection

BASE = make_detection((40.6, 126.4), (34.33, 178.57), 30, 100)


def doc(**changes: Any) -> dict[str, Any]:
    """The base detection as JSON data, with dotted-path changes applied."""
    data: dict[str, Any] = json.loads(BASE.model_dump_json(exclude_none=True))
    for path, value in changes.items():
        *parents, leaf = path.split("__")
        target = data
        for key in parents:
            target = target[key]
        target[leaf] = value
    return data


@pytest.mark.parametrize(("changes", "expected"), [
    ({"sequence": MAX_SEQUENCE + 1}, "sequence: Input should be less than or equal to"),
    ({"launch__time": "0001-01-01T00:00:00+09:00"}, "launch.time: must be between 1950-01-01"),
    ({"observed_at": "9999-12-31T23:59:59+09:00"}, "observed_at: must be between"),
    ({"predicted__impact_time": "9999-12-31T23:59:59+09:00"},
     "predicted.impact_time: must be between"),
    ({"predicted__impact_time": "2023-11-22T03:00:00+09:00"},
     "predicted: a flight may last at most 4 hours"),
    ({"observed_at": "2023-11-25T00:00:00+09:00"},
     "observed_at must be between 1 hour before and 2 days after launch.time"),
])
def test_poison_values_are_refused_with_a_reason(changes: dict[str, Any], expected: str) -> None:
    """Values that once crashed the service (OverflowError) are rejected, naming the field."""
    with pytest.raises(ValidationError) as caught:
        Detection.model_validate(doc(**changes))
    assert any(expected in line for line in describe_validation_error(caught.value))


def test_largest_allowed_values_go_through_the_whole_chain(atlas: Atlas) -> None:
    """The extreme accepted values decide and build alerts without overflow."""
    late = BASE.launch.time.replace(year=2199, month=12, day=31, hour=16)
    detection = Detection.model_validate(doc(
        sequence=MAX_SEQUENCE, launch__time=late.isoformat(),
        observed_at=(late + timedelta(hours=3)).isoformat(),
        predicted__impact_time=(late + timedelta(hours=4)).isoformat()))
    engine = Engine(atlas=atlas, policy="prefecture", status="Exercise", sender="s@x.invalid",
                    close_after=timedelta(minutes=10), events={})
    transition = engine.detection(detection, now=late, nonce="n")
    assert [a.prefecture for a in transition.alerts] == ["01", "02"]
    assert engine.tick(now=late + timedelta(hours=5))  # windows end, close: no overflow


@pytest.mark.parametrize("changes", [
    {"sequence": 2**63},
    {"launch__time": "0001-01-01T00:00:00+09:00"},
    {"predicted__impact_time": "9999-12-31T23:59:59+09:00"},
])
def test_decide_refuses_poison_values_with_exit_2(changes: dict[str, Any], tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    """`alertsim decide` names the field and exits 2 where it once printed a traceback."""
    path = tmp_path / "poison.json"
    path.write_text(json.dumps(doc(**changes)), "utf-8")
    assert main(["decide", str(path)]) == 2
    err = capsys.readouterr().err
    assert f"alertsim decide: invalid input in {path}:" in err
    assert "Traceback" not in err
