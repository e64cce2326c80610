"""docker-compose.yml (Docker cannot run here): it parses, and what it runs exists."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path
from types import ModuleType
from typing import Any

import yaml

from alertsim.brokers.broker_config import ROLES, acl_text
from alertsim.cli import main

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
PROFILES = ("local", "secure", "emqx")


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
                           "subscriber-secure", "dashboard-secure"}
    sourced = re.findall(r"/secure/([\w-]+)\.env", yaml.safe_dump(secure))
    assert sourced
    assert set(sourced) <= set(ROLES)


def test_alertsim_commands_in_compose_parse(capsys: Any) -> None:
    """Each alertsim command line in the compose file is accepted by the CLI's parser."""
    for name, service in services().items():
        command = service.get("command", [])
        text = " ".join(command) if isinstance(command, list) else str(command)
        for line in re.findall(r"alertsim ((?:serve|subscribe|broker-config|drill)[^&|)]*)",
                               text + " " + " ".join(service.get("entrypoint", []))):
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
    assert checked >= 2


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
    serving = [" ".join(s["command"]).split("alertsim serve", 1)[1].split()
               for s in emqx.values() if "alertsim serve" in " ".join(s.get("command", []))]
    assert len(serving) == 2
    brokers = {s[s.index("--broker") + 1] for s in serving}
    dbs = {s[s.index("--db") + 1] for s in serving}
    secrets = {s[s.index("--identity-secret-file") + 1] for s in serving}
    client_ids = {s[s.index("--client-id") + 1] for s in serving}
    assert (len(brokers), len(dbs), len(secrets), len(client_ids)) == (2, 2, 1, 2)
    hosts = {b.removeprefix("mqtt://").split(":")[0] for b in brokers}
    assert hosts <= {n.split("@")[1] for n in names}


def test_every_service_belongs_to_exactly_one_profile() -> None:
    """No service without a profile: `--profile secure` or `--profile emqx` never also
    starts the anonymous chain, and no chain's dependency lives in another profile."""
    found = services()
    for name, service in found.items():
        assert len(service.get("profiles", [])) == 1, name
        assert service["profiles"][0] in PROFILES, name
        needs = service.get("depends_on", [])
        for other in needs if isinstance(needs, list) else needs.keys():
            assert found[other]["profiles"] == service["profiles"], (name, other)
        shared = str(service.get("network_mode", "")).removeprefix("service:")
        if shared:
            assert found[shared]["profiles"] == service["profiles"], (name, shared)
    anonymous = {n for n, s in found.items() if "docker/mosquitto.conf" in str(s)}
    assert {p for n in anonymous for p in found[n]["profiles"]} == {"local"}


def test_each_chain_publishes_a_dashboard_on_loopback() -> None:
    """Each profile's first service serves the dashboard, relayed to 127.0.0.1:8080."""
    found = services()
    for profile in PROFILES:
        chain = {n: s for n, s in found.items() if s["profiles"] == [profile]}
        relays = [s for s in chain.values() if "socat" in str(s.get("image", ""))]
        assert len(relays) == 1, profile
        target = relays[0]["network_mode"].removeprefix("service:")
        assert "127.0.0.1:8080:8080" in chain[target]["ports"], profile
        command = " ".join(chain[target]["command"])
        assert "--dashboard --port 8081" in " ".join(command.split()), profile
        assert relays[0]["command"][-1] == "TCP:127.0.0.1:8081"


def test_drill_runs_a_shipped_scenario() -> None:
    """`docker compose run --rm drill scenarios/NAME.yaml`: the image holds the scenarios."""
    drill = services()["drill"]
    assert " ".join(drill["entrypoint"][:2]) == "alertsim drill"
    assert drill["working_dir"] == "/app"
    assert (ROOT / drill["command"][0]).is_file()
    dockerfile = (ROOT / "Dockerfile").read_text("utf-8")
    assert "COPY scenarios ./scenarios" in dockerfile
    assert "WORKDIR /app" in dockerfile  # the scenarios' folder, /app/scenarios


def _emqx_auth() -> ModuleType:
    spec = importlib.util.spec_from_file_location("emqx_auth", ROOT / "docker/emqx_auth.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_emqx_requires_passwords_and_the_generated_rules() -> None:
    """Every EMQX node authenticates against the bootstrap users, denies what no rule
    allows, and the services and subscriber connect as their broker-config roles."""
    found = services()
    nodes = [s for s in found.values() if str(s.get("image", "")).startswith("emqx/")]
    for node in nodes:
        env = node["environment"]
        assert env["EMQX_AUTHENTICATION__1__BACKEND"] == "built_in_database"
        assert env["EMQX_AUTHENTICATION__1__BOOTSTRAP_FILE"] == "/auth/emqx-users.csv"
        assert env["EMQX_AUTHORIZATION__NO_MATCH"] == "deny"
        assert env["EMQX_AUTHORIZATION__SOURCES__1__PATH"] == "/auth/emqx-acl.conf"
        assert "emqx-auth:/auth:ro" in node["volumes"]
    clients = [found[n] for n in ("service-a", "service-b", "subscriber-emqx")]
    sourced = {m for c in clients for m in re.findall(r"/auth/([\w-]+)\.env", str(c))}
    assert sourced == {"service-exercise", "receiver-exercise"}
    assert "emqx_auth.py /auth" in " ".join(found["emqx-auth"]["command"])


def test_emqx_rules_are_the_mosquitto_rules() -> None:
    """docker/emqx_auth.py turns each generated ACL line into one EMQX rule, then denies."""
    module = _emqx_auth()
    acl = acl_text()
    rules = module.emqx_acl(acl).splitlines()
    assert rules[-1] == "{deny, all}."
    assert len(rules) - 1 == sum(1 for line in acl.splitlines() if line.startswith("topic "))
    assert '{allow, {username, "sensor"}, publish, ["alertsim/v1/detections"]}.' in rules
    users = module.users_csv({"users": {"sensor": {"password": "p"}}}).splitlines()
    assert users == ["user_id,password,is_superuser", "sensor,p,false"]


def test_mosquitto_conf_comments_are_true() -> None:
    """The shipped Mosquitto config no longer claims TLS or passwords are unsupported."""
    conf = (ROOT / "docker/mosquitto.conf").read_text("utf-8")
    assert "not supported" not in conf
    assert "roadmap" not in conf
    assert "allow_anonymous true" in conf
