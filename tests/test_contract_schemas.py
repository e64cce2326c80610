"""The committed JSON Schemas match the models, and valid documents satisfy them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from alertsim.cli.decide import schema_of

DOCS = Path(__file__).resolve().parent.parent / "docs"


@pytest.mark.parametrize("name", ["detection", "decision"])
def test_committed_schema_is_current(name: str) -> None:
    """docs/NAME.schema.json equals what `alertsim schema NAME` prints now."""
    committed = json.loads((DOCS / f"{name}.schema.json").read_text("utf-8"))
    assert committed == schema_of(name), f"run: alertsim schema {name} > docs/{name}.schema.json"


def test_detection_schema_names_the_contract_fields() -> None:
    """The detection schema requires the v1 fields and offers both prediction forms."""
    schema = schema_of("detection")
    assert set(schema["required"]) == {  # type: ignore[arg-type]
        "event_id", "sequence", "observed_at", "object", "launch", "predicted", "uncertainty"}
    text = json.dumps(schema)
    assert "PredictedImpact" in text
    assert "PredictedBearing" in text
