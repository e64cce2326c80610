"""docker-compose.yml (Docker cannot run here): it parses, and what it runs exists."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from alertsim.brokers.broker_config import ROLES
from alertsim.cli import main

COMPOSE = Path(__file__).resolve().parents[2] / "docker-compose.yml"


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


def test_list_commands_run_by_the_image_parse(capsys: Any) -> None:
    """A list `command` of a service built here runs under the image's `alertsim` entrypoint:
    its sub-command exists and shows every flag it is given."""
    checked = 0
    for name, service in services().items():
        command = service.get("command")
        if service.get("build") != "." or "entrypoint" in service or not isinstance(command, list):
            continue
        assert main([command[0], "--help"]) == 0, name
        shown = capsys.readouterr().out
        options = {a for a in command if a.startswith("--")}
        assert all(o in shown for o in options), (name, options)
        checked += 1
    assert checked >= 5


def test_emqx_profile_is_a_three_node_cluster_with_redundant_services() -> None:
    """The emqx profile: three EMQX nodes seeding each other, and two services on different
    nodes with their own client ids and records but one identity secret."""
    emqx = {name: s for name, s in services().items() if "emqx" in s.get("profiles", [])}
    nodes = {name: s for name, s in emqx.items() if str(s.get("image", "")).startswith("emqx/")}
    assert len(nodes) == 3
    names = {s["environment"]["EMQX_NODE__NAME"] for s in nodes.values()}
    assert len(names) == 3
    for node in nodes.values():
        seeds = node["environment"]["EMQX_CLUSTER__STATIC__SEEDS"].strip("[]").split(",")
        assert set(seeds) == names
        host = node["environment"]["EMQX_NODE__NAME"].split("@")[1]
        assert node["networks"]["emqx"]["aliases"] == [host]
    serving = [s for s in emqx.values() if s.get("command", [None])[0] == "serve"]
    assert len(serving) == 2
    brokers = {s["command"][s["command"].index("--broker") + 1] for s in serving}
    dbs = {s["command"][s["command"].index("--db") + 1] for s in serving}
    secrets = {s["command"][s["command"].index("--identity-secret-file") + 1] for s in serving}
    client_ids = {s["environment"]["ALERTSIM_CLIENT_ID"] for s in serving}
    assert (len(brokers), len(dbs), len(secrets), len(client_ids)) == (2, 2, 1, 2)
    hosts = {b.removeprefix("mqtt://").split(":")[0] for b in brokers}
    assert hosts <= {n.split("@")[1] for n in names}
