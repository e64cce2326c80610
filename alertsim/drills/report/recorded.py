"""A drill row with its recorded settings, parsed: what the report reads about a drill."""

from __future__ import annotations

import json
from dataclasses import dataclass

from pydantic import ValidationError

from alertsim.adapters.sqlite.rows import DrillRow
from alertsim.drills.report.model import NATIONAL, DrillSettings, FaultApplied, ScenarioInfo
from alertsim.drills.scenario import AS_RECORDED
from alertsim.errors import InputError, describe_validation_error

__all__ = ["RecordedDrill"]


def _rooted(line: str) -> str:
    """A validation problem line with its field path rooted at `settings`."""
    if line.startswith("(document)"):
        return "settings" + line.removeprefix("(document)")
    return line if line.startswith("... ") else f"settings.{line}"


@dataclass(frozen=True)
class RecordedDrill:
    """A drill row with its settings, parsed."""

    row: DrillRow
    settings: DrillSettings

    @classmethod
    def read(cls, row: DrillRow, source: str) -> RecordedDrill:
        """Parse the row's settings; InputError naming `source` and the drill when they
        are not a DrillSettings (a record written by another version of alertsim)."""
        try:
            # As recorded: the scenario's authoring rules are not applied again, so a
            # record written before a rule existed still reports.
            settings = DrillSettings.model_validate_json(row.settings_json,
                                                         context={AS_RECORDED: True})
        except ValidationError as exc:
            problems = [f"drill {row.drill_id!r}: its recorded settings are not valid "
                        "drill settings (recorded by another version of alertsim?)"]
            problems += [_rooted(line) for line in describe_validation_error(exc)]
            raise InputError(source, problems) from exc
        return cls(row, settings)

    def subscriptions(self) -> dict[str, tuple[str, ...]]:
        """Client id -> places it listens to, with "national" added when the drill's
        receivers listened to the national topic too."""
        # The receivers' places are prefecture codes (validated), so never "national" yet.
        extra = (NATIONAL,) if self.settings.national_receivers else ()
        return {client: (*places, *extra) for client, places in self.settings.receivers.items()}

    def faults(self) -> tuple[FaultApplied, ...]:
        """The faults `drill --fault` applied, kept in the report the drill stored (they
        happen between broker and receivers, so no other row of the record has them)."""
        try:
            stored = json.loads(self.row.report_json or "null")
            found = stored.get("faults", ()) if isinstance(stored, dict) else ()
            return tuple(FaultApplied.model_validate(f) for f in found)
        except (ValueError, ValidationError):  # a report of another version: none listed
            return ()

    def scenario_info(self) -> ScenarioInfo:
        """The report's view of the recorded scenario."""
        scenario = self.settings.scenario
        return ScenarioInfo(title=scenario.title, kind=scenario.kind, date=scenario.date,
                            sources=scenario.sources, notes=scenario.notes,
                            path=self.settings.scenario_path or self.row.scenario)
