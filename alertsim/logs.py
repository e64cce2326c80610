"""structlog set-up, done once by the CLI: pretty lines on a terminal, JSON lines otherwise.

Every line carries `timestamp` (ISO 8601, UTC), `level`, `event` and whatever was bound with
`structlog.contextvars.bind_contextvars(event_id=...)`. Event names are stable `noun.verb`
strings ("alert.published", "broker.connected"); details go in keys, never in the event.
The domain never logs. Tests read log events with `captured_logs()`.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Literal, TextIO

import structlog
import structlog.testing
from structlog.typing import EventDict, Processor

from alertsim.errors import InputError

__all__ = ["LogFormat", "captured_logs", "configure_logging", "get_logger"]

LogFormat = Literal["auto", "console", "json"]

_LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
    "critical": logging.CRITICAL,
}


def configure_logging(format: LogFormat = "auto", level: str = "info",
                      stream: TextIO | None = None) -> None:
    """Send structlog output to `stream` at `level` and above.

    Without a stream, each line goes to whatever `sys.stderr` is when it is written, so a
    replaced-then-closed stderr (pytest's capture, a redirected CLI run) never breaks a
    later log line.
    """
    out = sys.stderr if stream is None else stream
    try:
        min_level = _LEVELS[level.strip().lower()]
    except KeyError:
        raise InputError(source="logging", problems=[
            f"level: must be one of {', '.join(_LEVELS)} (got {level!r})"]) from None
    if format not in ("auto", "console", "json"):
        raise InputError(source="logging", problems=[
            f"format: must be auto, console or json (got {format!r})"])
    console = format == "console" or (format == "auto" and _is_tty(out))

    shared: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        _add_logger_name,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.StackInfoRenderer(),
    ]
    renderer: list[Processor]
    if console:
        renderer = [structlog.dev.ConsoleRenderer(colors=_is_tty(out))]
    else:
        renderer = [structlog.processors.dict_tracebacks,
                    structlog.processors.JSONRenderer(sort_keys=False)]
    structlog.configure(
        processors=[*shared, *renderer],
        wrapper_class=structlog.make_filtering_bound_logger(min_level),
        logger_factory=_NamedWriteLoggerFactory(stream),
        # Not cached: module-level loggers must follow a later configure() or captured_logs().
        cache_logger_on_first_use=False,
    )


def get_logger(name: str) -> structlog.typing.FilteringBoundLogger:
    """A lazy logger whose lines carry `logger=name` (pass `__name__`); safe at import time."""
    # The name travels as a logger-factory argument, not a bound value: binding would build
    # the logger now, freezing whatever configuration (stream, level) exists at import time.
    logger: structlog.typing.FilteringBoundLogger = structlog.get_logger(name)
    return logger


@contextmanager
def captured_logs() -> Iterator[list[EventDict]]:
    """Collect log events as dicts (with `log_level` and bound contextvars) instead of writing."""
    with structlog.testing.capture_logs(
            processors=[structlog.contextvars.merge_contextvars, _add_logger_name]) as entries:
        yield entries


class _NamedWriteLogger(structlog.WriteLogger):
    """structlog's WriteLogger plus the name `get_logger` was called with."""

    def __init__(self, file: TextIO, name: str) -> None:
        super().__init__(file)
        self.name = name


class _NamedWriteLoggerFactory:
    def __init__(self, file: TextIO | None) -> None:
        self._file = file

    def __call__(self, *args: object) -> _NamedWriteLogger:
        # Loggers are not cached, so None means "sys.stderr as it is now", per line.
        return _NamedWriteLogger(self._file or sys.stderr, str(args[0]) if args else "")


def _add_logger_name(logger: object, method_name: str, event_dict: EventDict) -> EventDict:
    name = getattr(logger, "name", None)
    if name:
        event_dict.setdefault("logger", name)
    return event_dict


def _is_tty(stream: TextIO) -> bool:
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())
