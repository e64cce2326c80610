"""The broker password: from the environment or a file, never echoed; a password given in
`--broker` (seen by every user through `ps`) is warned of with the URL redacted."""

from __future__ import annotations

from pathlib import Path

import pytest
from structlog.testing import capture_logs

from alertsim.cli.service import warn_of_password_in_url
from alertsim.cli.settings import load_settings, mqtt_password_of
from alertsim.errors import InputError


def test_the_password_file_gives_its_first_line(tmp_path: Path) -> None:
    """`--broker-password-file`: the first line is the password, the rest ignored."""
    secret = tmp_path / "pw"
    secret.write_text("s3cret-line\nignored\n")
    assert mqtt_password_of(load_settings(mqtt_password_file=secret)) == "s3cret-line"


def test_the_environment_gives_the_password_and_never_shows_it(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """ALERTSIM_MQTT_PASSWORD is read, and the settings' repr does not show it."""
    monkeypatch.setenv("ALERTSIM_MQTT_PASSWORD", "env-s3cret")
    settings = load_settings()
    assert mqtt_password_of(settings) == "env-s3cret"
    assert "env-s3cret" not in repr(settings)


def test_both_sources_at_once_are_refused(tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """A password from two places is ambiguous: a clear error, naming both ways."""
    secret = tmp_path / "pw"
    secret.write_text("one\n")
    monkeypatch.setenv("ALERTSIM_MQTT_PASSWORD", "two")
    with pytest.raises(InputError, match="once"):
        mqtt_password_of(load_settings(mqtt_password_file=secret))


def test_an_empty_password_file_is_refused(tmp_path: Path) -> None:
    """An empty file is a mistake, said with the file's name."""
    secret = tmp_path / "pw"
    secret.write_text("")
    with pytest.raises(InputError) as caught:
        mqtt_password_of(load_settings(mqtt_password_file=secret))
    assert caught.value.source == str(secret)


def test_a_password_in_the_url_is_warned_of_and_redacted() -> None:
    """A password on the command line is warned of; the log line does not carry it."""
    with capture_logs() as logs:
        warn_of_password_in_url("mqtt://operator:hunter2-pw@broker.example:1883")
        warn_of_password_in_url("mqtt://operator@broker.example:1883")
    assert [e["event"] for e in logs] == ["broker.password_in_url"]
    assert "hunter2-pw" not in repr(logs)
    assert "broker.example" in logs[0]["broker"]
