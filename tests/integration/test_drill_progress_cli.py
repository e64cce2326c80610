"""A drill's progress when stdout is not a terminal: a real `alertsim drill` in a subprocess
(on its embedded amqtt broker) prints plain lines. Moved from tests/unit/test_drill_progress.py,
since it starts a broker."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from alertsim.drills.scenario import load_scenario
from tests.helpers import restore_sigint

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = Path(sys.executable).with_name("alertsim")
CHOLLIMA = ROOT / "scenarios" / "2023-11-21-chollima-1.yaml"


def test_plain_lines_when_stdout_is_not_a_terminal(tmp_path: Path) -> None:
    """Piped, a drill prints one line per timeline entry and per alert, no escape codes."""
    done = subprocess.run(
        [SCRIPT, "drill", str(CHOLLIMA), "--speed", "300", "--reports", str(tmp_path)],
        capture_output=True, text=True, timeout=120, preexec_fn=restore_sigint, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    assert "\x1b[" not in out
    lines = out.splitlines()
    alerts = [line.split("] ", 1)[1] for line in lines if "] alert " in line]
    assert alerts == ["alert 47 shelter (Alert)", "alert 47 passed (Update)"]
    entries = [line for line in lines if "] detection " in line or "] operator " in line]
    assert len(entries) == len(load_scenario(CHOLLIMA).timeline)
    assert "Scenario clock" not in out  # the live view is for terminals only
