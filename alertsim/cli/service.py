"""`alertsim serve` (the service against a broker) and `alertsim detect` (a detection by hand)."""

import asyncio
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import structlog
import typer

from alertsim.cli.cap import CapOption
from alertsim.cli.decide import DetectionArgument, read_detection
from alertsim.cli.messages import say
from alertsim.cli.options import (
    EXIT_FAILED,
    EXIT_NO_SERVICE,
    EXIT_OK,
    EXIT_UNCHANGED,
    BrokerOption,
    CaFileOption,
    ClientIdOption,
    DashboardOption,
    DashboardPortOption,
    LogLevelOption,
    MetricsHostOption,
    MetricsPortOption,
    PasswordFileOption,
    StatusOption,
    TopicRootOption,
    dashboard_port,
    positive_number,
)
from alertsim.cli.settings import (
    MqttProtocol,
    ServiceSettings,
    mqtt_password_of,
    settings_and_logging,
)
from alertsim.domain.vocabulary import PolicyChoice
from alertsim.errors import InputError
from alertsim.mqtt.url import parse_broker_url, redacted, with_credentials

if TYPE_CHECKING:
    from alertsim.service.config import ServiceConfig

__all__ = ["detect_command", "serve_command"]


log = structlog.get_logger("alertsim.serve")


def warn_of_password_in_url(flag: str | None) -> None:
    """A password inside `--broker` is on the command line, which `ps` shows to every
    user of the host: say so (the URL is never logged with it)."""
    if flag is not None and parse_broker_url(flag).password is not None:
        log.warning("broker.password_in_url", broker=parse_broker_url(flag).redacted(),
                    hint="other users can read it with `ps`; use --broker-password-file "
                         "or ALERTSIM_MQTT_PASSWORD (with ALERTSIM_MQTT_USERNAME)")


MIN_IDENTITY_SECRET_BYTES = 32
IdentitySecretOption = Annotated[Path | None, typer.Option(
    "--identity-secret-file", metavar="FILE",
    help="a secret shared by redundant services, so they publish identical identifiers "
         "(at least 32 bytes; env ALERTSIM_IDENTITY_SECRET_FILE)")]


def read_identity_secret(path: Path | None) -> bytes | None:
    """The shared identity secret in `path` (surrounding whitespace dropped), or None;
    InputError naming the file when it cannot be read or is too short. Never echoed."""
    if path is None:
        return None
    try:
        secret = path.read_bytes().strip()
    except OSError as exc:
        raise InputError(source=str(path), problems=[
            say("file.unreadable", error=exc.strerror or exc)]) from exc
    if len(secret) < MIN_IDENTITY_SECRET_BYTES:
        raise InputError(source=str(path), problems=[
            say("serve.secret_short", least=MIN_IDENTITY_SECRET_BYTES, found=len(secret))])
    return secret


PolicyOption = Annotated[PolicyChoice | None, typer.Option(
    help="warning rule: block-2017, prefecture (default) or prefecture+adjacent; auto: the "
         "rule in force on each launch's date (env ALERTSIM_POLICY)")]
ConfirmAfterOption = Annotated[float | None, typer.Option(
    "--confirm-after", min=0, metavar="SECONDS",
    help="with no detection confirming a passage, send passed this long after the last "
         "window (env ALERTSIM_CONFIRM_AFTER_S, default 1800)")]
NationalInfoOption = Annotated[bool | None, typer.Option(
    "--national-info/--no-national-info",
    help="alertsim's own national message when no prefecture is warned; J-Alert sends "
         "nothing then (env ALERTSIM_NATIONAL_INFO, default off)")]
PublishWindowOption = Annotated[int, typer.Option(
    "--publish-window", min=1, max=1000, metavar="N",
    help="QoS 1 publishes awaiting their PUBACK at once (1: the serial pump, a baseline)")]


def _service_config(settings: ServiceSettings) -> "ServiceConfig":
    """The service's configuration; policy `auto` is resolved by the engine for each
    detection, as the rule in force on its launch date."""
    from alertsim.domain.admission import Limits
    from alertsim.domain.topics import TopicTree
    from alertsim.service.config import ServiceConfig

    return ServiceConfig(status=settings.status, policy=settings.policy,
                         sender=settings.sender, max_payload_bytes=settings.max_payload_bytes,
                         max_record_bytes=None if settings.max_record_mb is None
                         else int(settings.max_record_mb * 1_000_000),
                         close_after=timedelta(seconds=settings.close_after_s),
                         confirm_after=timedelta(seconds=settings.confirm_after_s),
                         national_info=settings.national_info,
                         limits=Limits(stale_after=timedelta(seconds=settings.stale_after_s)),
                         topics=TopicTree(settings.topic_root))


def _announce(url: str) -> None:
    """The dashboard's URL on a line of its own on stdout (the log has it too)."""
    print(say("serve.dashboard", url=url), flush=True)


def _announce_password(password: str) -> None:
    """The console's one-time password (an anonymous broker checks nobody): stdout only,
    never the log."""
    print(say("serve.console_password", password=password), flush=True)


def serve_command(
    broker: BrokerOption = None,
    db: Annotated[Path | None, typer.Option(
        metavar="PATH", help="SQLite record (env ALERTSIM_DB)")] = None,
    policy: PolicyOption = None,
    status: StatusOption = None,
    protocol: Annotated[MqttProtocol | None, typer.Option(
        help="MQTT protocol (env ALERTSIM_MQTT_PROTOCOL, default auto)")] = None,
    topic_root: TopicRootOption = None,
    stale_after: Annotated[float | None, typer.Option(
        "--stale-after", min=1, metavar="SECONDS",
        help="refuse detections observed longer ago (env ALERTSIM_STALE_AFTER_S, "
             "default 600)")] = None,
    confirm_after: ConfirmAfterOption = None,
    national_info: NationalInfoOption = None,
    signing_key: Annotated[Path | None, typer.Option(
        "--signing-key", metavar="FILE",
        help="sign alerts and states with this Ed25519 private key (PEM, from `alertsim "
             "keygen`; env ALERTSIM_SIGNING_KEY)")] = None,
    log_level: LogLevelOption = None,
    ca_file: CaFileOption = None,
    identity_secret_file: IdentitySecretOption = None,
    cap: CapOption = False,
    dashboard: DashboardOption = False,
    port: DashboardPortOption = None,
    metrics_port: MetricsPortOption = None,
    metrics_host: MetricsHostOption = None,
    client_id: ClientIdOption = None,
    broker_password_file: PasswordFileOption = None,
    publish_window: PublishWindowOption = 64,
) -> int:
    """Run the service against a broker until interrupted."""
    from alertsim.bootstrap import ServeOptions, run_serve
    from alertsim.signing import load_signing_key

    settings = settings_and_logging(broker_url=broker, db=db, policy=policy, status=status,
                                    mqtt_protocol=protocol, topic_root=topic_root,
                                    stale_after_s=stale_after, log_level=log_level,
                                    confirm_after_s=confirm_after, national_info=national_info,
                                    signing_key=signing_key, mqtt_ca_file=ca_file,
                                    identity_secret_file=identity_secret_file,
                                    metrics_host=metrics_host, client_id=client_id,
                                    mqtt_password_file=broker_password_file)
    warn_of_password_in_url(broker)
    signer = None if settings.signing_key is None else load_signing_key(settings.signing_key)
    secret = read_identity_secret(settings.identity_secret_file)
    config = replace(_service_config(settings), publish_window=publish_window)
    run_serve(ServeOptions(config=config, db=settings.db, metrics_port=metrics_port,
                           metrics_host=settings.metrics_host,
                           broker_url=settings.broker_url,
                           mqtt_protocol=settings.mqtt_protocol,
                           client_id=settings.client_id, signer=signer, cap=cap,
                           username=settings.mqtt_username,
                           password=mqtt_password_of(settings),
                           ca_file=settings.mqtt_ca_file, identity_secret=secret,
                           dashboard_port=dashboard_port(dashboard, port),
                           announce=_announce, announce_password=_announce_password,
                           console_broker_url=settings.console_broker_url))
    return EXIT_OK


NowOption = Annotated[bool, typer.Option(
    "--now", help="move the detection's times so it is observed now (launch and impact "
                  "keep their distance from the observation): an example works on any day")]
NoWaitOption = Annotated[bool, typer.Option(
    "--no-wait", help="return once the broker has the detection, without the service's "
                      "answer (exit 0)")]
AnswerTimeoutOption = Annotated[float, typer.Option(
    "--timeout", parser=positive_number, metavar="SECONDS",
    help="how long to wait for the service's status, and then for its answer")]
# The exit code of each answer `detect` can get (README, `alertsim detect`).
DETECT_EXITS: dict[str, int] = {"accepted": EXIT_OK, "sent": EXIT_OK,
                                   "refused": EXIT_FAILED, "unchanged": EXIT_UNCHANGED,
                                   "no-service": EXIT_NO_SERVICE}


def detect_command(detection: DetectionArgument, broker: BrokerOption = None,
                   topic_root: TopicRootOption = None, ca_file: CaFileOption = None,
                   broker_password_file: PasswordFileOption = None, now: NowOption = False,
                   no_wait: NoWaitOption = False, timeout: AnswerTimeoutOption = 10.0) -> int:
    """Send a detection by hand to a running service and wait for its answer. Exit 0
    accepted, 1 refused, 3 taken without a new alert (a duplicate, or nothing new to warn),
    4 no service online."""
    from alertsim.clients.detection import send_detection, shifted_to
    from alertsim.domain.topics import TopicTree

    parsed = read_detection(detection)
    settings = settings_and_logging(quiet=True, broker_url=broker, topic_root=topic_root,
                                    mqtt_ca_file=ca_file,
                                    mqtt_password_file=broker_password_file)
    if now:
        parsed = shifted_to(parsed, datetime.now(UTC))
        print(say("detect.shifted", observed=parsed.observed_at.isoformat(),
                  launch=parsed.launch.time.isoformat()))
    tree = TopicTree(settings.topic_root)
    url = with_credentials(settings.broker_url, settings.mqtt_username,
                           mqtt_password_of(settings))
    outcome = asyncio.run(send_detection(parsed, url=url, tree=tree,
                                         ca_file=settings.mqtt_ca_file,
                                         timeout_s=None if no_wait else timeout))
    print(say(f"detect.{outcome.answer}", path=detection, event=parsed.event_id,
              sequence=parsed.sequence, topic=tree.detections, broker=redacted(url),
              reason=outcome.reason, place=outcome.place, stage=outcome.stage,
              timeout=f"{timeout:g}", root=tree.root, status_topic=tree.service_status))
    return DETECT_EXITS[outcome.answer]
