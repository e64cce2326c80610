"""Logging: JSON lines off a terminal, console lines on one, contextvars merged, test capture."""

from __future__ import annotations

import io
import json
import sys
from collections.abc import Iterator
from datetime import datetime, timedelta

import pytest
import structlog

from alertsim.errors import InputError
from alertsim.logs import captured_logs, configure_logging, get_logger


class _FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture(autouse=True)
def _reset_structlog() -> Iterator[None]:
    """Leave structlog's global configuration and contextvars as each test found them."""
    yield
    structlog.contextvars.clear_contextvars()
    structlog.reset_defaults()


def _json_lines(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_json_lines_carry_event_level_timestamp_and_contextvars() -> None:
    """Each JSON line parses and has event, level, a UTC ISO timestamp and bound ids."""
    out = io.StringIO()
    configure_logging("json", "info", stream=out)
    structlog.contextvars.bind_contextvars(event_id="evt-1")
    get_logger("alertsim.service").info("alert.published", prefecture="47", qos=1)
    [line] = _json_lines(out)
    assert line["event"] == "alert.published"
    assert line["level"] == "info"
    assert line["event_id"] == "evt-1"
    assert (line["prefecture"], line["qos"], line["logger"]) == ("47", 1, "alertsim.service")
    stamp = datetime.fromisoformat(str(line["timestamp"]))
    assert stamp.utcoffset() == timedelta(0)


def test_level_filters_lower_lines() -> None:
    """At level warning, info lines are dropped and warning lines kept."""
    out = io.StringIO()
    configure_logging("json", "WARNING", stream=out)
    log = get_logger("t")
    log.info("noise.ignored")
    log.warning("outbox.stalled")
    assert [line["event"] for line in _json_lines(out)] == ["outbox.stalled"]


def test_auto_is_json_off_a_terminal() -> None:
    """format=auto writes JSON to a stream that is not a TTY."""
    out = io.StringIO()
    configure_logging("auto", "info", stream=out)
    get_logger("t").info("service.started")
    assert _json_lines(out)[0]["event"] == "service.started"


def test_auto_is_console_on_a_terminal() -> None:
    """format=auto writes human-readable, non-JSON lines to a TTY."""
    out = _FakeTerminal()
    configure_logging("auto", "info", stream=out)
    get_logger("t").info("service.started", broker="mqtt://x")
    text = out.getvalue()
    assert "service.started" in text
    with pytest.raises(json.JSONDecodeError):
        json.loads(text)


def test_exceptions_are_structured_in_json() -> None:
    """log.exception in JSON mode yields a parseable line with the traceback as data."""
    out = io.StringIO()
    configure_logging("json", "info", stream=out)
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        get_logger("t").exception("broker.failed")
    [line] = _json_lines(out)
    assert line["level"] == "error"
    assert "RuntimeError" in json.dumps(line["exception"])


def test_bad_level_is_an_input_error() -> None:
    """An unknown level name is refused with InputError."""
    with pytest.raises(InputError, match="level: must be one of"):
        configure_logging("json", "loud", stream=io.StringIO())


def test_captured_logs_yields_event_dicts_with_contextvars() -> None:
    """captured_logs collects events as dicts, with bound contextvars merged in."""
    configure_logging("json", "info", stream=io.StringIO())
    log = get_logger("alertsim.service")
    structlog.contextvars.bind_contextvars(event_id="evt-2")
    with captured_logs() as logs:
        log.info("alert.published", prefecture="01")
    assert logs == [{"event": "alert.published", "log_level": "info", "logger": "alertsim.service",
                     "prefecture": "01", "event_id": "evt-2"}]


def test_default_stream_follows_sys_stderr(monkeypatch: pytest.MonkeyPatch) -> None:
    """Configured without a stream, a line goes to the current sys.stderr, not a closed one."""
    first = io.StringIO()
    monkeypatch.setattr(sys, "stderr", first)
    configure_logging("json", "info")
    first.close()
    second = io.StringIO()
    monkeypatch.setattr(sys, "stderr", second)
    get_logger("t").info("after.swap")
    assert json.loads(second.getvalue())["event"] == "after.swap"
