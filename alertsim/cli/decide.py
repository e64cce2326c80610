"""`alertsim decide` (the shelter decision for a detection) and `alertsim schema`."""

import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Literal

import typer
from pydantic import BaseModel, ValidationError

from alertsim.cli.messages import say
from alertsim.cli.options import EXIT_OK
from alertsim.cli.render import decision_text
from alertsim.data import load_atlas
from alertsim.domain.detection import Detection
from alertsim.domain.messages import Alert, PrefectureState, Receipt
from alertsim.domain.notices import ErrorReport, ServiceStatus
from alertsim.domain.operator import OperatorAction
from alertsim.domain.policies import resolve_policy
from alertsim.domain.vocabulary import DEFAULT_POLICY, PolicyChoice
from alertsim.domain.warnings import Decision, decide
from alertsim.errors import InputError, describe_validation_error

__all__ = ["SCHEMAS", "decide_command", "read_detection", "schema_command", "schema_of"]

DecisionFormat = Literal["json", "text"]
SchemaName = Literal["detection", "decision", "alert", "state", "receipt", "error",
                     "operator", "status"]
# Every payload of the message contract, by the name `alertsim schema NAME` takes; the
# committed copies are docs/schema/NAME.schema.json (tests/unit/test_contract_schemas.py).
SCHEMAS: dict[SchemaName, type[BaseModel]] = {
    "detection": Detection, "decision": Decision, "alert": Alert, "state": PrefectureState,
    "receipt": Receipt, "error": ErrorReport, "operator": OperatorAction,
    "status": ServiceStatus}

DetectionArgument = Annotated[Path, typer.Argument(
    metavar="DETECTION", help="detection v1 JSON file ('-' for stdin)")]


def read_detection(path: Path) -> Detection:
    """Parse a detection file, or raise InputError naming the field and the problem."""
    try:
        raw = sys.stdin.buffer.read() if str(path) == "-" else path.read_bytes()
    except OSError as exc:
        raise InputError(str(path), [say("file.unreadable_file", error=exc.strerror or exc)]) \
            from exc
    try:
        return Detection.model_validate_json(raw)
    except ValidationError as exc:
        raise InputError(str(path), describe_validation_error(exc)) from exc


def schema_of(name: SchemaName) -> dict[str, object]:
    """JSON Schema of a contract model, with an $id naming its version."""
    schema: dict[str, object] = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"alertsim/v1/{name}.schema.json",
        **SCHEMAS[name].model_json_schema(),
    }
    return schema


def decide_command(
    detection: DetectionArgument,
    policy: Annotated[PolicyChoice, typer.Option(
        help="warning rule of an era: block-2017 (regional blocks, until 2018-01-07), "
             "prefecture (from 2018-01-08), prefecture+adjacent (from 2023); auto: the "
             "rule in force on the launch date")] = DEFAULT_POLICY,
    output: Annotated[DecisionFormat, typer.Option("--format", help="output form")] = "json",
) -> int:
    """Print which prefectures must take shelter."""
    parsed = read_detection(detection)
    decision = decide(parsed, load_atlas(), now=datetime.now(UTC),
                      policy=resolve_policy(policy, parsed.launch.time))
    print(decision.model_dump_json(indent=2) if output == "json" else decision_text(decision))
    return EXIT_OK


def schema_command(
    name: Annotated[SchemaName, typer.Argument(metavar="NAME", help="which contract")],
) -> int:
    """Print the JSON Schema of a message contract."""
    print(json.dumps(schema_of(name), indent=2, ensure_ascii=False))
    return EXIT_OK
