"""`alertsim drill` (play a scenario), `report` (rebuild its report), `replay` (publish again)."""

import asyncio
from pathlib import Path
from typing import Annotated, Literal

import typer

from alertsim.cli.cap import CapOption
from alertsim.cli.messages import say
from alertsim.cli.options import (
    EXIT_FAILED,
    EXIT_OK,
    BrokerOption,
    CaFileOption,
    DashboardOption,
    DashboardPortOption,
    LogLevelOption,
    MetricsPortOption,
    QuietLogLevelOption,
    broker_url,
    dashboard_port,
    positive_number,
)
from alertsim.cli.options import topic_root as topic_root_text
from alertsim.cli.settings import broker_url_of, settings_and_logging
from alertsim.errors import InputError
from alertsim.i18n import Lang

__all__ = ["drill_command", "replay_command", "report_command"]

ReportFormat = Literal["markdown", "json", "html"]
DbArgument = Annotated[Path, typer.Argument(metavar="DB", help="SQLite record of a drill")]


def _fault(text: str) -> str:
    """A `--fault` value (drills/faults.py imported only when the flag is used)."""
    from alertsim.drills.faults import fault_kind

    try:
        return fault_kind(text)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None


FaultOption = Annotated[list[str] | None, typer.Option(
    "--fault", parser=_fault, metavar="KIND",
    help="inject a fault between the service and the reference receivers: duplicate, "
         "delay, reorder, drop-connection or late-join; repeat for more")]
FaultSeedOption = Annotated[int, typer.Option(
    metavar="N", help="seed of the faults' random choices")]


DryRunOption = Annotated[bool, typer.Option(
    "--dry-run", help="no broker: play on a virtual clock, with the service's admission "
                      "rules, and print the alerts and refusals")]


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
    dry_run: DryRunOption = False,
    topic_root: Annotated[str | None, typer.Option(
        parser=topic_root_text, metavar="ROOT",
        help="topic root (default: the drill's own, alertsim/v1/drills/DRILL_ID, which "
             "no `serve` reads)")] = None,
    ca_file: CaFileOption = None,
    cap: CapOption = False,
    dashboard: DashboardOption = False,
    port: DashboardPortOption = None,
    faults: FaultOption = None,
    fault_seed: FaultSeedOption = 0,
    metrics_port: MetricsPortOption = None,
) -> int:
    """Play a scenario end to end and report deliveries.

    With --dashboard the drill keeps running after its timeline, for the operator to look
    and act, until Ctrl-C; then it writes its report. Exit 1 when an expectation fails, 2
    on a bad scenario or flag.
    """
    from alertsim.drills import runner
    from alertsim.drills.dry_run import dry_run as play_dry

    settings = settings_and_logging(log_level=log_level, mqtt_ca_file=ca_file)
    if dry_run:
        return EXIT_OK if play_dry(scenario) else EXIT_FAILED
    # No --broker: an embedded broker of the drill's own (ALERTSIM_BROKER_URL is not read).
    url = None if broker is None else broker_url_of(settings.model_copy(
        update={"broker_url": broker}))
    outcome = asyncio.run(runner.run_drill(runner.DrillOptions(
        scenario_path=scenario, speed=speed, broker_url=url, extra_receivers=receivers,
        db=db, reports_dir=reports, topic_root=topic_root, ca_file=settings.mqtt_ca_file,
        cap=cap, dashboard_port=dashboard_port(dashboard, port),
        faults=tuple(dict.fromkeys(faults or ())), fault_seed=fault_seed,
        metrics_port=metrics_port)))
    return EXIT_OK if outcome.passed else EXIT_FAILED


async def _rebuild(db: Path, event: str | None, output: ReportFormat,
                   out: Path | None, lang: Lang) -> str:
    """The report in `output` form; with `out`, written there too (see report_command)."""
    from alertsim.adapters.sqlite.store import Store
    from alertsim.drills.report import build_report, render_markdown, write_report
    from alertsim.drills.report.html import build_html, write_html

    stem = db.stem + (f"-{event}" if event else "")
    async with await Store.open(db) as store:
        report = await build_report(store, event_id=event)
        if output == "html":
            if out is None:
                return await build_html(store, report, lang)
            return f"wrote {await write_html(store, report, out, lang)}"
        if out is not None:
            await write_report(report, out, stem)
            await write_html(store, report, out / f"{stem}.html", lang)
    return report.model_dump_json(indent=2) if output == "json" else render_markdown(report)


def report_command(
    db: DbArgument,
    event: Annotated[str | None, typer.Option(metavar="ID", help="only this event")] = None,
    output: Annotated[ReportFormat, typer.Option("--format", help="output form")] = "markdown",
    out: Annotated[Path | None, typer.Option(
        metavar="PATH",
        help="html: the file to write (a folder: DB.html in it) instead of printing the page; "
             "markdown, json: a folder that also gets the .md, .json and .html")] = None,
    lang: Annotated[Lang, typer.Option(
        "--lang", help="the HTML document's language (Markdown and JSON are English)")] = "ja",
) -> int:
    """Rebuild a drill report from its SQLite record alone.

    Exit 2 when the record or --event is not there.
    """
    if not db.exists():
        raise InputError(str(db), [say("record.missing")])
    if output == "html" and out is not None and out.is_dir():
        out = out / f"{db.stem + (f'-{event}' if event else '')}.html"
    print(asyncio.run(_rebuild(db, event, output, out, lang)))
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
        raise InputError(str(db), [say("record.missing")])
    settings = settings_and_logging(quiet=True, broker_url=broker, log_level=log_level,
                                    mqtt_ca_file=ca_file)
    count = asyncio.run(replay(db, event, url=broker_url_of(settings), speed=speed,
                               ca_file=settings.mqtt_ca_file))
    print(say("replay.done", count=count, event=event))
    return EXIT_OK
