"""A locked-down Mosquitto 2 configuration: passwords, ACL per user, two listeners, durable.

`write_config(dir, ...)` writes `mosquitto.conf`, `passwd` and `passwd-services` (one per
listener), `acl`, `credentials.json` (mode 0600: every user's random password and broker
URL), one `USER.env` per user, and with `tls=True` a private CA and a server certificate
(`alertsim.brokers.certificates`). Anonymous clients are refused. All paths in the config
are absolute. The config has no `user` line: run Mosquitto as the owner of `dir` (as root,
add `user root`, or Mosquitto switches to the `mosquitto` user and cannot read the 0600
files). docs/security.md explains the design and what it does not cover.

Identities. A client id is the broker's key for a session: a second connection with the
same id takes the first one over. So the **clients listener** (`port`) sets
`use_username_as_clientid true`: every client there gets its user name as client id, and
nobody can take another user's id or session. One user per receiver
(`receivers=N`: `receiver-exercise`, `receiver-exercise-2` ... and the same for test), each
with its own password. Receipts are bound to the user: a receiver user may write only
`{root}/receipts/<its user name>`, which is its client id.
The **services listener** (`service_port`, by default `port + 1`) keeps client-chosen ids,
because a service holds two connections (`ID` and `ID-out`) and a drill many: only the
trusted roles (`service-*`, `drill`) have a password there (`per_listener_settings true`:
each listener its own password file), so only they can choose, or take over, an id.

Roles (`ROLES`; `{root}` is the service's root, `alertsim/v1` by default):

- `service-exercise` / `service-test` (services listener): publish the alerts, CAP XML
  (`--cap`) and state of their own status only, `{root}/service/status` and `{root}/errors`;
  read detections, operator actions and receipts.
- `sensor`: publish detections only. `operator`: publish operator actions; read
  `{root}/service/status`, `{root}/errors` and the states (`{root}/+/state/#`), where the
  service's answer shows (`alertsim cancel` / `close`, the dashboard's console).
- `receiver-exercise` / `receiver-test` (and their numbered users): read their status's
  alerts, CAP XML and state, and `{root}/service/status`; publish receipts only on
  `{root}/receipts/<own user name>`; read their own `{root}/conformance/control/<user>`,
  which `service-test` (as `alertsim conformance` runs) may write.
- `drill` (services listener): everything under `{root}/drills/#`.
- `monitor`: read-only, the whole `{root}/#` tree (dashboards, debugging, tests).

Size: Mosquitto 2.0.11 caps size only globally (`message_size_limit`, `max_packet_size`
apply to every client), not per user or listener: payloads are capped at
`MAX_PAYLOAD_BYTES`, the service's own input limit, and packets at `MAX_PACKET_BYTES`.

Durability: `autosave_interval 1` saves the in-memory database every second, so a `kill -9`
keeps the service's session and its queued inputs; Mosquitto acknowledges a publish before
it saves, so what it acknowledged in the last second is still at risk (docs/security.md
has the measured window).

Password file lines are Mosquitto 2's `user:$7$ITERATIONS$SALT$HASH` (PBKDF2-HMAC-SHA512,
base64 salt and hash; 12-byte salt and 101 iterations are `mosquitto_passwd`'s defaults).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final, Literal

from alertsim.brokers.certificates import TlsFiles, write_tls_files
from alertsim.domain.topics import DEFAULT_ROOT

__all__ = [
    "DEFAULT_ITERATIONS",
    "MAX_PACKET_BYTES",
    "MAX_PAYLOAD_BYTES",
    "ROLES",
    "SERVICE_ROLES",
    "GeneratedConfig",
    "acl_text",
    "config_text",
    "password_line",
    "users",
    "write_config",
]

DEFAULT_ITERATIONS: Final = 101
SALT_BYTES: Final = 12
# The service refuses inputs over 64 KiB (ServiceConfig.max_payload_bytes): the broker
# refuses them first, so an oversized publish never reaches, or costs, the service.
MAX_PAYLOAD_BYTES: Final = 65_536
# A larger packet (payload, topic, properties) disconnects its sender before its body is read.
MAX_PACKET_BYTES: Final = 2 * MAX_PAYLOAD_BYTES
_LOOPBACK_NAMES: Final = frozenset({"127.0.0.1", "localhost", "::1"})

Listener = Literal["clients", "services"]


def _service(status: str) -> tuple[str, ...]:
    return (f"write {{root}}/{status}/alerts/#", f"write {{root}}/{status}/state/#",
            f"write {{root}}/{status}/cap/#", "readwrite {root}/service/status",
            "write {root}/errors", "readwrite {root}/service/presence/#",
            "read {root}/detections", "read {root}/operator", "read {root}/receipts/+")


def _receiver(status: str) -> tuple[str, ...]:
    return (f"read {{root}}/{status}/alerts/#", f"read {{root}}/{status}/state/#",
            f"read {{root}}/{status}/cap/#", "read {root}/service/status")


# role -> its `topic` ACL lines; `{root}` is replaced by the topic root.
ROLES: Final[dict[str, tuple[str, ...]]] = {
    "service-exercise": _service("exercise"),
    # `alertsim conformance` plays the service on the test tree and asks clients to rejoin.
    "service-test": (*_service("test"), "write {root}/conformance/control/+"),
    # `alertsim detect` waits for the service's answer: an alert of the event, or a
    # refusal on the errors topic, while the service's status says it listens.
    "sensor": ("write {root}/detections", "read {root}/service/status", "read {root}/errors",
               "read {root}/+/alerts/#"),
    # An operator action's answer is on the errors topic (a refusal) or in the states it
    # changes; the service's status says whether anyone listens (`clients.operator`).
    "operator": ("write {root}/operator", "read {root}/service/status", "read {root}/errors",
                 "read {root}/+/state/#"),
    "receiver-exercise": _receiver("exercise"),
    "receiver-test": _receiver("test"),
    "drill": ("readwrite {root}/drills/#",),
    "monitor": ("read {root}/#",),
}
# Roles that hold several connections at once, so they choose their client ids: only they
# have a password on the services listener.
SERVICE_ROLES: Final = frozenset({"service-exercise", "service-test", "drill"})
_PER_RECEIVER: Final = ("receiver-exercise", "receiver-test")


def users(receivers: int = 1) -> dict[str, str]:
    """user -> role: one user per role, and `receivers` users per receiver role (the role's
    own name first, then `ROLE-2` ... `ROLE-N`), each its own identity and password."""
    if receivers < 1:
        raise ValueError(f"receivers must be at least 1: {receivers}")
    found = {role: role for role in ROLES}
    for role in _PER_RECEIVER:
        found |= {f"{role}-{n}": role for n in range(2, receivers + 1)}
    return found


def listener_of(role: str) -> Listener:
    """The listener a role connects to."""
    return "services" if role in SERVICE_ROLES else "clients"


def acl_text(root: str = DEFAULT_ROOT, user_roles: Mapping[str, str] | None = None) -> str:
    """The Mosquitto acl_file: nothing for anonymous clients, one block per user."""
    lines = ["# alertsim users (generated by `alertsim broker-config`). Anonymous clients",
             "# get no topic at all (and allow_anonymous is false).", ""]
    for user, role in (user_roles or users()).items():
        lines.append(f"user {user}")
        lines += [f"topic {rule.format(root=root)}" for rule in ROLES[role]]
        if role in _PER_RECEIVER:
            lines += _own_topics(root, user)
        lines.append("")
    return "\n".join(lines)


def _own_topics(root: str, user: str) -> list[str]:
    """A receiver user's own receipt and conformance control topics, named after the user
    (what `pattern ... %u` would give, but for receivers only). On the clients listener
    the client id *is* the user name, so this is `receipts/<client id>` too."""
    return [f"topic write {root}/receipts/{user}",
            f"topic read {root}/conformance/control/{user}"]


def password_line(user: str, password: str, salt: bytes,
                  iterations: int = DEFAULT_ITERATIONS) -> str:
    """One Mosquitto 2 password file line: `user:$7$iterations$salt_b64$hash_b64`."""
    if not user or ":" in user or "\n" in user:
        raise ValueError(f"user name must be non-empty, without ':' or newlines: {user!r}")
    digest = hashlib.pbkdf2_hmac("sha512", password.encode("utf-8"), salt, iterations)
    encode = base64.b64encode
    return f"{user}:$7${iterations}${encode(salt).decode()}${encode(digest).decode()}"


def _listener(port: int, host: str, directory: Path, tls: TlsFiles | None, *,
              services: bool) -> list[str]:
    """One listener block (loopback only for a loopback host) with its own password file."""
    where = f"listener {port} 127.0.0.1" if host in _LOOPBACK_NAMES else f"listener {port}"
    lines = ["", f"# {'Services and drills' if services else 'Receivers, sensors, operators'}"
             f"{': client-chosen ids' if services else ': client id = user name'}.", where]
    if tls is not None:
        lines += [f"cafile {tls.ca_cert}", f"certfile {tls.server_cert}",
                  f"keyfile {tls.server_key}", "tls_version tlsv1.2"]
    if not services:  # nobody here can take another user's id (or session)
        lines.append("use_username_as_clientid true")
    password_file = directory / ("passwd-services" if services else "passwd")
    return [*lines, "allow_anonymous false", f"password_file {password_file}",
            f"acl_file {directory / 'acl'}"]


_DURABLE: Final = (
    "# Durable: save every second, so a kill -9 keeps sessions and queued QoS 1 messages;",
    "# what Mosquitto acknowledged since its last save (<= 1 s) is at risk. Not on changes:",
    "# 2.0.11 does not count messages in flight to a connected session as changes, and",
    "# lost 98 acknowledged detections so (docs/security.md).",
    "persistence true",
    "autosave_on_changes false",
    "autosave_interval 1",
    # MQTT 3.1.1 sessions never expire by themselves; MQTT 5 ones carry their own expiry.
    "persistent_client_expiration 2d",
)


def config_text(directory: Path, *, port: int, service_port: int | None = None,
                host: str = "127.0.0.1", tls: TlsFiles | None = None) -> str:
    """The mosquitto.conf for files in `directory` (an absolute path)."""
    lines = ["# Generated by `alertsim broker-config`: run `mosquitto -c THIS_FILE`.",
             "# Each listener has its own password file (docs/security.md).",
             "per_listener_settings true",
             *_listener(port, host, directory, tls, services=False),
             *_listener(service_port or port + 1, host, directory, tls, services=True),
             "", *_DURABLE,
             # Mosquitto joins location and file name by concatenation: keep the slash.
             f"persistence_location {directory / 'data'}/",
             "",
             "# Global size caps (Mosquitto 2.0.11 has none per user or per listener).",
             f"message_size_limit {MAX_PAYLOAD_BYTES}",
             f"max_packet_size {MAX_PACKET_BYTES}",
             "max_queued_messages 100000",
             "max_inflight_messages 100",
             "set_tcp_nodelay true",
             "connection_messages true",
             "log_dest stderr",
             "log_type error",
             "log_type warning",
             "log_type notice",
             "log_type information"]
    return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class GeneratedConfig:
    """What `write_config` wrote; `url(user)` is that user's broker URL (with password)."""

    directory: Path
    host: str
    port: int
    service_port: int
    tls: TlsFiles | None
    passwords: dict[str, str] = field(repr=False)
    roles: dict[str, str] = field(default_factory=users)

    @property
    def config_file(self) -> Path:
        return self.directory / "mosquitto.conf"

    @property
    def credentials_file(self) -> Path:
        return self.directory / "credentials.json"

    def base_url(self, listener: Listener = "clients") -> str:
        """`mqtt[s]://host:port` of a listener, no credentials."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        port = self.service_port if listener == "services" else self.port
        return f"{'mqtts' if self.tls else 'mqtt'}://{host}:{port}"

    def user_base_url(self, user: str) -> str:
        """The URL of the listener `user` connects to, no credentials."""
        return self.base_url(listener_of(self.roles[user]))

    def url(self, user: str) -> str:
        """`mqtt[s]://user:password@host:port`: a secret, never log it."""
        scheme, rest = self.user_base_url(user).split("://", 1)
        return f"{scheme}://{user}:{self.passwords[user]}@{rest}"


def _write_private(path: Path, text: str) -> None:
    """Write `text` to `path`, readable by its owner only."""
    path.unlink(missing_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(text)


def _credentials_json(config: GeneratedConfig) -> str:
    found = {user: {"password": config.passwords[user], "url": config.url(user),
                    "role": role, "listener": listener_of(role)}
             for user, role in config.roles.items()}
    document = {"broker": config.base_url(), "services_broker": config.base_url("services"),
                "ca_file": None if config.tls is None else str(config.tls.ca_cert),
                "users": found}
    return json.dumps(document, indent=2) + "\n"


def _password_file(config: GeneratedConfig, listener: Listener) -> str:
    return "".join(password_line(user, config.passwords[user], secrets.token_bytes(SALT_BYTES))
                   + "\n" for user, role in config.roles.items()
                   if listener_of(role) == listener)


def write_config(directory: Path, *, port: int = 1883, service_port: int | None = None,
                 host: str = "127.0.0.1", tls: bool = False, root: str = DEFAULT_ROOT,
                 receivers: int = 1) -> GeneratedConfig:
    """Write the config, password files, ACL, credentials, env files (and TLS files)."""
    directory = directory.resolve()
    (directory / "data").mkdir(parents=True, exist_ok=True)
    roles = users(receivers)
    config = GeneratedConfig(
        directory=directory, host=host, port=port, service_port=service_port or port + 1,
        tls=write_tls_files(directory, host) if tls else None,
        passwords={user: secrets.token_urlsafe(24) for user in roles}, roles=roles)
    _write_private(directory / "passwd", _password_file(config, "clients"))
    _write_private(directory / "passwd-services", _password_file(config, "services"))
    _write_private(directory / "acl", acl_text(root, roles))
    _write_private(config.credentials_file, _credentials_json(config))
    _write_private(config.config_file, config_text(
        directory, port=port, service_port=config.service_port, host=host, tls=config.tls))
    for user in roles:  # for docker compose's `env_file` and `set -a; . USER.env`
        _write_private(directory / f"{user}.env", _env_text(config, user))
    return config


def _env_text(config: GeneratedConfig, user: str) -> str:
    """`ALERTSIM_*` settings of one user, as an env file. The CA path is the real one
    (`--out /secure` in the compose profile makes it /secure/ca.crt there); the client id
    is the user name, the only id the clients listener gives that user anyway."""
    lines = [f"ALERTSIM_BROKER_URL={config.user_base_url(user)}",
             f"ALERTSIM_MQTT_USERNAME={user}",
             f"ALERTSIM_MQTT_PASSWORD={config.passwords[user]}",
             f"ALERTSIM_CLIENT_ID={user}"]
    if config.tls is not None:
        lines.append(f"ALERTSIM_MQTT_CA_FILE={config.tls.ca_cert}")
    return "\n".join(lines) + "\n"
