"""The `alertsim` command: argument parsing and dispatch, nothing else.

Every subcommand turns bad input into a specific message on stderr and exit code 2,
never a traceback. Settings are read here, at the edge, and passed down.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import get_args

from pydantic import BaseModel, ValidationError

from alertsim import __version__
from alertsim.adapters.mqtt.brokers import parse_broker_url
from alertsim.cli.render import decision_text
from alertsim.cli.settings import load_settings
from alertsim.data import load_atlas
from alertsim.domain.detection import Detection
from alertsim.domain.warnings import POLICIES, Decision, PolicyName, decide
from alertsim.errors import AlertSimError, InputError, ScenarioError, describe_validation_error
from alertsim.logs import configure_logging

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


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text!r}")
    return value


def non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {text!r}")
    return value


def jis_code(text: str) -> str:
    code = text.zfill(2)
    if not (code.isdigit() and 1 <= int(code) <= 47):
        raise argparse.ArgumentTypeError(f"not a prefecture code 01..47: {text!r}")
    return code


def broker_url(text: str) -> str:
    try:
        parse_broker_url(text)
    except InputError as exc:
        raise argparse.ArgumentTypeError("; ".join(exc.problems)) from None
    return text


def _setup_logs(level: str = "info") -> None:
    configure_logging("auto", level)


def cmd_drill(args: argparse.Namespace) -> int:
    from alertsim.drills.runner import DrillOptions, dry_run, run_drill

    _setup_logs(args.log_level)
    try:
        if args.dry_run:
            return EXIT_OK if dry_run(args.scenario) else EXIT_FAILED
        outcome = asyncio.run(run_drill(DrillOptions(
            scenario_path=args.scenario, speed=args.speed, broker_url=args.broker,
            extra_receivers=args.receivers, db=args.db, reports_dir=args.reports)))
    except ScenarioError as exc:
        print(f"alertsim drill: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    return EXIT_OK if outcome.passed else EXIT_FAILED


def cmd_serve(args: argparse.Namespace) -> int:
    from alertsim.service.run import serve

    settings = load_settings(broker_url=args.broker, db=args.db, policy=args.policy,
                             status=args.status, mqtt_protocol=args.protocol,
                             log_level=args.log_level)
    configure_logging(settings.log_format, settings.log_level)
    asyncio.run(serve(settings))
    return EXIT_OK


def cmd_detect(args: argparse.Namespace) -> int:
    from alertsim.service.run import send_detection

    detection = read_detection(args.detection)
    settings = load_settings(broker_url=args.broker)
    asyncio.run(send_detection(args.detection, detection, url=settings.broker_url))
    return EXIT_OK


def cmd_report(args: argparse.Namespace) -> int:
    from alertsim.adapters.sqlite.store import Store
    from alertsim.drills.report.report import build_report, render_markdown, write_report

    if not args.db.exists():
        raise InputError(str(args.db), ["no such SQLite record"])

    async def rebuild() -> str:
        async with await Store.open(args.db) as store:
            report = await build_report(store, event_id=args.event)
        if args.out is not None:
            await write_report(report, args.out, args.db.stem + (f"-{args.event}"
                                                                 if args.event else ""))
        return report.model_dump_json(indent=2) if args.format == "json" else \
            render_markdown(report)

    print(asyncio.run(rebuild()))
    return EXIT_OK


def cmd_replay(args: argparse.Namespace) -> int:
    from alertsim.drills.replay import replay

    if not args.db.exists():
        raise InputError(str(args.db), ["no such SQLite record"])
    _setup_logs(args.log_level)
    settings = load_settings(broker_url=args.broker)
    count = asyncio.run(replay(args.db, args.event, url=settings.broker_url, speed=args.speed))
    print(f"replayed {count} alert(s) of {args.event}")
    return EXIT_OK


def cmd_subscribe(args: argparse.Namespace) -> int:
    from alertsim.adapters.mqtt.receiver import default_client_id, run_subscriber
    from alertsim.service.run import wait_for_protocol

    _setup_logs(args.log_level)
    settings = load_settings(broker_url=args.broker, status=args.status)
    codes = sorted(set(args.prefecture))

    async def go() -> None:
        protocol = await wait_for_protocol(settings.broker_url, "auto")
        await run_subscriber(url=settings.broker_url, codes=codes, lang=args.lang,
                             status=settings.status, protocol=protocol,
                             client_id=args.client_id or default_client_id(codes))

    asyncio.run(go())
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="alertsim",
        description="J-Alert-style alert simulator (a simulator, not an official alert feed).")
    parser.add_argument("--version", action="version", version=f"alertsim {__version__}")
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

    broker_help = "MQTT broker, mqtt://HOST:PORT (env ALERTSIM_BROKER_URL)"
    p = sub.add_parser("drill", help="play a scenario end to end and report deliveries")
    p.add_argument("scenario", type=Path, help="scenario YAML file (see scenarios/)")
    p.add_argument("--speed", type=positive_float, default=60.0,
                   help="scenario seconds per real second (default: %(default)s)")
    p.add_argument("--broker", type=broker_url, default=None,
                   help="use this broker instead of an embedded amqtt broker")
    p.add_argument("--receivers", type=non_negative_int, default=0, metavar="N",
                   help="receivers beyond one per prefecture (default: %(default)s)")
    p.add_argument("--db", type=Path, default=None, help="SQLite record (default: in --reports)")
    p.add_argument("--reports", type=Path, default=Path("reports"),
                   help="folder for the report and record (default: %(default)s)")
    p.add_argument("--log-level", default="info",
                   help="log level; info shows each published alert (default: %(default)s)")
    p.add_argument("--dry-run", action="store_true",
                   help="no broker: play the scenario on a virtual clock and print the alerts")
    p.set_defaults(handler=cmd_drill)

    p = sub.add_parser("serve", help="run the service against a broker")
    p.add_argument("--broker", type=broker_url, default=None, help=broker_help)
    p.add_argument("--db", type=Path, default=None, help="SQLite record (env ALERTSIM_DB)")
    p.add_argument("--policy", choices=POLICY_NAMES, default=None, help="env ALERTSIM_POLICY")
    p.add_argument("--status", default=None, help="exercise or test (env ALERTSIM_STATUS)")
    p.add_argument("--protocol", choices=("5", "3.1.1", "auto"), default=None,
                   help="MQTT protocol (env ALERTSIM_MQTT_PROTOCOL, default auto)")
    p.add_argument("--log-level", default=None, help="env ALERTSIM_LOG_LEVEL")
    p.set_defaults(handler=cmd_serve)

    p = sub.add_parser("detect", help="publish a detection by hand to a running service")
    p.add_argument("detection", type=Path, help="detection v1 JSON file ('-' for stdin)")
    p.add_argument("--broker", type=broker_url, default=None, help=broker_help)
    p.set_defaults(handler=cmd_detect)

    p = sub.add_parser("report", help="rebuild a drill report from its SQLite record")
    p.add_argument("db", type=Path)
    p.add_argument("--event", default=None, help="only this event")
    p.add_argument("--format", choices=("markdown", "json"), default="markdown")
    p.add_argument("--out", type=Path, default=None, help="also write .md and .json here")
    p.set_defaults(handler=cmd_report)

    p = sub.add_parser("replay", help="publish a recorded event's alerts again")
    p.add_argument("db", type=Path)
    p.add_argument("--event", required=True)
    p.add_argument("--speed", type=positive_float, default=1.0)
    p.add_argument("--broker", type=broker_url, default=None, help=broker_help)
    p.add_argument("--log-level", default="warning")
    p.set_defaults(handler=cmd_replay)

    p = sub.add_parser("subscribe", help="print alerts for some prefectures as people read them")
    p.add_argument("--prefecture", type=jis_code, action="append", required=True,
                   metavar="CODE", help="JIS code 01..47; repeat for more")
    p.add_argument("--lang", choices=("ja", "en"), default="ja")
    p.add_argument("--broker", type=broker_url, default=None, help=broker_help)
    p.add_argument("--status", default=None, help="exercise or test (env ALERTSIM_STATUS)")
    p.add_argument("--client-id", default=None, help="persistent session id")
    p.add_argument("--log-level", default="warning")
    p.set_defaults(handler=cmd_subscribe)
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
