"""alertsim's exceptions, all under one root, and readable validation messages.

    AlertSimError
    ├── InputError          bad input from outside (file, payload, flag); names the field
    ├── BrokerError         the MQTT broker could not be reached or refused us
    ├── StoreError          the SQLite record could not be read or written
    └── ScenarioError       a scenario file is invalid or failed to run

Adapters re-raise library errors as these (`raise ... from exc`) so the service and CLI
handle one family.
"""

from __future__ import annotations

from pydantic import ValidationError

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


class ScenarioError(AlertSimError):
    """A scenario file is invalid, or the drill it describes could not run."""


def _location(loc: tuple[int | str, ...]) -> str:
    parts = [str(p) for p in loc if p not in PREDICTION_TAGS and not str(p).startswith("function-")]
    return ".".join(parts) or "(document)"


def describe_validation_error(exc: ValidationError, limit: int = 5) -> list[str]:
    """'field.path: what is wrong (got value)' lines, most specific first, at most `limit`."""
    lines = []
    for err in exc.errors(include_url=False)[:limit]:
        message = err["msg"].removeprefix("Value error, ")
        where = _location(err["loc"])
        got = err.get("input")
        shown = ""
        if err["type"] not in {"missing", "json_invalid", "model_type", "dict_type"} and \
                isinstance(got, int | float | str) and len(str(got)) <= 40:
            shown = f" (got {got!r})"
        lines.append(f"{where}: {message}{shown}")
    extra = exc.error_count() - limit
    if extra > 0:
        lines.append(f"... and {extra} more problem(s)")
    return lines
