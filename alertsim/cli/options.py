"""What several commands share: exit codes, value parsers and the option types built on them.

Each parser turns one flag value into what the command needs or raises `typer.BadParameter`
with a specific message; Typer then prints the sub-command's usage and exits 2. The words
(statuses, prefecture codes, broker URLs) are checked by the domain and adapter functions
that own them, never spelled again here.
"""

import math
from pathlib import Path
from typing import Annotated, Final

import typer

from alertsim.cli.messages import say
from alertsim.cli.settings import LogLevel
from alertsim.domain.topics import is_topic_root
from alertsim.domain.vocabulary import STATUSES, Status, prefecture_code, refuse_actual
from alertsim.errors import InputError
from alertsim.mqtt.url import parse_broker_url

__all__ = [
    "EXIT_BAD_INPUT",
    "EXIT_FAILED",
    "EXIT_INTERRUPTED",
    "EXIT_NO_SERVICE",
    "EXIT_OK",
    "EXIT_UNCHANGED",
    "BrokerOption",
    "CaFileOption",
    "ClientIdOption",
    "DashboardOption",
    "DashboardPortOption",
    "LogLevelOption",
    "MetricsHostOption",
    "MetricsPortOption",
    "PasswordFileOption",
    "QuietLogLevelOption",
    "StatusOption",
    "TopicRootOption",
    "broker_url",
    "dashboard_port",
    "positive_number",
    "prefecture",
    "status",
    "topic_root",
]

EXIT_OK: Final = 0
EXIT_FAILED: Final = 1
EXIT_BAD_INPUT: Final = 2
EXIT_UNCHANGED: Final = 3  # detect: taken, nothing published for it (e.g. a duplicate)
EXIT_NO_SERVICE: Final = 4  # detect: no service online under the topic root
EXIT_INTERRUPTED: Final = 130


def positive_number(text: str) -> float:
    """A finite number above 0 (a clock speed)."""
    try:
        value = float(text)
    except ValueError:
        raise typer.BadParameter(say("option.not_a_number", got=repr(text))) from None
    if not math.isfinite(value) or value <= 0:
        raise typer.BadParameter(say("option.not_positive", got=repr(text)))
    return value


def broker_url(text: str) -> str:
    """An MQTT broker URL as `parse_broker_url` accepts it, kept as written."""
    try:
        parse_broker_url(text)
    except InputError as exc:
        raise typer.BadParameter("; ".join(exc.problems)) from None
    return text


def prefecture(text: str) -> str:
    """A JIS X 0401 prefecture code, 01..47 ("1" -> "01")."""
    try:
        return prefecture_code(text)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None


def status(text: str) -> Status:
    """exercise or test; any spelling of actual is refused with the simulator's reason."""
    try:
        refuse_actual(text)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    chosen = next((s for s in STATUSES if s == text.strip().lower()), None)
    if chosen is None:
        raise typer.BadParameter(say("option.not_one_of", got=repr(text),
                                     choices=", ".join(map(repr, STATUSES))))
    return chosen


BrokerOption = Annotated[str | None, typer.Option(
    parser=broker_url, metavar="URL",
    help="MQTT broker, mqtt://HOST:PORT (env ALERTSIM_BROKER_URL)")]
StatusOption = Annotated[Status | None, typer.Option(
    parser=status, metavar=f"<{'|'.join(STATUSES)}>", help="topic tree (env ALERTSIM_STATUS)")]
def topic_root(text: str) -> str:
    """A topic root: plain levels separated by /, no wildcards."""
    if not is_topic_root(text):
        raise typer.BadParameter(say("option.topic_root", got=repr(text)))
    return text


CaFileOption = Annotated[Path | None, typer.Option(
    "--ca-file", metavar="PATH", help="CA certificate for mqtts:// (env ALERTSIM_MQTT_CA_FILE; "
    "user and password: in the URL or ALERTSIM_MQTT_USERNAME / _PASSWORD)")]
TopicRootOption = Annotated[str | None, typer.Option(
    parser=topic_root, metavar="ROOT",
    help="topic root of the tree (env ALERTSIM_TOPIC_ROOT, default alertsim/v1)")]
LogLevelOption = Annotated[LogLevel | None, typer.Option(
    case_sensitive=False, help="log level (env ALERTSIM_LOG_LEVEL, default info)")]
QuietLogLevelOption = Annotated[LogLevel | None, typer.Option(
    case_sensitive=False, help="log level (env ALERTSIM_LOG_LEVEL, default warning)")]
DashboardOption = Annotated[bool, typer.Option(
    "--dashboard", help="serve the live map dashboard on 127.0.0.1 (its URL is printed)")]
DashboardPortOption = Annotated[int | None, typer.Option(
    "--port", min=0, max=65535, metavar="N",
    help="the dashboard's port (default 0: any free port); needs --dashboard")]


def dashboard_port(dashboard: bool, port: int | None) -> int | None:
    """The port to serve the dashboard on, or None for no dashboard."""
    if port is not None and not dashboard:
        raise InputError("--port", [say("option.port_needs_dashboard")])
    return (port or 0) if dashboard else None

MetricsPortOption = Annotated[int | None, typer.Option(
    "--metrics-port", min=0, max=65535, metavar="PORT",
    help="serve Prometheus metrics at http://HOST:PORT/metrics (0: any free port, shown)")]
MetricsHostOption = Annotated[str | None, typer.Option(
    "--metrics-host", metavar="ADDRESS",
    help="the address /metrics binds (env ALERTSIM_METRICS_HOST, default 127.0.0.1; "
         "0.0.0.0: every interface)")]
ClientIdOption = Annotated[str | None, typer.Option(
    "--client-id", metavar="ID",
    help="MQTT client id (env ALERTSIM_CLIENT_ID; default alertsim-service-<8 hex> of the "
         "host name and the record's path); one per running service")]
PasswordFileOption = Annotated[Path | None, typer.Option(
    "--broker-password-file", metavar="FILE",
    help="the broker password, on the file's first line (env ALERTSIM_MQTT_PASSWORD_FILE, "
         "or the password itself in ALERTSIM_MQTT_PASSWORD); never put it in --broker")]
