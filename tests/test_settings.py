"""Settings: flags over ALERTSIM_* env vars over defaults, errors naming the variable."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import alertsim
from alertsim.cli.settings import ServiceSettings, SettingsOverrides, load_settings
from alertsim.errors import InputError

_FIELDS = tuple(ServiceSettings.model_fields)


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Start each test with no ALERTSIM_* variable from the developer's shell."""
    for name in _FIELDS:
        monkeypatch.delenv(f"ALERTSIM_{name.upper()}", raising=False)


def test_defaults() -> None:
    """With no env vars and no flags, the documented defaults apply."""
    s = load_settings()
    assert s.broker_url == "mqtt://127.0.0.1:1883"
    assert s.db == Path("alertsim.db")
    assert (s.policy, s.status, s.mqtt_protocol) == ("prefecture", "exercise", "auto")
    assert (s.client_id, s.sender) == ("alertsim-service", "alertsim@simulator.invalid")
    assert (s.max_payload_bytes, s.close_after_s) == (65536, 600.0)
    assert (s.log_format, s.log_level) == ("auto", "info")


def test_env_vars_are_read_with_the_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    """ALERTSIM_* variables set the matching fields, converted to their types."""
    monkeypatch.setenv("ALERTSIM_BROKER_URL", "mqtt://broker.example:1884")
    monkeypatch.setenv("ALERTSIM_DB", "/tmp/x.db")
    monkeypatch.setenv("ALERTSIM_POLICY", "prefecture+adjacent")
    monkeypatch.setenv("ALERTSIM_STATUS", "test")
    monkeypatch.setenv("ALERTSIM_MQTT_PROTOCOL", "3.1.1")
    monkeypatch.setenv("ALERTSIM_MAX_PAYLOAD_BYTES", "1024")
    monkeypatch.setenv("ALERTSIM_CLOSE_AFTER_S", "30.5")
    monkeypatch.setenv("ALERTSIM_LOG_LEVEL", "DEBUG")
    s = load_settings()
    assert s.broker_url == "mqtt://broker.example:1884"
    assert s.db == Path("/tmp/x.db")
    assert (s.policy, s.status, s.mqtt_protocol) == ("prefecture+adjacent", "test", "3.1.1")
    assert (s.max_payload_bytes, s.close_after_s, s.log_level) == (1024, 30.5, "debug")


def test_unprefixed_env_vars_are_ignored(monkeypatch: pytest.MonkeyPatch) -> None:
    """A bare STATUS or DB variable does not leak into the settings."""
    monkeypatch.setenv("STATUS", "test")
    monkeypatch.setenv("DB", "/elsewhere.db")
    s = load_settings()
    assert (s.status, s.db) == ("exercise", Path("alertsim.db"))


def test_empty_env_var_means_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    """An exported but empty ALERTSIM_DB leaves the default in place."""
    monkeypatch.setenv("ALERTSIM_DB", "")
    assert load_settings().db == Path("alertsim.db")


def test_flags_win_over_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """A non-None override beats the environment variable for the same field."""
    monkeypatch.setenv("ALERTSIM_BROKER_URL", "mqtt://from-env:1883")
    monkeypatch.setenv("ALERTSIM_DB", "/env.db")
    s = load_settings(broker_url="mqtt://from-flag:1883", db=Path("/flag.db"))
    assert (s.broker_url, s.db) == ("mqtt://from-flag:1883", Path("/flag.db"))


def test_none_overrides_fall_back_to_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """An override of None (flag not given) is dropped, so the env var still applies."""
    monkeypatch.setenv("ALERTSIM_STATUS", "test")
    assert load_settings(status=None, db=None).status == "test"
    assert load_settings(status=None, db=None).db == Path("alertsim.db")


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("ALERTSIM_STATUS", "actual", "status Actual is refused: alertsim is a simulator and never sends Actual alerts; use exercise or test"),
        ("ALERTSIM_STATUS", "Actual", "status Actual is refused"),
        ("ALERTSIM_STATUS", "ACTUAL", "status Actual is refused"),
        ("ALERTSIM_STATUS", "live", "Input should be 'exercise' or 'test'"),
        ("ALERTSIM_POLICY", "foo", "Input should be 'prefecture' or 'prefecture+adjacent'"),
        ("ALERTSIM_MAX_PAYLOAD_BYTES", "-1", "greater than 0"),
        ("ALERTSIM_MAX_PAYLOAD_BYTES", "lots", "valid integer"),
        ("ALERTSIM_CLOSE_AFTER_S", "-5", "greater than or equal to 0"),
        ("ALERTSIM_MQTT_PROTOCOL", "4", "Input should be '5', '3.1.1' or 'auto'"),
        ("ALERTSIM_LOG_FORMAT", "xml", "Input should be 'auto', 'console' or 'json'"),
        ("ALERTSIM_LOG_LEVEL", "loud", "log level must be one of"),
        ("ALERTSIM_BROKER_URL", "https://x", "scheme must be mqtt://"),
    ],
)
def test_bad_env_values_name_the_variable(monkeypatch: pytest.MonkeyPatch, variable: str,
                                          value: str, message: str) -> None:
    """A bad env value raises InputError whose problem line starts with the variable's name."""
    monkeypatch.setenv(variable, value)
    with pytest.raises(InputError) as caught:
        load_settings()
    assert caught.value.source == "settings"
    assert len(caught.value.problems) == 1
    assert caught.value.problems[0].startswith(f"{variable}: ")
    assert message in caught.value.problems[0]


def test_actual_is_refused_as_a_flag_too() -> None:
    """status=Actual passed as an override is refused and named by its field."""
    with pytest.raises(InputError, match=r"status: status Actual is refused"):
        load_settings(status="Actual")  # type: ignore[arg-type]


def test_every_problem_is_reported() -> None:
    """Several bad values give one InputError listing each of them."""
    with pytest.raises(InputError) as caught:
        load_settings(policy="foo", max_payload_bytes=0)  # type: ignore[arg-type]
    assert [p.split(":")[0] for p in caught.value.problems] == ["policy", "max_payload_bytes"]


def test_unknown_override_is_refused() -> None:
    """An override that is not a field is an error, not silently ignored."""
    with pytest.raises(InputError, match=r"brokr: Extra inputs are not permitted"):
        load_settings(brokr="mqtt://x")  # type: ignore[call-arg]


def test_settings_are_frozen() -> None:
    """Settings cannot be changed after loading."""
    s = load_settings()
    with pytest.raises(ValueError, match="frozen"):
        s.status = "test"  # type: ignore[misc]


def test_overrides_type_lists_every_field() -> None:
    """SettingsOverrides and ServiceSettings declare the same fields."""
    assert set(SettingsOverrides.__annotations__) == set(_FIELDS)


def test_nothing_else_reads_the_environment() -> None:
    """Only alertsim/settings.py (through pydantic-settings) reads the process environment."""
    package = Path(alertsim.__file__).parent
    readers = re.compile(r"os\.environ|os\.getenv|getenv\(|environ\[")
    offenders = [str(path.relative_to(package)) for path in sorted(package.rglob("*.py"))
                 if path.name != "settings.py" and readers.search(path.read_text("utf-8"))]
    assert offenders == []
