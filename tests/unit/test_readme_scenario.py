"""The README's scenario example is a valid scenario: extracted from README.md, loaded by the
scenario loader and played on the virtual clock (`drill --dry-run`), it meets its own
expectations; and docs/scenarios.md names every scenario field."""

from __future__ import annotations

import io
import re
from pathlib import Path

from pydantic import BaseModel

from alertsim.domain.detection import PredictedBearing, PredictedImpact
from alertsim.drills.dry_run import dry_run
from alertsim.drills.scenario import (
    ActionEntry,
    DetectionEntry,
    Expectations,
    Scenario,
    load_scenario,
)

ROOT = Path(__file__).resolve().parents[2]


def readme_scenario() -> str:
    """The one ```yaml block of the README's scenario section."""
    readme = (ROOT / "README.md").read_text("utf-8")
    section = readme.split("\n## A scenario", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```yaml\n(.*?)```", section, re.DOTALL)
    assert len(blocks) == 1, "the scenario section should hold exactly one YAML example"
    return str(blocks[0])


def test_readme_example_is_a_valid_scenario_that_meets_its_expectations(
        tmp_path: Path) -> None:
    path = tmp_path / "readme.yaml"
    path.write_text(readme_scenario(), "utf-8")
    scenario = load_scenario(path)  # raises ScenarioError naming line and field if not
    assert scenario.event_ids() == ("2023-11-21-sohae",)
    assert [type(e).__name__ for e in scenario.timeline] == [
        "DetectionEntry", "DetectionEntry", "ActionEntry"]
    out = io.StringIO()
    assert dry_run(path, out=out), out.getvalue()
    assert "47: sent shelter, passed (as expected)" in out.getvalue()


def field_names(model: type[BaseModel], prefix: str = "") -> set[str]:
    """Every field of `model` as a dotted path, nested models included."""
    names: set[str] = set()
    for name, info in model.model_fields.items():
        names.add(f"{prefix}{name}")
        nested = info.annotation
        if isinstance(nested, type) and issubclass(nested, BaseModel):
            names |= field_names(nested, f"{prefix}{name}.")
    return names


def test_docs_name_every_scenario_field() -> None:
    """docs/scenarios.md has a `name` entry for each field of every scenario model."""
    docs = (ROOT / "docs" / "scenarios.md").read_text("utf-8")
    documented = set(re.findall(r"^\| `([\w.\[\]]+)`", docs, re.MULTILINE))
    wanted = (field_names(Scenario) | {f"expect.{n}" for n in field_names(Expectations)}
              | {f"timeline[].{n}" for n in field_names(DetectionEntry)}
              | {f"timeline[].{n}" for n in field_names(ActionEntry)}
              # `predicted` is one of two shapes (a union, which field_names does not open)
              | field_names(PredictedImpact, "timeline[].detection.predicted.")
              | field_names(PredictedBearing, "timeline[].detection.predicted."))
    assert wanted - documented == set(), "fields missing from docs/scenarios.md"
    assert documented - wanted == set(), "docs/scenarios.md names fields that do not exist"


def test_docs_minimal_scenario_meets_its_expectations(tmp_path: Path) -> None:
    """The example at the end of docs/scenarios.md is valid and plays as it says."""
    docs = (ROOT / "docs" / "scenarios.md").read_text("utf-8")
    (block,) = re.findall(r"```yaml\n(.*?)```", docs, re.DOTALL)
    path = tmp_path / "minimal.yaml"
    path.write_text(block, "utf-8")
    out = io.StringIO()
    assert dry_run(path, out=out), out.getvalue()
    assert "01: sent shelter, cancel (as expected)" in out.getvalue()
