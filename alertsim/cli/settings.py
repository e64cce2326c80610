"""Settings, merged in one place: CLI flags, then `ALERTSIM_*` env vars, then defaults.

`load_settings(**overrides)` is the only reader of the process environment in alertsim, and
only `alertsim.cli` imports this module; everything below the CLI receives plain values.
Overrides whose value is None (a flag that was not given) are dropped, so a flag wins over
its environment variable only when it is set.

Every problem becomes one `InputError(source="settings")` whose lines name what the user set:
`ALERTSIM_STATUS: ...` for an environment variable, the field name (`status: ...`) for an override.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Final, Literal, get_args

from pydantic import Field, FilePath, SecretStr, ValidationError, field_validator
from pydantic_core import ErrorDetails
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    SettingsError,
)

from alertsim.cli.messages import say
from alertsim.domain.topics import DEFAULT_ROOT, is_topic_root
from alertsim.domain.vocabulary import DEFAULT_POLICY, PolicyChoice, Status, refuse_actual
from alertsim.errors import InputError, Location, describe_validation_error
from alertsim.logs import LogFormat, configure_logging
from alertsim.mqtt.url import parse_broker_url, with_credentials

__all__ = [
    "ENV_PREFIX",
    "LOG_LEVELS",
    "LogLevel",
    "MqttProtocol",
    "QuietSettings",
    "ServiceSettings",
    "broker_url_of",
    "load_settings",
    "mqtt_password_of",
    "settings_and_logging",
]

ENV_PREFIX: Final = "ALERTSIM_"
LogLevel = Literal["debug", "info", "warning", "error", "critical"]
LOG_LEVELS: Final[tuple[LogLevel, ...]] = get_args(LogLevel)
MqttProtocol = Literal["5", "3.1.1", "auto"]
_SOURCE: Final = "settings"


class ServiceSettings(BaseSettings):
    """Everything the service, subscriber and CLI may be configured with; immutable once built."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        case_sensitive=False,
        # An exported but empty variable (`ALERTSIM_DB=`) means "not set", not Path("").
        env_ignore_empty=True,
        frozen=True,
        # Rejects unknown override keys; unknown ALERTSIM_* env vars are ignored by the
        # library's environment source (it only looks up the declared fields).
        extra="forbid",
    )

    broker_url: str = Field(default="mqtt://127.0.0.1:1883", repr=False)  # may hold a password
    db: Path = Path("alertsim.db")
    # A policy, or auto: the rule in force on each detection's launch date.
    policy: PolicyChoice = DEFAULT_POLICY
    status: Status = "exercise"
    mqtt_protocol: MqttProtocol = "auto"
    # None: `serve` derives a stable one of its own (`bootstrap.default_client_id`).
    client_id: str | None = Field(default=None, min_length=1, max_length=65535)
    sender: str = Field(default="alertsim@simulator.invalid", min_length=1)
    max_payload_bytes: int = Field(default=65536, gt=0)
    # A cap on the record's size: past it refusals and receipts stop being written,
    # alerts never do (docs/record.md). None: no cap.
    max_record_mb: float | None = Field(default=None, gt=0)
    # Where the dashboard's operator console signs operators in (the generated broker's
    # clients listener); None: the service's own broker URL.
    console_broker_url: str | None = None
    # Simulated seconds after an event's final outcome before it is closed automatically.
    close_after_s: float = Field(default=600.0, ge=0.0, allow_inf_nan=False)
    # A detection observed longer ago than this (on the service's clock) is refused as stale;
    # the persistent input session expires after it too, so a broker replays nothing older.
    stale_after_s: float = Field(default=600.0, gt=0.0, le=7 * 24 * 3600.0, allow_inf_nan=False)
    # With no detection confirming a passage, "passed" goes out this long after the last
    # window (domain/lifecycle.py, DEFAULT_CONFIRM_AFTER).
    confirm_after_s: float = Field(default=1800.0, ge=0.0, le=24 * 3600.0, allow_inf_nan=False)
    # alertsim's own national information message when no prefecture is warned (J-Alert
    # sends nothing then): off unless asked for.
    national_info: bool = False
    topic_root: str = DEFAULT_ROOT
    # The service's Ed25519 private key (PEM, `alertsim keygen`): alerts and states are signed.
    signing_key: FilePath | None = None
    # Redundant services share the secret in this file, so they mint identical identifiers
    # (docs/redundancy.md); its content is read by `serve` alone and never logged.
    identity_secret_file: FilePath | None = None
    # Broker credentials and TLS CA (ALERTSIM_MQTT_USERNAME / _PASSWORD / _CA_FILE); they
    # win over credentials in the broker URL. The password never shows in a repr or log.
    mqtt_username: str | None = Field(default=None, min_length=1)
    mqtt_password: SecretStr | None = None
    # Or the password in this file (`--broker-password-file`): never on a command line,
    # where `ps` shows it to every user.
    mqtt_password_file: FilePath | None = None
    mqtt_ca_file: FilePath | None = None
    # Where `serve --metrics-port` binds: loopback unless asked ("0.0.0.0": every interface).
    metrics_host: str = Field(default="127.0.0.1", min_length=1)
    log_format: LogFormat = "auto"
    log_level: LogLevel = "info"

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Overrides (flags) first, then the environment; no .env or secrets files."""
        return (init_settings, env_settings)

    @field_validator("status", mode="before")
    @classmethod
    def _refuse_actual(cls, value: object) -> object:
        return refuse_actual(value)

    @field_validator("broker_url")
    @classmethod
    def _check_broker_url(cls, value: str) -> str:
        try:
            parse_broker_url(value)
        except InputError as exc:
            raise ValueError("; ".join(exc.problems)) from exc
        return value

    @field_validator("topic_root")
    @classmethod
    def _check_topic_root(cls, value: str) -> str:
        if not is_topic_root(value):
            raise ValueError("plain levels of A-Z a-z 0-9 . _ - separated by /, no wildcards")
        return value

    @field_validator("log_level", mode="before")
    @classmethod
    def _check_log_level(cls, value: object) -> object:
        if not isinstance(value, str):
            return value
        level = value.strip().lower()
        if level not in LOG_LEVELS:
            raise ValueError(f"log level must be one of {', '.join(LOG_LEVELS)}")
        return level


class QuietSettings(ServiceSettings):
    """The same settings for commands whose stdout a person reads (replay, subscribe): their
    logs default to warnings, so progress lines are not buried in connection chatter."""

    log_level: LogLevel = "warning"


def _problems(exc: ValidationError, overridden: set[str]) -> list[str]:
    """One line per problem, naming the flag's field or the environment variable."""

    def locate(loc: Location, err: ErrorDetails) -> str:
        field = str(loc[0]) if loc else "(settings)"
        if field in overridden or err["type"] == "extra_forbidden":
            return field
        return f"{ENV_PREFIX}{field.upper()}"

    return describe_validation_error(exc, limit=exc.error_count(), locate=locate,
                                     echo=lambda err: err["type"] != "extra_forbidden")


def load_settings(*, quiet: bool = False, **overrides: object) -> ServiceSettings:
    """Settings from non-None `overrides`, else `ALERTSIM_*` env vars, else defaults
    (`QuietSettings` defaults when `quiet`); InputError(source="settings") on any problem."""
    # Any: the model checks each value (and refuses unknown keys: extra="forbid").
    given: dict[str, Any] = {key: value for key, value in overrides.items() if value is not None}
    model = QuietSettings if quiet else ServiceSettings
    try:
        return model(**given)
    except ValidationError as exc:
        raise InputError(source=_SOURCE, problems=_problems(exc, set(given))) from exc
    except SettingsError as exc:  # an env value the library could not even parse
        raise InputError(source=_SOURCE, problems=[str(exc)]) from exc


def settings_and_logging(*, quiet: bool = False, **overrides: object) -> ServiceSettings:
    """`load_settings`, then structlog set up once at the merged log format and level."""
    settings = load_settings(quiet=quiet, **overrides)
    configure_logging(settings.log_format, settings.log_level)
    return settings


def mqtt_password_of(settings: ServiceSettings) -> str | None:
    """The broker password from ALERTSIM_MQTT_PASSWORD or the password file (its first
    line); InputError when both are set or the file is empty or unreadable. Never echoed."""
    path = settings.mqtt_password_file
    if path is None:
        password = settings.mqtt_password
        return None if password is None else password.get_secret_value()
    if settings.mqtt_password is not None:
        raise InputError(source=_SOURCE, problems=[
            say("settings.password_twice")])
    try:
        lines = path.read_text("utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(source=str(path), problems=[say("file.unreadable", error=exc)]) \
            from exc
    if not lines or not lines[0]:
        raise InputError(source=str(path), problems=[say("settings.no_password")])
    return lines[0]


def broker_url_of(settings: ServiceSettings) -> str:
    """The broker URL with `ALERTSIM_MQTT_USERNAME` / `_PASSWORD` folded in (credentials
    already in the URL win): for the commands whose adapters take only a URL."""
    password = settings.mqtt_password
    return with_credentials(settings.broker_url, settings.mqtt_username,
                            None if password is None else password.get_secret_value())
