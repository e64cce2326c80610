"""A draft as a scenario document: the detections it implies, in timeline order, and the
scenario file's content (`scenario_document`), validated by the scenario loader's own
model (`scenario_of`). Pure: data in, data out."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from pydantic import ValidationError

from alertsim.builder.draft import Aim, Draft
from alertsim.builder.sites import site
from alertsim.domain.detection import GEOD, MAX_FLIGHT, Uncertainty
from alertsim.domain.model import JST
from alertsim.drills.scenario import Scenario
from alertsim.errors import InputError, describe_validation_error, dotted

__all__ = ["Document", "aim_of", "estimated_flight_s", "impact_time", "offset_text",
           "scenario_document", "scenario_of", "timeline"]

Document = dict[str, Any]
DIGITS = 4  # degrees kept: about 10 m, so what the page shows is what the file says
SOURCE = "alertsim builder: a synthetic scenario"
ENTRY_TAGS = frozenset({"detection-entry", "action-entry"})  # the timeline union's tags


def offset_text(seconds: float) -> str:
    """180 -> '00:03:00'; 90.5 -> '00:01:30.5' (the scenario's offset form)."""
    whole, fraction = divmod(seconds, 1.0)
    minutes, secs = divmod(int(whole), 60)
    hours, minutes = divmod(minutes, 60)
    tail = f"{fraction:.3f}".rstrip("0").rstrip(".")[1:] if fraction else ""
    return f"{hours:02d}:{minutes:02d}:{secs:02d}{tail}"


def aim_of(draft: Draft, aim: Aim) -> tuple[float, float, float, float]:
    """(target lat, target lon, azimuth in degrees from north, range in km) of an aim."""
    lat, lon = draft.launch.lat, draft.launch.lon
    if aim.target is not None:
        azimuth, _, metres = GEOD.inv(lon, lat, aim.target.lon, aim.target.lat)
        return aim.target.lat, aim.target.lon, float(azimuth) % 360.0, metres / 1000.0
    assert aim.azimuth_deg is not None  # Aim checks both are given
    assert aim.range_km is not None
    end_lon, end_lat, _ = GEOD.fwd(lon, lat, aim.azimuth_deg, aim.range_km * 1000.0)
    return float(end_lat), float(end_lon), aim.azimuth_deg, aim.range_km


def estimated_flight_s(range_km: float) -> float:
    """A rough minimum-energy flight time: 4.5 min plus 0.21 s per km (2,700 km: 14 min,
    as 2017-08-29; 4,600 km: 20.6 min, about 2022-10-04's 22), within the 4-hour limit."""
    return min(270.0 + 0.21 * range_km, MAX_FLIGHT.total_seconds())


def impact_time(draft: Draft) -> datetime:
    """When the draft's launch falls: its flight time, or the estimate for its first aim."""
    if draft.flight_min is not None:
        seconds = draft.flight_min * 60.0
    else:
        seconds = round(estimated_flight_s(aim_of(draft, draft.aim)[3]))
    return draft.launch.time + timedelta(seconds=seconds)


def _predicted(draft: Draft, aim: Aim) -> Document:
    falls = _time_text(impact_time(draft))
    if aim.target is None:
        return {"azimuth_deg": aim.azimuth_deg, "range_km": aim.range_km, "impact_time": falls}
    point = {"lat": round(aim.target.lat, DIGITS), "lon": round(aim.target.lon, DIGITS)}
    return {"impact": point, "impact_time": falls}


def _time_text(moment: datetime) -> str:
    return moment.astimezone(JST).isoformat()


def _detection(draft: Draft, sequence: int, at: float, aim: Aim,
               uncertainty: Uncertainty, outcome: str | None) -> Document:
    launch = draft.launch
    doc: Document = {
        "event_id": draft.event_id, "sequence": sequence,
        "observed_at": _time_text(launch.time + timedelta(seconds=at)),
        "object": draft.object,
        "launch": {"lat": round(launch.lat, DIGITS), "lon": round(launch.lon, DIGITS),
                   "time": _time_text(launch.time)},
        "predicted": _predicted(draft, aim),
        "uncertainty": uncertainty.model_dump()}
    if outcome is not None:
        doc["outcome"] = outcome
    return doc


def timeline(draft: Draft) -> list[Document]:
    """The timeline entries in order of offset: detections (numbered in that order) before
    actions at the same offset."""
    updates = sorted(draft.updates, key=lambda u: u.at)
    entries: list[tuple[float, int, Document]] = [(draft.detect_at, 0, {
        "at": offset_text(draft.detect_at),
        "detection": _detection(draft, 1, draft.detect_at, draft.aim, draft.uncertainty, None)})]
    for sequence, update in enumerate(updates, start=2):
        detection = _detection(draft, sequence, update.at, update.aim or draft.aim,
                               update.uncertainty or draft.uncertainty, update.outcome)
        entries.append((update.at, 0, {"at": offset_text(update.at), "detection": detection}))
    entries += [(a.at, 1, {"at": offset_text(a.at), "action": a.action,
                           "event_id": draft.event_id}) for a in draft.actions]
    return [doc for _, _, doc in sorted(entries, key=lambda e: (e[0], e[1]))]


def _sources(draft: Draft) -> list[str]:
    chosen = site(draft.site) if draft.site else None
    where = (f"launch site {chosen.name_en} {chosen.lat:.3f}N {chosen.lon:.3f}E "
             f"({chosen.source})" if chosen else
             f"launch point {draft.launch.lat:.3f}N {draft.launch.lon:.3f}E, chosen on the map")
    return [f"{SOURCE}; {where}"]


def scenario_document(draft: Draft, expect: Document) -> Document:
    """The scenario file's content for the draft, with `expect` as its expectations."""
    notes = (draft.notes.strip() + "\n\n" if draft.notes.strip() else "") + (
        "Made with alertsim builder. The expectations are what alertsim's decision rules "
        "and published flow give for this timeline under the scenario's policy (the "
        "builder's preview), i.e. what J-Alert would do as alertsim models it.")
    start = draft.launch.time.astimezone(JST)
    return {
        "title": draft.title, "kind": "synthetic", "date": start.date().isoformat(),
        "sources": _sources(draft), "notes": notes, "policy": draft.policy,
        "status": draft.status, "start": start.isoformat(), "timeline": timeline(draft),
        "expect": expect}


def scenario_of(document: Document) -> Scenario:
    """The document as the scenario loader's model; InputError naming the field."""
    try:
        return Scenario.model_validate(document)
    except ValidationError as exc:
        problems = describe_validation_error(
            exc, 10, locate=lambda loc, _err: "scenario." + dotted(
                tuple(part for part in loc if part not in ENTRY_TAGS)))
        raise InputError("scenario", problems) from exc
