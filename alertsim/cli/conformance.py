"""`alertsim conformance`: check a client against alertsim's topics, with a pass/fail table."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from alertsim.cli.messages import say
from alertsim.cli.options import (
    EXIT_FAILED,
    EXIT_OK,
    BrokerOption,
    CaFileOption,
    QuietLogLevelOption,
    TopicRootOption,
    positive_number,
    prefecture,
)
from alertsim.cli.settings import broker_url_of, settings_and_logging
from alertsim.errors import InputError

if TYPE_CHECKING:
    from alertsim.conformance.judge import ConformanceReport

__all__ = ["conformance_command", "render_table"]

_CLIENT_ID = r"^[A-Za-z0-9._-]{1,64}$"


def render_table(report: ConformanceReport) -> str:
    """The checks as a plain text table: check, verdict, reason."""
    width = max(len(c.check) for c in report.checks)
    lines = [f"conformance of {report.client_id} (prefecture {report.prefecture}, "
             f"{report.topic_root}/test/, run {report.run})",
             f"{'check':<{width}}  verdict  reason"]
    lines += [f"{c.check:<{width}}  {c.verdict.upper():<7}  {c.reason}" for c in report.checks]
    failed = sum(c.verdict != "pass" for c in report.checks)
    lines.append("all checks passed" if report.passed else
                 f"{failed} of {len(report.checks)} checks did not pass")
    return "\n".join(lines)


def conformance_command(
    client_id: Annotated[str, typer.Option(
        metavar="ID", help="the client under test: its receipts/ID and control topic")],
    code: Annotated[str, typer.Option(
        "--prefecture", parser=prefecture, metavar="CODE",
        help="JIS code the client listens to")] = "13",
    broker: BrokerOption = None,
    topic_root: TopicRootOption = None,
    json_out: Annotated[Path | None, typer.Option(
        "--json", metavar="FILE", help="also write the table as JSON")] = None,
    timeout: Annotated[float, typer.Option(
        parser=positive_number, metavar="S",
        help="seconds to wait for each step's receipts")] = 10.0,
    signing_key: Annotated[Path | None, typer.Option(
        metavar="FILE", help="sign alerts and state with this key (for a client with "
                             "--trust)")] = None,
    log_level: QuietLogLevelOption = None,
    ca_file: CaFileOption = None,
) -> int:
    """Play a scripted sequence on the test tree to one client and judge its receipts.

    Exit 0 only when every check passes.
    """
    import re

    from alertsim.conformance.runner import ConformanceOptions, run_conformance
    from alertsim.domain.topics import TopicTree

    if not re.match(_CLIENT_ID, client_id):
        raise InputError("--client-id", [say("option.client_id", got=repr(client_id))])
    settings = settings_and_logging(quiet=True, broker_url=broker, topic_root=topic_root,
                                    log_level=log_level, mqtt_ca_file=ca_file)
    signer = None
    if signing_key is not None:
        from alertsim.signing import load_signing_key

        signer = load_signing_key(signing_key)
    report = asyncio.run(run_conformance(ConformanceOptions(
        url=broker_url_of(settings), client_id=client_id, code=code,
        tree=TopicTree(settings.topic_root), timeout_s=timeout,
        ca_file=settings.mqtt_ca_file, signer=signer)))
    print(render_table(report), flush=True)
    if json_out is not None:
        json_out.write_text(report.model_dump_json(indent=2) + "\n", "utf-8")
    return EXIT_OK if report.passed else EXIT_FAILED
