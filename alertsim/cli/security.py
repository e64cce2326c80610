"""`alertsim broker-config`: a Mosquitto config with passwords, ACLs and optional TLS."""

from pathlib import Path
from typing import Annotated

import typer

from alertsim.cli.options import EXIT_OK, TopicRootOption
from alertsim.domain.topics import DEFAULT_ROOT
from alertsim.errors import InputError

__all__ = ["broker_config_command"]


def broker_config_command(
    out: Annotated[Path, typer.Option(
        "--out", metavar="DIR", help="directory to write the config, passwords and keys to")],
    tls: Annotated[bool, typer.Option(
        "--tls", help="a TLS listener, with a new private CA and server certificate")] = False,
    port: Annotated[int | None, typer.Option(
        min=1, max=65535, metavar="N", help="listener port (default 1883, 8883 with --tls)")
    ] = None,
    host: Annotated[str, typer.Option(
        metavar="H", help="the name clients use for the broker (URLs, certificate)")
    ] = "127.0.0.1",
    topic_root: TopicRootOption = None,
) -> int:
    """Write a Mosquitto config refusing anonymous clients, with one user per role.

    Passwords go to DIR/credentials.json (mode 0600) and are not printed.
    """
    from alertsim.brokers.broker_config import ROLES, write_config

    if not host or (any(c in host for c in " /@:") and not _is_ipv6(host)):
        raise InputError(source="--host", problems=[f"not a host name or address: {host!r}"])
    config = write_config(out, port=port or (8883 if tls else 1883), host=host, tls=tls,
                          root=topic_root or DEFAULT_ROOT)
    print(f"wrote {config.config_file}, passwd, acl, {config.credentials_file.name}"
          + (", ca.crt, ca.key, server.crt, server.key" if tls else ""))
    print(f"start the broker:  mosquitto -c {config.config_file}")
    print("  (as root, add `user root` to it, or run as the owner of the directory)")
    print(f"passwords and URLs: {config.credentials_file} (keep it secret)")
    ca = f" --ca-file {config.tls.ca_cert}" if config.tls is not None else ""
    print(f"each role connects as {config.base_url().replace('://', '://USER:PASSWORD@')}"
          f"{ca}; users: {', '.join(ROLES)}")
    print("  e.g. ALERTSIM_BROKER_URL=... (service-exercise's url)"
          + (f" ALERTSIM_MQTT_CA_FILE={config.tls.ca_cert}" if config.tls else "")
          + " alertsim serve")
    return EXIT_OK


def _is_ipv6(host: str) -> bool:
    import ipaddress

    try:
        ipaddress.IPv6Address(host)
    except ValueError:
        return False
    return True
