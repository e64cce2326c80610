"""docker-compose.yml (Docker cannot run here): it parses, and what it runs exists."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from alertsim.adapters.mqtt.broker_config import ROLES
from alertsim.cli import main

COMPOSE = Path(__file__).resolve().parent.parent / "docker-compose.yml"


def services() -> dict[str, Any]:
    """The compose services by name."""
    doc = yaml.safe_load(COMPOSE.read_text("utf-8"))
    assert isinstance(doc, dict)
    found = doc["services"]
    assert isinstance(found, dict)
    return found


def test_secure_profile_uses_generated_roles() -> None:
    """Every env file the secure profile sources is one `broker-config` writes."""
    secure = {name: s for name, s in services().items() if "secure" in s.get("profiles", [])}
    assert set(secure) == {"broker-config", "mosquitto-secure", "service-secure",
                           "subscriber-secure"}
    sourced = re.findall(r"/secure/([\w-]+)\.env", yaml.safe_dump(secure))
    assert sourced
    assert set(sourced) <= set(ROLES)


def test_alertsim_commands_in_compose_parse(capsys: Any) -> None:
    """Each alertsim command line in the compose file is accepted by the CLI's parser."""
    for name, service in services().items():
        command = service.get("command", [])
        text = " ".join(command) if isinstance(command, list) else str(command)
        for line in re.findall(r"alertsim ((?:serve|subscribe|broker-config)[^&|)]*)", text):
            args = line.split()
            assert main([args[0], "--help"]) == 0, name
            options = {a for a in args if a.startswith("--")}
            shown = capsys.readouterr().out
            assert all(o in shown for o in options), (name, options)
