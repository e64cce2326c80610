"""alertsim's exceptions, all under one root, and readable validation messages.

    AlertSimError
    ├── InputError          bad input from outside (file, payload, flag); names the field
    ├── BrokerError         the MQTT broker could not be reached or refused us
    ├── StoreError          the SQLite record could not be read or written
    │   └── LiveReadError   a view queried the record while a drill is live
    └── ScenarioError       a scenario file is invalid or failed to run

Adapters re-raise library errors as these (`raise ... from exc`) so the service and CLI
handle one family.
"""

from __future__ import annotations

from collections.abc import Callable

from pydantic import ValidationError
from pydantic_core import ErrorDetails

from alertsim.domain.detection import PREDICTION_TAGS


class AlertSimError(Exception):
    """Root of every error alertsim raises on purpose."""


class InputError(AlertSimError):
    """Input from outside was rejected; `problems` lists 'field: reason' lines."""

    def __init__(self, source: str, problems: list[str]) -> None:
        self.source = source
        self.problems = problems
        super().__init__(f"{source}: " + "; ".join(problems))


class BrokerError(AlertSimError):
    """The MQTT broker was unreachable, refused the connection or dropped it."""


class StoreError(AlertSimError):
    """The SQLite record could not be read or written."""


class LiveReadError(StoreError):
    """A view queried the record while the drill is live (`RecordViews.closed_while_live`)."""


class ScenarioError(AlertSimError):
    """A scenario file is invalid, or the drill it describes could not run."""


Location = tuple[int | str, ...]
Locate = Callable[[Location, "ErrorDetails"], str]
# Error types whose input is the whole document or nothing useful to echo back.
_NO_ECHO = frozenset({"missing", "json_invalid", "model_type", "dict_type"})


def clean_location(loc: Location) -> Location:
    """`loc` without the union tags and validator names pydantic puts in error locations."""
    return tuple(p for p in loc
                 if str(p) not in PREDICTION_TAGS and not str(p).startswith("function-")
                 and str(p) != "[key]")


def dotted(loc: Location, err: ErrorDetails | None = None) -> str:
    """`launch.lat`, `timeline[2].detection`: where a problem is, as a reader writes it."""
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "(document)"


def _dotted_plain(loc: Location, err: ErrorDetails | None = None) -> str:
    return ".".join(str(p) for p in loc) or "(document)"


def _echo(err: ErrorDetails) -> str:
    got = err.get("input")
    if err["type"] in _NO_ECHO or not isinstance(got, int | float | str) or len(str(got)) > 40:
        return ""
    return f" (got {got!r})"


def describe_validation_error(exc: ValidationError, limit: int = 5, *,
                              locate: Locate = _dotted_plain,
                              echo: bool | Callable[[ErrorDetails], bool] = True) -> list[str]:
    """'where: what is wrong (got value)' lines, at most `limit`, then '... and N more'.

    The one formatter of validation errors: payloads and detection files use the default
    (`launch.lat`), scenario files pass a `locate` that adds FILE:LINE, settings one that
    names the environment variable. `echo` says whether to show the offending value (a
    bool, or a test per error).
    """
    lines = []
    for err in exc.errors(include_url=False)[:limit]:
        message = err["msg"].removeprefix("Value error, ")
        shown = _echo(err) if (echo(err) if callable(echo) else echo) else ""
        lines.append(f"{locate(clean_location(tuple(err['loc'])), err)}: {message}{shown}")
    extra = exc.error_count() - limit
    if extra > 0:
        lines.append(f"... and {extra} more problem(s)")
    return lines
