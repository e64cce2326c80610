"""Settings: flags over ALERTSIM_* env vars over defaults, errors naming the variable."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import alertsim
from alertsim.cli.settings import QuietSettings, ServiceSettings, load_settings
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
    # No client id: `serve` derives one per host and record (bootstrap.default_client_id).
    assert (s.client_id, s.sender) == (None, "alertsim@simulator.invalid")
    assert (s.metrics_host, s.mqtt_password_file) == ("127.0.0.1", None)
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
        ("ALERTSIM_POLICY", "foo", "Input should be 'auto', 'block-2017', 'prefecture' or 'prefecture+adjacent'"),
        ("ALERTSIM_MAX_PAYLOAD_BYTES", "-1", "greater than 0"),
        ("ALERTSIM_MAX_PAYLOAD_BYTES", "lots", "valid integer"),
        ("ALERTSIM_CLOSE_AFTER_S", "-5", "greater than or equal to 0"),
        ("ALERTSIM_CONFIRM_AFTER_S", "soon", "valid number"),
        ("ALERTSIM_CONFIRM_AFTER_S", "-1", "greater than or equal to 0"),
        ("ALERTSIM_NATIONAL_INFO", "perhaps", "valid boolean"),
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
        load_settings(status="Actual")


def test_every_problem_is_reported() -> None:
    """Several bad values give one InputError listing each of them."""
    with pytest.raises(InputError) as caught:
        load_settings(policy="foo", max_payload_bytes=0)
    assert [p.split(":")[0] for p in caught.value.problems] == ["policy", "max_payload_bytes"]


def test_unknown_override_is_refused() -> None:
    """An override that is not a field is an error, not silently ignored."""
    with pytest.raises(InputError, match=r"brokr: Extra inputs are not permitted"):
        load_settings(brokr="mqtt://x")


def test_settings_are_frozen() -> None:
    """Settings cannot be changed after loading."""
    s = load_settings()
    with pytest.raises(ValueError, match="frozen"):
        s.status = "test"  # type: ignore[misc]


def test_quiet_settings_default_to_warnings_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """quiet=True (replay, subscribe) lowers only the log level's default: env and flag still win."""
    quiet = load_settings(quiet=True)
    assert isinstance(quiet, QuietSettings)
    assert quiet.log_level == "warning"
    assert quiet.model_dump(exclude={"log_level"}) == \
        load_settings().model_dump(exclude={"log_level"})
    monkeypatch.setenv("ALERTSIM_LOG_LEVEL", "DEBUG")
    assert load_settings(quiet=True).log_level == "debug"
    assert load_settings(quiet=True, log_level="error").log_level == "error"


def test_bad_log_level_flag_names_the_field() -> None:
    """A log level override that is not a level is refused by name, in any letter case."""
    assert load_settings(log_level="WARNING").log_level == "warning"
    with pytest.raises(InputError, match=r"log_level: log level must be one of debug, info"):
        load_settings(log_level="loud")


def test_only_the_cli_imports_settings() -> None:
    """Nothing in alertsim outside alertsim/cli/ imports the settings (or the CLI at all)."""
    package = Path(alertsim.__file__).parent
    importers = re.compile(r"^\s*(from|import)\s+alertsim\.cli\b", re.MULTILINE)
    offenders = [str(path.relative_to(package)) for path in sorted(package.rglob("*.py"))
                 if path.parent != package / "cli" and path != package / "__main__.py"
                 and importers.search(path.read_text("utf-8"))]
    assert offenders == []


def test_nothing_else_reads_the_environment() -> None:
    """Only alertsim/settings.py (through pydantic-settings) reads the process environment."""
    package = Path(alertsim.__file__).parent
    readers = re.compile(r"os\.environ|os\.getenv|getenv\(|environ\[")
    offenders = [str(path.relative_to(package)) for path in sorted(package.rglob("*.py"))
                 if path.name != "settings.py" and readers.search(path.read_text("utf-8"))]
    assert offenders == []
