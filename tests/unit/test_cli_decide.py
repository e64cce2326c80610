"""`alertsim decide`: output forms and a specific exit-2 message for every bad input."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from alertsim.cli import main
from alertsim.cli.render import position

GOOD: dict[str, Any] = {
    "event_id": "2023-11-21-sohae", "sequence": 1,
    "observed_at": "2023-11-21T22:45:00+09:00", "object": "space_launch_vehicle",
    "launch": {"lat": 39.66, "lon": 124.705, "time": "2023-11-21T22:43:00+09:00"},
    "predicted": {"impact": {"lat": 13.64, "lon": 127.88},
                  "impact_time": "2023-11-21T22:57:00+09:00"},
    "uncertainty": {"cross_track_km": 100, "along_track_km": 100},
}


def write(tmp_path: Path, doc: Any) -> Path:
    path = tmp_path / "detection.json"
    path.write_text(doc if isinstance(doc, str) else json.dumps(doc), "utf-8")
    return path


def changed(path: str, value: Any) -> dict[str, Any]:
    doc = json.loads(json.dumps(GOOD))
    *parents, last = path.split(".")
    node = doc
    for key in parents:
        node = node[key]
    if value is KeyError:
        del node[last]
    else:
        node[last] = value
    return doc


def test_json_output(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The JSON form has event_id, sorted shelter codes, prefectures and impact."""
    assert main(["decide", str(write(tmp_path, GOOD))]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["event_id"] == "2023-11-21-sohae"
    assert out["shelter"] == ["47"]
    assert out["prefectures"][0]["name_ja"] == "沖縄県"
    assert out["prefectures"][0]["reason"] == "overflight"
    assert set(out["prefectures"][0]["window"]) == {"start", "end"}
    assert out["impact"]["classification"] == "outside"
    assert out["impact"]["prefecture"] is None


def test_text_output(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The text form names prefectures in Japanese and English, with reason and window."""
    assert main(["decide", str(write(tmp_path, GOOD)), "--format", "text"]) == 0
    out = capsys.readouterr().out
    assert "47 沖縄県" in out
    assert "Okinawa" in out
    assert "overflight" in out
    assert "JST" in out


def test_adjacent_policy_flag(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """--policy prefecture+adjacent adds neighbours (Tsugaru case: Akita and Iwate)."""
    doc = changed("launch", {"lat": 40.6, "lon": 126.4, "time": "2023-11-21T22:43:00+09:00"})
    doc["predicted"]["impact"] = {"lat": 34.33, "lon": 178.57}
    doc["uncertainty"] = {"cross_track_km": 30, "along_track_km": 100}
    assert main(["decide", str(write(tmp_path, doc)), "--policy", "prefecture+adjacent"]) == 0
    assert json.loads(capsys.readouterr().out)["shelter"] == ["01", "02", "03", "05"]


BAD_INPUTS = [
    ("bad json", '{"event_id": "x",', "Invalid JSON"),
    ("missing field", changed("launch", KeyError), "launch: Field required"),
    ("lat above 90", changed("launch.lat", 95.0), "launch.lat: Input should be less than or equal to 90"),
    ("lat below -90", changed("predicted.impact.lat", -91), "predicted.impact.lat: Input should be greater than or equal to -90"),
    ("lon above 180", changed("launch.lon", 181), "launch.lon: Input should be less than or equal to 180"),
    ("NaN", json.dumps(GOOD).replace("39.66", "NaN"), "launch.lat: Input should be a finite number"),
    ("infinity", json.dumps(GOOD).replace("127.88", "Infinity"), "predicted.impact.lon: Input should be a finite number"),
    ("naive timestamp", changed("launch.time", "2023-11-21T22:43:00"), "launch.time: Input should have timezone info"),
    ("impact equals launch", changed("predicted.impact", {"lat": 39.66, "lon": 124.705}), "predicted: impact point equals the launch point"),
    ("range over 15,000 km", changed("predicted", {"azimuth_deg": 90, "range_km": 15500, "impact_time": "2023-11-21T22:57:00+09:00"}), "predicted.range_km: Input should be less than or equal to 15000"),
    ("impact point too far", changed("predicted.impact", {"lat": -39.66, "lon": -55.3}), "exceeds the 15,000 km limit"),
    ("negative cross-track", changed("uncertainty.cross_track_km", -1), "uncertainty.cross_track_km: Input should be greater than or equal to 0"),
    ("negative along-track", changed("uncertainty.along_track_km", -5), "uncertainty.along_track_km: Input should be greater than or equal to 0"),
    ("impact before launch", changed("predicted.impact_time", "2023-11-21T22:40:00+09:00"), "impact_time must be later than launch.time"),
    ("bad event id", changed("event_id", "no spaces allowed"), "event_id: String should match pattern"),
    ("sequence zero", changed("sequence", 0), "sequence: Input should be greater than or equal to 1"),
    ("unknown object", changed("object", "balloon"), "object: Input should be 'ballistic_missile' or 'space_launch_vehicle'"),
    ("unknown field", changed("colour", "red"), "colour: Extra inputs are not permitted"),
    ("not an object", "[1, 2]", "Input should be an object"),
]


@pytest.mark.parametrize(("case", "doc", "message"), BAD_INPUTS, ids=[c[0] for c in BAD_INPUTS])
def test_bad_input_exits_2_with_a_specific_message(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], case: str, doc: Any,
        message: str) -> None:
    """Each bad input exits with code 2 and a message naming the field and the problem."""
    assert main(["decide", str(write(tmp_path, doc))]) == 2, case
    captured = capsys.readouterr()
    assert captured.out == ""
    assert message in captured.err
    assert "Traceback" not in captured.err


def test_missing_file_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A file that does not exist is bad input too, not a crash."""
    assert main(["decide", str(tmp_path / "nope.json")]) == 2
    assert "cannot read file" in capsys.readouterr().err


def test_console_script_never_prints_a_traceback(tmp_path: Path) -> None:
    """The installed entry point exits 2 on bad input and 2 on an unknown flag, no traceback."""
    bad = write(tmp_path, changed("launch.lat", 95.0))
    for argv in (["decide", str(bad)], ["decide", str(bad), "--policy", "block"]):
        proc = subprocess.run([sys.executable, "-m", "alertsim", *argv], capture_output=True,
                              text=True, check=False, timeout=60)
        assert proc.returncode == 2
        assert "Traceback" not in proc.stderr
        assert ("launch.lat" in proc.stderr) or ("'block' is not one of" in proc.stderr)


def test_text_names_hemispheres() -> None:
    """Southern latitudes and western longitudes read as S and W, not as minus signs."""
    assert position(35.68, 139.76) == "35.680N 139.760E"
    assert position(-20.0, -40.0) == "20.000S 40.000W"


def test_readme_example_matches_what_decide_prints(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The README's detection, run through `alertsim decide --format text`, prints exactly
    the README's console block (so the example cannot drift from the code)."""
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text("utf-8")
    section = readme.split("## A detection and the decision it produces", 1)[1]
    detection = section.split("```json\n", 1)[1].split("```", 1)[0]
    console = section.split("```console\n", 1)[1].split("```", 1)[0].splitlines()
    assert console[0] == "$ alertsim decide detection.json --format text"
    path = tmp_path / "detection.json"
    path.write_text(detection, encoding="utf-8")
    assert main(["decide", str(path), "--format", "text"]) == 0
    assert capsys.readouterr().out.splitlines() == console[1:]
