"""Service settings, read once at the edge: CLI flags, then `ALERTSIM_*` env vars, then defaults.

`load_settings(**overrides)` is the only reader of the process environment in alertsim; everything
below the CLI receives a frozen `ServiceSettings`. Overrides whose value is None (a flag that was
not given) are dropped, so a flag wins over its environment variable only when it is set.

Every problem becomes one `InputError(source="settings")` whose lines name what the user set:
`ALERTSIM_STATUS: ...` for an environment variable, the field name (`status: ...`) for an override.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal, TypedDict, Unpack

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    SettingsError,
)

from alertsim.adapters.mqtt.brokers import parse_broker_url
from alertsim.domain.messages import refuse_actual
from alertsim.errors import InputError

__all__ = ["ENV_PREFIX", "LOG_LEVELS", "ServiceSettings", "SettingsOverrides", "load_settings"]

ENV_PREFIX = "ALERTSIM_"
LOG_LEVELS = ("debug", "info", "warning", "error", "critical")
_SOURCE = "settings"

Policy = Literal["prefecture", "prefecture+adjacent"]
Status = Literal["exercise", "test"]
MqttProtocol = Literal["5", "3.1.1", "auto"]
LogFormat = Literal["auto", "console", "json"]


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

    broker_url: str = "mqtt://127.0.0.1:1883"
    db: Path = Path("alertsim.db")
    policy: Policy = "prefecture"
    status: Status = "exercise"
    mqtt_protocol: MqttProtocol = "auto"
    client_id: str = Field(default="alertsim-service", min_length=1, max_length=65535)
    sender: str = Field(default="alertsim@simulator.invalid", min_length=1)
    max_payload_bytes: int = Field(default=65536, gt=0)
    # Simulated seconds after an event's final outcome before it is closed automatically.
    close_after_s: float = Field(default=600.0, ge=0.0, allow_inf_nan=False)
    log_format: LogFormat = "auto"
    log_level: str = "info"

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

    @field_validator("log_level", mode="before")
    @classmethod
    def _check_log_level(cls, value: object) -> object:
        if not isinstance(value, str):
            return value
        level = value.strip().lower()
        if level not in LOG_LEVELS:
            raise ValueError(f"log level must be one of {', '.join(LOG_LEVELS)}")
        return level


class SettingsOverrides(TypedDict, total=False):
    """Keyword overrides for `load_settings`, typically CLI flags; None means "flag not given"."""

    broker_url: str | None
    db: Path | str | None
    policy: Policy | None
    status: Status | None
    mqtt_protocol: MqttProtocol | None
    client_id: str | None
    sender: str | None
    max_payload_bytes: int | None
    close_after_s: float | None
    log_format: LogFormat | None
    log_level: str | None


def _problems(exc: ValidationError, overridden: set[str]) -> list[str]:
    lines = []
    for err in exc.errors(include_url=False):
        field = str(err["loc"][0]) if err["loc"] else "(settings)"
        where = field if field in overridden or err["type"] == "extra_forbidden" \
            else f"{ENV_PREFIX}{field.upper()}"
        message = err["msg"].removeprefix("Value error, ")
        got = err.get("input")
        shown = f" (got {got!r})" if isinstance(got, str | int | float) \
            and err["type"] != "extra_forbidden" and len(str(got)) <= 40 else ""
        lines.append(f"{where}: {message}{shown}")
    return lines


def load_settings(**overrides: Unpack[SettingsOverrides]) -> ServiceSettings:
    """Settings from non-None `overrides`, else `ALERTSIM_*` env vars, else defaults."""
    given = {key: value for key, value in overrides.items() if value is not None}
    try:
        return ServiceSettings(**given)  # type: ignore[arg-type]  # keys checked: extra="forbid"
    except ValidationError as exc:
        raise InputError(source=_SOURCE, problems=_problems(exc, set(given))) from exc
    except SettingsError as exc:  # an env value the library could not even parse
        raise InputError(source=_SOURCE, problems=[str(exc)]) from exc
