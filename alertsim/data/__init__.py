"""Package data: prefecture geometry (ODbL 1.0, see PROVENANCE.md) and how to load it."""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any

from alertsim.domain.prefectures import Atlas


def prefectures_geojson() -> dict[str, Any]:
    text = resources.files(__package__).joinpath("prefectures.geojson").read_text("utf-8")
    doc: dict[str, Any] = json.loads(text)
    return doc


@cache
def load_atlas() -> Atlas:
    """The 47 prefectures with their indexes, parsed once per process."""
    return Atlas.from_geojson(prefectures_geojson())
