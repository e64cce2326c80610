"""What a draft would do, before it is saved: each detection's decision (the corridor's
warned prefectures and their windows, `domain.warnings.decide`) and every message each
prefecture would get, played as `alertsim drill --dry-run` plays the saved file (the
drill's service configuration, `domain.timeline.simulate`, up to the last entry).

The expectations of the saved scenario are that play's result, so the file states what
J-Alert would do under its policy as alertsim models it, and its dry run meets them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import yaml
from pydantic import ValidationError

from alertsim.builder.compose import (
    Document,
    aim_of,
    impact_time,
    offset_text,
    scenario_document,
    scenario_of,
)
from alertsim.builder.draft import Draft
from alertsim.domain.detection import Detection
from alertsim.domain.model import JST
from alertsim.domain.prefectures import Atlas
from alertsim.domain.timeline import Note, Sent, simulate
from alertsim.domain.warnings import Decision, WarnedPrefecture, decide
from alertsim.drills.dry_run import service_config
from alertsim.drills.scenario import DetectionEntry, Scenario
from alertsim.errors import InputError, describe_validation_error

__all__ = ["Preview", "draft_of", "preview"]

OPEN_STAGES = frozenset({"shelter", "imminent"})  # a prefecture still told to shelter


def draft_of(body: object) -> Draft:
    """The page's JSON as a Draft; InputError listing each problem by field."""
    try:
        return Draft.model_validate(body)
    except ValidationError as exc:
        raise InputError("draft", describe_validation_error(exc, 10)) from exc


@dataclass(frozen=True)
class Preview:
    """A draft played: its scenario, detections with their decisions, and what was sent
    and refused."""

    draft: Draft
    scenario: Scenario
    document: Document
    decisions: tuple[tuple[DetectionEntry, Decision], ...]
    sent: tuple[Sent, ...]
    notes: tuple[Note, ...]

    @property
    def detections(self) -> tuple[Detection, ...]:
        return tuple(entry.detection for entry, _ in self.decisions)

    def yaml(self) -> str:
        """The scenario file, as `alertsim drill` reads it."""
        return yaml.safe_dump(self.document, sort_keys=False, allow_unicode=True,
                              default_flow_style=None, width=100)

    def stages(self) -> dict[str, list[str]]:
        """Prefecture code -> the stages it gets, in order."""
        got: dict[str, list[str]] = {}
        for s in self.sent:
            if s.alert.prefecture is not None:
                got.setdefault(s.alert.prefecture, []).append(s.alert.stage)
        return got

    def summary(self) -> dict[str, Any]:
        """The preview as the page shows it (JSON)."""
        lat, lon, azimuth, range_km = aim_of(self.draft, self.draft.aim)
        launched = self.draft.launch.time
        return {
            "event_id": self.draft.event_id, "policy": self.scenario.resolved_policy(),
            "aim": {"lat": round(lat, 4), "lon": round(lon, 4),
                    "azimuth_deg": round(azimuth, 1), "range_km": round(range_km, 1)},
            "flight_min": round((impact_time(self.draft) - launched).total_seconds() / 60, 1),
            "detections": [_decision_json(e, d) for e, d in self.decisions],
            "prefectures": self._prefectures(),
            "refusals": [{"at": _clock(n.at), "reason": n.reason} for n in self.notes],
            "sheltering_at_end": sorted(code for code, stages in self.stages().items()
                                        if stages[-1] in OPEN_STAGES),
            "expect": self.document["expect"], "yaml": self.yaml()}

    def _prefectures(self) -> list[dict[str, Any]]:
        """Every prefecture warned or messaged: its first warning and its messages."""
        first: dict[str, WarnedPrefecture] = {}
        for _, decision in self.decisions:
            for warned in decision.prefectures:
                first.setdefault(warned.code, warned)
        messages: dict[str, list[dict[str, str]]] = {}
        for s in self.sent:
            if s.alert.prefecture is not None:
                messages.setdefault(s.alert.prefecture, []).append(_message_json(s))
        return [{**_warned_json(first[code]), "messages": messages.get(code, [])}
                for code in sorted(first)]


def _clock(moment: datetime) -> str:
    return f"{moment.astimezone(JST):%H:%M:%S}"


def _warned_json(warned: WarnedPrefecture) -> dict[str, Any]:
    return {"code": warned.code, "name_ja": warned.name_ja, "name_en": warned.name_en,
            "reason": warned.reason, "start": _clock(warned.window.start),
            "end": _clock(warned.window.end)}


def _message_json(sent: Sent) -> dict[str, str]:
    ja, en = sent.alert.info[0], sent.alert.info[1]
    return {"at": _clock(sent.at), "stage": sent.alert.stage, "msg_type": sent.alert.msgType,
            "headline_ja": ja.headline, "headline_en": en.headline}


def _decision_json(entry: DetectionEntry, decision: Decision) -> dict[str, Any]:
    impact = decision.impact
    return {"sequence": entry.detection.sequence, "at": offset_text(entry.at),
            "outcome": entry.detection.outcome, "course": decision.course,
            "range_km": round(decision.range_km, 1), "impact": impact.classification,
            "sea_ja": impact.sea.name_ja if impact.sea else "",
            "sea_en": impact.sea.name_en if impact.sea else "",
            "shelter": list(decision.shelter),
            "prefectures": [_warned_json(p) for p in decision.prefectures]}


def _play(scenario: Scenario, atlas: Atlas) -> tuple[list[Sent], list[Note]]:
    """The timeline as the dry run plays it: the drill's configuration, up to its end."""
    engine = service_config(scenario).engine(atlas)
    inputs = scenario.timeline_inputs()
    notes: list[Note] = []
    sent = list(simulate(inputs, engine, nonce="builder", notes=notes, until=inputs[-1][0]))
    return sent, notes


def preview(draft: Draft, atlas: Atlas) -> Preview:
    """Play the draft; its expectations are what the play sends and refuses."""
    trial = scenario_of(scenario_document(draft, {"silent": []}))
    sent, notes = _play(trial, atlas)
    got: dict[str, list[str]] = {}
    for s in sent:
        code = s.alert.prefecture or "national"  # never national: national_info is off
        got.setdefault(code, []).append(s.alert.stage)
    expect = {"prefectures": got, "silent": "others", "refused": len(notes)}
    document = scenario_document(draft, expect)
    scenario = scenario_of(document)
    policy = scenario.resolved_policy()
    decisions = tuple((e, decide(e.detection, atlas, policy=policy, now=scenario.time_of(e)))
                      for e in scenario.detections())
    return Preview(draft, scenario, document, decisions, tuple(sent), tuple(notes))
