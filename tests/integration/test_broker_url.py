"""Broker URLs: credentials, mqtts, redaction, and the messages for bad input."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from alertsim.bootstrap import ServeOptions
from alertsim.brokers.brokers import EmbeddedBroker
from alertsim.drills.runner import DrillOptions, run_drill
from alertsim.errors import InputError
from alertsim.mqtt.client import MqttSettings
from alertsim.mqtt.url import BrokerUrl, parse_broker_url
from alertsim.service.config import ServiceConfig

SECRET = "s3cr3t-Pw"


def test_credentials_are_parsed() -> None:
    """User and password come out of the URL, with host and port."""
    url = parse_broker_url(f"mqtt://alice:{SECRET}@broker.example:1999")
    assert url == BrokerUrl("mqtt", "broker.example", 1999, "alice", SECRET)
    assert not url.tls


def test_percent_encoded_credentials() -> None:
    """Reserved characters in a password are percent-encoded in the URL and decoded here."""
    url = parse_broker_url("mqtt://bob:p%40ss%3Aw@h")
    assert (url.username, url.password) == ("bob", "p@ss:w")
    assert parse_broker_url(url.secret()) == url


@pytest.mark.parametrize(("text", "port"), [
    ("mqtts://h", 8883), ("mqtt://h", 1883), ("h", 1883), ("h:7", 7), ("mqtts://h:9", 9),
])
def test_default_ports(text: str, port: int) -> None:
    """mqtt:// defaults to 1883, mqtts:// to 8883; an explicit port wins."""
    assert parse_broker_url(text).port == port


def test_mqtts_is_tls() -> None:
    """mqtts:// marks the URL as TLS."""
    assert parse_broker_url("mqtts://u:p@h").tls


def test_password_never_in_str_or_repr() -> None:
    """str(), repr() and redacted() show *** instead of the password."""
    url = parse_broker_url(f"mqtts://alice:{SECRET}@h:1")
    assert str(url) == url.redacted() == "mqtts://alice:***@h:1"
    assert SECRET not in repr(url)
    assert SECRET not in f"{url}"
    assert url.without_credentials() == "mqtts://h:1"


def test_user_without_password_redacted() -> None:
    """A user name alone is shown as is."""
    assert str(parse_broker_url("mqtt://alice@h")) == "mqtt://alice@h:1883"


def test_settings_and_options_do_not_show_the_password() -> None:
    """MqttSettings and ServeOptions reprs hide the password, in the field or in the URL."""
    settings = MqttSettings(url=f"mqtt://u:{SECRET}@h:1", client_id="c", password=SECRET)
    assert SECRET not in repr(settings)
    assert "mqtt://u:***@h:1" in repr(settings)
    options = ServeOptions(config=ServiceConfig(), db=Path("x.db"), broker_url="mqtt://h",
                           password=SECRET)
    assert SECRET not in repr(options)


@pytest.mark.parametrize(("url", "expected"), [
    ("mqtt://127.0.0.1:18830", BrokerUrl("mqtt", "127.0.0.1", 18830)),
    ("mqtt://broker.example", BrokerUrl("mqtt", "broker.example", 1883)),
    ("localhost:1884", BrokerUrl("mqtt", "localhost", 1884)),
    ("localhost", BrokerUrl("mqtt", "localhost", 1883)),
    ("  mqtt://h:2000/  ", BrokerUrl("mqtt", "h", 2000)),
    ("mqtt://[::1]:1885", BrokerUrl("mqtt", "::1", 1885)),
    ("mqtts://h", BrokerUrl("mqtts", "h", 8883)),
    ("mqtt://user:pw@h:1883", BrokerUrl("mqtt", "h", 1883, "user", "pw")),
    ("mqtt://u:p@h:5", BrokerUrl("mqtt", "h", 5, "u", "p")),
    ("127.0.0.1", BrokerUrl("mqtt", "127.0.0.1", 1883)),
])
def test_parse_broker_url_accepts(url: str, expected: BrokerUrl) -> None:
    """Broker URLs with or without scheme and port parse to a BrokerUrl, port 1883 by default."""
    assert parse_broker_url(url) == expected


@pytest.mark.parametrize("url", [
    "", "   ", "http://h:1883", "mqtt://h:notaport", "mqtt://h:70000",
    "h:0", "mqtt://:1883", "mqtt://h:1883/path", "mqtt://h?x=1",
])
def test_parse_broker_url_rejects(url: str) -> None:
    """Bad broker URLs raise InputError naming --broker."""
    with pytest.raises(InputError) as info:
        parse_broker_url(url)
    assert info.value.source == "--broker"
    assert info.value.problems


@pytest.mark.parametrize(("text", "message"), [
    ("", "empty broker URL"),
    ("   ", "empty broker URL"),
    ("http://example", "scheme must be mqtt://"),
    ("mqtt://h/path", "a broker URL has no path, query or fragment"),
    ("mqtt://h?x=1", "a broker URL has no path, query or fragment"),
    ("mqtt://:1883", "no host in"),
    ("mqtt://h:0", "port must be an integer from 1 to 65535 (got 0)"),
    ("mqtt://h:99999", "port must be an integer from 1 to 65535"),
    ("mqtt://h:x", "port must be an integer from 1 to 65535"),
    ("mqtt://:pw@h", "a password in the URL needs a user name"),
])
def test_bad_urls_keep_their_messages(text: str, message: str) -> None:
    """Bad URLs raise InputError(source='--broker') with the usual message."""
    with pytest.raises(InputError) as caught:
        parse_broker_url(text)
    assert caught.value.source == "--broker"
    assert any(message in problem for problem in caught.value.problems), caught.value.problems


def test_bad_url_message_hides_the_password() -> None:
    """An error about a URL with a password does not repeat the password."""
    with pytest.raises(InputError) as caught:
        parse_broker_url(f"mqtt://u:{SECRET}@h/path")
    assert SECRET not in str(caught.value)
    assert "u:***@h/path" in str(caught.value)


def test_env_credentials_are_settings_and_hidden(monkeypatch: pytest.MonkeyPatch,
                                                 tmp_path: Path) -> None:
    """ALERTSIM_MQTT_USERNAME / _PASSWORD / _CA_FILE load; the password stays out of repr."""
    from alertsim.cli.settings import load_settings

    ca = tmp_path / "ca.crt"  # the CA file must exist: a missing one is bad input
    ca.write_text("not parsed by the settings", "utf-8")
    monkeypatch.setenv("ALERTSIM_MQTT_USERNAME", "service-exercise")
    monkeypatch.setenv("ALERTSIM_MQTT_PASSWORD", SECRET)
    monkeypatch.setenv("ALERTSIM_MQTT_CA_FILE", str(ca))
    settings = load_settings()
    assert settings.mqtt_username == "service-exercise"
    assert settings.mqtt_password is not None
    assert settings.mqtt_password.get_secret_value() == SECRET
    assert settings.mqtt_ca_file == ca
    assert SECRET not in repr(settings)


SCENARIO = Path(__file__).resolve().parents[2] / "scenarios" / "2023-11-21-chollima-1.yaml"


async def test_a_drill_keeps_the_password_out_of_output_report_and_record(
        tmp_path: Path, amqtt_broker: EmbeddedBroker,
        capsys: pytest.CaptureFixture[str]) -> None:
    """A broker URL with a password: the drill passes, and the password appears nowhere."""
    port = amqtt_broker.url.rsplit(":", 1)[1]
    url = f"mqtt://drill:hunter2-secret@127.0.0.1:{port}"
    scenario = SCENARIO
    out = io.StringIO()
    outcome = await run_drill(DrillOptions(scenario_path=scenario, speed=240.0, broker_url=url,
                                           reports_dir=tmp_path, quiet_s=0.3, out=out))
    assert outcome.passed
    texts = [out.getvalue(), *capsys.readouterr(), outcome.json_path.read_text("utf-8"),
             outcome.markdown_path.read_text("utf-8"), outcome.db_path.read_bytes().decode(
                 "utf-8", "replace")]
    assert all("hunter2-secret" not in text for text in texts)
    assert "drill:***@127.0.0.1" in texts[-1]  # the record names the broker, redacted
