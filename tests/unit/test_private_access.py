"""Third-party private members stay in `alertsim.mqtt.paho_compat`, for the pinned versions."""

from __future__ import annotations

import inspect
import json
import re
import subprocess
import sys
import tomllib
from importlib.metadata import version
from pathlib import Path

import aiomqtt

from alertsim.mqtt import paho_compat

ROOT = Path(__file__).resolve().parents[2]
RUFF = Path(sys.executable).parent / "ruff"


def _pins() -> dict[str, str]:
    """`name -> version` for every `name==version` in pyproject's dependencies."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text("utf-8"))["project"]
    found = (re.fullmatch(r"([A-Za-z0-9_.-]+)==([^;\s]+)", spec.strip())
             for spec in project["dependencies"])
    return {m[1].lower(): m[2] for m in found if m}


def test_no_private_member_access_outside_the_compat_module() -> None:
    """ruff's SLF001 finds no private member access in the package, benchmarks or scripts."""
    done = subprocess.run(
        [str(RUFF), "check", "--select", "SLF001", "--output-format", "json",
         "alertsim", "benchmarks", "scripts"],
        cwd=ROOT, capture_output=True, text=True, check=False, timeout=60)
    findings = json.loads(done.stdout)
    assert [f"{f['filename']}:{f['location']['row']}: {f['message']}"
            for f in findings] == []
    assert done.returncode == 0, done.stderr


def test_installed_versions_are_the_pinned_ones() -> None:
    """aiomqtt and paho-mqtt are installed at exactly the versions pyproject pins."""
    pins = _pins()
    assert pins["aiomqtt"] == version("aiomqtt")
    assert pins["paho-mqtt"] == version("paho-mqtt")


def test_the_compat_module_names_the_pins() -> None:
    """paho_compat says which versions it was written for, and they are pyproject's pins."""
    pins = _pins()
    assert {"aiomqtt": pins["aiomqtt"], "paho-mqtt": pins["paho-mqtt"]} == paho_compat.PINNED
    assert paho_compat.__doc__ is not None
    assert all(f"{name}=={pin}" in paho_compat.__doc__ for name, pin in pins.items()
               if name in paho_compat.PINNED)


def test_aiomqtt_still_has_no_manual_ack_switch() -> None:
    """aiomqtt's client takes no `manual_ack` (when it does, use it and drop the patch)."""
    assert "manual_ack" not in inspect.signature(aiomqtt.Client).parameters
