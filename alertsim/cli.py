"""The `alertsim` command: argument parsing and dispatch, nothing else.

Every subcommand turns bad input into a specific message on stderr and exit code 2,
never a traceback. Settings are read here, at the edge, and passed down.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import get_args

from pydantic import BaseModel, ValidationError

from alertsim.data import load_atlas
from alertsim.domain.detection import Detection
from alertsim.domain.warnings import POLICIES, Decision, PolicyName, decide
from alertsim.errors import AlertSimError, InputError, describe_validation_error
from alertsim.render import decision_text

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_BAD_INPUT = 2
POLICY_NAMES: tuple[str, ...] = tuple(POLICIES)
assert set(POLICY_NAMES) == set(get_args(PolicyName))


def read_detection(path: Path) -> Detection:
    """Parse a detection file, or raise InputError naming the field and the problem."""
    try:
        raw = sys.stdin.buffer.read() if str(path) == "-" else path.read_bytes()
    except OSError as exc:
        raise InputError(str(path), [f"cannot read file: {exc.strerror or exc}"]) from exc
    try:
        return Detection.model_validate_json(raw)
    except ValidationError as exc:
        raise InputError(str(path), describe_validation_error(exc)) from exc


def cmd_decide(args: argparse.Namespace) -> int:
    detection = read_detection(args.detection)
    decision = decide(detection, load_atlas(), policy=args.policy, now=datetime.now(UTC))
    if args.format == "json":
        print(decision.model_dump_json(indent=2))
    else:
        print(decision_text(decision))
    return EXIT_OK


SCHEMAS: dict[str, type[BaseModel]] = {"detection": Detection, "decision": Decision}


def cmd_schema(args: argparse.Namespace) -> int:
    print(json.dumps(schema_of(args.name), indent=2, ensure_ascii=False))
    return EXIT_OK


def schema_of(name: str) -> dict[str, object]:
    """JSON Schema of a contract model, with an $id naming its version."""
    schema: dict[str, object] = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"alertsim/v1/{name}.schema.json",
        **SCHEMAS[name].model_json_schema(),
    }
    return schema


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="alertsim",
        description="J-Alert-style alert simulator (a simulator, not an official alert feed).")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("decide", help="print which prefectures must take shelter")
    p.add_argument("detection", type=Path, help="detection v1 JSON file ('-' for stdin)")
    p.add_argument("--policy", choices=POLICY_NAMES, default="prefecture",
                   help="warning rule (default: %(default)s, the 2018 rule)")
    p.add_argument("--format", choices=("json", "text"), default="json")
    p.set_defaults(handler=cmd_decide)

    p = sub.add_parser("schema", help="print the JSON Schema of a message contract")
    p.add_argument("name", choices=tuple(SCHEMAS))
    p.set_defaults(handler=cmd_schema)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handler: Callable[[argparse.Namespace], int] = args.handler
    try:
        return handler(args)
    except InputError as exc:
        print(f"alertsim {args.command}: invalid input in {exc.source}:", file=sys.stderr)
        for problem in exc.problems:
            print(f"  {problem}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except AlertSimError as exc:
        print(f"alertsim {args.command}: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
