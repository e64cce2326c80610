"""`alertsim drill` (play a scenario), `report` (rebuild its report), `replay` (publish again)."""

import asyncio
from pathlib import Path
from typing import Annotated, Literal

import typer

from alertsim.cli.options import (
    EXIT_FAILED,
    EXIT_OK,
    BrokerOption,
    CaFileOption,
    LogLevelOption,
    QuietLogLevelOption,
    broker_url,
    positive_number,
)
from alertsim.cli.options import topic_root as topic_root_text
from alertsim.cli.settings import broker_url_of, settings_and_logging
from alertsim.errors import InputError

__all__ = ["drill_command", "replay_command", "report_command"]

ReportFormat = Literal["markdown", "json"]
DbArgument = Annotated[Path, typer.Argument(metavar="DB", help="SQLite record of a drill")]


def drill_command(
    scenario: Annotated[Path, typer.Argument(
        metavar="SCENARIO", help="scenario YAML file (see scenarios/)")],
    speed: Annotated[float, typer.Option(
        parser=positive_number, metavar="X", help="scenario seconds per real second")] = 60.0,
    broker: Annotated[str | None, typer.Option(
        parser=broker_url, metavar="URL",
        help="use this broker instead of an embedded amqtt broker")] = None,
    receivers: Annotated[int, typer.Option(
        min=0, metavar="N", help="receivers beyond one per prefecture")] = 0,
    db: Annotated[Path | None, typer.Option(
        metavar="PATH", help="SQLite record (default: in --reports)")] = None,
    reports: Annotated[Path, typer.Option(
        metavar="DIR", help="folder for the report and record")] = Path("reports"),
    log_level: LogLevelOption = None,
    dry_run: Annotated[bool, typer.Option(
        "--dry-run", help="no broker: play on a virtual clock and print the alerts")] = False,
    topic_root: Annotated[str | None, typer.Option(
        parser=topic_root_text, metavar="ROOT",
        help="topic root (default: the drill's own, alertsim/v1/drills/DRILL_ID, which "
             "no `serve` reads)")] = None,
    ca_file: CaFileOption = None,
) -> int:
    """Play a scenario end to end and report deliveries.

    Exit 1 when an expectation fails, 2 on a bad scenario or flag.
    """
    from alertsim.drills import runner

    settings = settings_and_logging(log_level=log_level, mqtt_ca_file=ca_file)
    if dry_run:
        return EXIT_OK if runner.dry_run(scenario) else EXIT_FAILED
    # No --broker: an embedded broker of the drill's own (ALERTSIM_BROKER_URL is not read).
    url = None if broker is None else broker_url_of(settings.model_copy(
        update={"broker_url": broker}))
    outcome = asyncio.run(runner.run_drill(runner.DrillOptions(
        scenario_path=scenario, speed=speed, broker_url=url, extra_receivers=receivers,
        db=db, reports_dir=reports, topic_root=topic_root, ca_file=settings.mqtt_ca_file)))
    return EXIT_OK if outcome.passed else EXIT_FAILED


async def _rebuild(db: Path, event: str | None, output: ReportFormat, out: Path | None) -> str:
    from alertsim.adapters.sqlite.store import Store
    from alertsim.drills.report import build_report, render_markdown, write_report

    async with await Store.open(db) as store:
        report = await build_report(store, event_id=event)
    if out is not None:
        await write_report(report, out, db.stem + (f"-{event}" if event else ""))
    return report.model_dump_json(indent=2) if output == "json" else render_markdown(report)


def report_command(
    db: DbArgument,
    event: Annotated[str | None, typer.Option(metavar="ID", help="only this event")] = None,
    output: Annotated[ReportFormat, typer.Option("--format", help="output form")] = "markdown",
    out: Annotated[Path | None, typer.Option(
        metavar="DIR", help="also write the .md and .json here")] = None,
) -> int:
    """Rebuild a drill report from its SQLite record alone."""
    if not db.exists():
        raise InputError(str(db), ["no such SQLite record"])
    print(asyncio.run(_rebuild(db, event, output, out)))
    return EXIT_OK


def replay_command(
    db: DbArgument,
    event: Annotated[str, typer.Option(metavar="ID", help="the recorded event to publish")],
    speed: Annotated[float, typer.Option(
        parser=positive_number, metavar="X", help="speed-up of the original rhythm")] = 1.0,
    broker: BrokerOption = None,
    log_level: QuietLogLevelOption = None,
    ca_file: CaFileOption = None,
) -> int:
    """Publish a recorded event's alerts again (fresh identifiers)."""
    from alertsim.drills.replay import replay

    if not db.exists():
        raise InputError(str(db), ["no such SQLite record"])
    settings = settings_and_logging(quiet=True, broker_url=broker, log_level=log_level,
                                    mqtt_ca_file=ca_file)
    count = asyncio.run(replay(db, event, url=broker_url_of(settings), speed=speed,
                               ca_file=settings.mqtt_ca_file))
    print(f"replayed {count} alert(s) of {event}")
    return EXIT_OK
