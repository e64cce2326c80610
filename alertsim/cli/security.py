"""`alertsim broker-config`: a Mosquitto config with passwords, ACLs and optional TLS."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from alertsim.cli.options import EXIT_OK, TopicRootOption
from alertsim.domain.topics import DEFAULT_ROOT
from alertsim.errors import InputError

if TYPE_CHECKING:  # imported when the command runs: it loads the cryptography package
    from alertsim.brokers.broker_config import GeneratedConfig

__all__ = ["broker_config_command"]


def broker_config_command(
    out: Annotated[Path, typer.Option(
        "--out", metavar="DIR", help="directory to write the config, passwords and keys to")],
    tls: Annotated[bool, typer.Option(
        "--tls", help="TLS listeners, with a new private CA and server certificate")] = False,
    port: Annotated[int | None, typer.Option(
        min=1, max=65535, metavar="N",
        help="clients' listener port (default 1883, 8883 with --tls)")] = None,
    service_port: Annotated[int | None, typer.Option(
        min=1, max=65535, metavar="N",
        help="services' and drills' listener port (default: --port + 1)")] = None,
    receivers: Annotated[int, typer.Option(
        min=1, max=100_000, metavar="N",
        help="receiver users per status, each its own password and client id")] = 1,
    host: Annotated[str, typer.Option(
        metavar="H", help="the name clients use for the broker (URLs, certificate)")
    ] = "127.0.0.1",
    topic_root: TopicRootOption = None,
) -> int:
    """Write a Mosquitto config refusing anonymous clients, with one user per role or receiver.

    Passwords go to DIR/credentials.json and DIR/USER.env (mode 0600) and are not printed.
    """
    from alertsim.brokers.broker_config import write_config

    if not host or (any(c in host for c in " /@:") and not _is_ipv6(host)):
        raise InputError(source="--host", problems=[f"not a host name or address: {host!r}"])
    clients_port = port or (8883 if tls else 1883)
    if service_port == clients_port or (service_port is None and clients_port == 65535):
        raise InputError(source="--service-port",
                         problems=["the services' listener needs a port of its own"])
    config = write_config(out, port=clients_port, service_port=service_port, host=host,
                          tls=tls, root=topic_root or DEFAULT_ROOT, receivers=receivers)
    _print_summary(config)
    return EXIT_OK


def _print_summary(config: GeneratedConfig) -> None:
    """What was written and how to use it; never a password."""
    print(f"wrote {config.config_file}, passwd, passwd-services, acl, "
          f"{config.credentials_file.name}, USER.env per user"
          + (", ca.crt, ca.key, server.crt, server.key" if config.tls else ""))
    print(f"start the broker:  mosquitto -c {config.config_file}")
    print("  (as root, add `user root` to it, or run as the owner of the directory)")
    print(f"passwords and URLs: {config.credentials_file} (keep it secret)")
    print(f"receivers, sensors, operators, monitor: {config.base_url()} "
          "(client id = user name)")
    print(f"services and drills: {config.base_url('services')} (they choose their client ids)")
    print(f"users: {', '.join(config.roles)}")
    print(f"  e.g. set -a; . {config.directory / 'service-exercise.env'}; alertsim serve")


def _is_ipv6(host: str) -> bool:
    import ipaddress

    try:
        ipaddress.IPv6Address(host)
    except ValueError:
        return False
    return True
