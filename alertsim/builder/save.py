"""Write a previewed scenario where `alertsim drill` will read it: the file is checked by
the scenario loader itself (`load_scenario`) before it takes its name."""

from __future__ import annotations

import re
from pathlib import Path

from alertsim.builder.preview import Preview
from alertsim.drills.scenario import load_scenario
from alertsim.errors import InputError, ScenarioError

__all__ = ["file_name", "save_scenario"]

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,80}$")


def file_name(name: str) -> str:
    """A plain file name ending in .yaml; InputError for a path or odd characters."""
    if not _NAME.fullmatch(name):
        raise InputError("name", ["a file name of A-Z a-z 0-9 . _ - (up to 81 characters), "
                                  "no folders"])
    return name if name.endswith((".yaml", ".yml")) else f"{name}.yaml"


def save_scenario(preview: Preview, folder: Path, name: str) -> Path:
    """Write the scenario as `folder/name` (replacing a file of that name) once the loader
    accepts it; ScenarioError (and nothing written) when it does not."""
    target = folder / file_name(name)
    folder.mkdir(parents=True, exist_ok=True)
    trial = folder / f".{target.name}.checking"
    trial.write_text(preview.yaml(), encoding="utf-8")
    try:
        load_scenario(trial)
    except ScenarioError:
        trial.unlink()
        raise
    trial.replace(target)
    return target
