"""`alertsim broker-config`: a Mosquitto config with passwords, ACLs and optional TLS."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from alertsim.cli.messages import say
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
        raise InputError(source="--host", problems=[say("broker_config.bad_host",
                                                          got=repr(host))])
    clients_port = port or (8883 if tls else 1883)
    if service_port == clients_port or (service_port is None and clients_port == 65535):
        raise InputError(source="--service-port",
                         problems=[say("broker_config.service_port")])
    config = write_config(out, port=clients_port, service_port=service_port, host=host,
                          tls=tls, root=topic_root or DEFAULT_ROOT, receivers=receivers)
    _print_summary(config)
    return EXIT_OK


def _print_summary(config: GeneratedConfig) -> None:
    """What was written and how to use it; never a password."""
    files = ", ".join(["passwd", "passwd-services", "acl", config.credentials_file.name]
                      + (["ca.crt", "ca.key", "server.crt", "server.key"] if config.tls
                         else []))
    print(say("broker_config.wrote", config=config.config_file, files=files))
    print(say("broker_config.start", config=config.config_file))
    print(say("broker_config.as_root"))
    print(say("broker_config.credentials", path=config.credentials_file))
    print(say("broker_config.clients", url=config.base_url()))
    print(say("broker_config.services", url=config.base_url("services")))
    print(say("broker_config.users", users=", ".join(config.roles)))
    print(say("broker_config.example", env=config.directory / "service-exercise.env"))


def _is_ipv6(host: str) -> bool:
    import ipaddress

    try:
        ipaddress.IPv6Address(host)
    except ValueError:
        return False
    return True
