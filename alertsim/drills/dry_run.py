"""`alertsim drill --dry-run`: a scenario on a virtual clock, no broker, and the service
configuration a scenario runs under (live and dry alike, so the two cannot drift).

The dry run feeds the timeline through the pure engine with the service's admission rules
(`domain.timeline.simulate`), up to the scenario's last entry as the live drill plays it,
prints every alert and every refusal, and checks the expectations.
"""

from __future__ import annotations

import sys
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any, TextIO

from alertsim.data import load_atlas
from alertsim.domain.timeline import Note, Sent, simulate
from alertsim.domain.topics import TopicTree
from alertsim.drills.report.against_record import hold_against, record_failures
from alertsim.drills.report.refusals import refusals_text
from alertsim.drills.report.render import expectation_lines
from alertsim.drills.scenario import Scenario, load_scenario
from alertsim.service.config import ServiceConfig
from alertsim.service.outgoing import alert_message
from alertsim.service.records import OutboxRow

__all__ = ["dry_run", "service_config"]


def dry_run(scenario_path: Path, out: TextIO | None = None) -> bool:
    """Play the scenario on a virtual clock with no broker; print what it sends and
    refuses, check the expectations and, with a `record`, hold it against J-Alert's."""
    out = out or sys.stdout
    scenario = load_scenario(scenario_path)
    engine = service_config(scenario).engine(load_atlas())
    print(f"dry run of {scenario_path}: {scenario.title}", file=out)
    notes: list[Note] = []
    inputs = scenario.timeline_inputs()
    sent = list(simulate(inputs, engine, nonce="dryrun", notes=notes, until=inputs[-1][0]))
    lines = [(s.at, f"{s.alert.prefecture or 'national':>8} {s.alert.stage:<9} "
                    f"{s.alert.msgType:<6} {s.alert.info[0].headline}") for s in sent]
    lines += [(n.at, f"refused  {n.reason}") for n in notes]
    for at, line in sorted(lines, key=lambda item: item[0]):
        print(f"  {at:%H:%M:%S} {line}", file=out)
    got: dict[str, list[str]] = {}
    for s in sent:
        got.setdefault(s.alert.prefecture or "national", []).append(s.alert.stage)
    national = bool(got.pop("national", None))
    expected = {code: list(stages) for code, stages in scenario.expect.prefectures.items()}
    ok = (got == expected and national == scenario.expect.national
          and len(notes) == scenario.expect.refused)
    print(f"expectations: {'met' if ok else 'NOT met'}", file=out)
    if len(notes) != scenario.expect.refused:
        print(f"  {refusals_text(len(notes), scenario.expect.refused)}", file=out)
    for line in expectation_lines(scenario.expect, got, national):
        print(line, file=out)
    return _against_record(scenario, sent, out) and ok


def _against_record(scenario: Scenario, sent: list[Sent], out: TextIO) -> bool:
    """With a `record`, print and judge the dry run against it; True without one."""
    if scenario.record is None:
        return True
    rows = [OutboxRow(**vars(alert_message(s.alert, TopicTree(), scenario.status, s.at)))
            for s in sent]
    comparison = hold_against(scenario.record, rows)
    print(f"record: {'matched' if comparison.matched else 'NOT matched'} (the areas and "
          f"stage times of J-Alert, tolerance {comparison.tolerance_s:g} s)", file=out)
    for line in record_failures(comparison):
        print(f"  {line}", file=out)
    return comparison.matched


def service_config(scenario: Scenario, **more: Any) -> ServiceConfig:
    """The service configuration a scenario runs under, live and dry alike."""
    config = ServiceConfig(status=scenario.status, policy=scenario.resolved_policy(),
                           national_info=scenario.national_info, **more)
    if scenario.confirm_after is not None:
        config = replace(config, confirm_after=timedelta(seconds=scenario.confirm_after))
    return config
