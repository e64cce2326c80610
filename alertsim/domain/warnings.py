"""Which prefectures must take shelter, and why: `decide(detection, atlas, policy=, now=)`.

Rule (jalert.md): a prefecture is warned when its territory (land plus the 12-nautical-
mile territorial sea) intersects the uncertainty corridor. An impact inside the EEZ but
outside every territory warns nobody. The reason is `impact_area` when the territory meets
the part of the corridor within along_track_km of the predicted impact, else `overflight`;
the window is when the corridor pieces touching the territory are flown.

Policies are named rules applied to those direct hits:
- `prefecture` (the 2018 rule, the default): the direct hits only.
- `prefecture+adjacent` (the 2023 rule): also every land neighbour of a direct hit,
  with reason `adjacent`, `via` naming the hits it borders and their combined window.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Literal

import numpy as np
from pydantic import AwareDatetime

from alertsim.domain.detection import Detection, ObjectKind, Outcome
from alertsim.domain.model import JST, Frozen, JisCode, Latitude
from alertsim.domain.prefectures import Atlas, Prefecture
from alertsim.domain.seas import SeaArea, sea_area_at
from alertsim.domain.trajectory import Corridor, Trajectory, corridor_of, trajectory_of

PolicyName = Literal["prefecture", "prefecture+adjacent"]
DEFAULT_POLICY: PolicyName = "prefecture"
Reason = Literal["overflight", "impact_area", "adjacent"]
ImpactClass = Literal["land", "territorial_sea", "eez", "outside"]


class Window(Frozen):
    start: AwareDatetime
    end: AwareDatetime


class WarnedPrefecture(Frozen):
    code: JisCode
    iso: str
    name_ja: str
    name_en: str
    reason: Reason
    window: Window
    via: tuple[JisCode, ...] = ()


class Sea(Frozen):
    key: str
    name_ja: str
    name_en: str


class Impact(Frozen):
    classification: ImpactClass
    lat: Latitude
    lon: float  # may be unwrapped past 180 for a track across the antimeridian
    time: AwareDatetime
    prefecture: JisCode | None = None
    prefecture_ja: str | None = None
    prefecture_en: str | None = None
    sea: Sea | None = None


class Decision(Frozen):
    event_id: str
    sequence: int
    object: ObjectKind
    outcome: Outcome | None
    policy: PolicyName
    decided_at: AwareDatetime
    launch_time: AwareDatetime
    range_km: float
    flight_time_s: float
    shelter: tuple[JisCode, ...]
    prefectures: tuple[WarnedPrefecture, ...]
    impact: Impact

    def warned(self, code: str) -> WarnedPrefecture | None:
        return next((p for p in self.prefectures if p.code == code), None)


def _jst(moment: datetime) -> datetime:
    """JST, rounded to the second: alerts are read by people, and output must be stable."""
    return (moment + timedelta(microseconds=500_000)).replace(microsecond=0).astimezone(JST)


def _warned(pref: Prefecture, reason: Reason, start: datetime, end: datetime,
            via: tuple[str, ...] = ()) -> WarnedPrefecture:
    # model_construct: every value here comes from the atlas and our own arithmetic, so
    # validation would only cost time (tens of prefectures per decision at worst).
    return WarnedPrefecture.model_construct(
        code=pref.code, iso=pref.iso, name_ja=pref.name_ja, name_en=pref.name_en,
        reason=reason, window=Window.model_construct(start=_jst(start), end=_jst(end)),
        via=via)


def _first_hits(corridor: Corridor, atlas: Atlas) -> dict[int, tuple[int, int]]:
    """Per prefecture index, the first and last corridor piece touching its territory.

    Envelopes give candidate (piece, territory part) pairs in one vectorised query. Per
    prefecture, exact tests then run from the launch end until the first hit and from
    the far end until the last: a window needs only those two, so a long corridor over
    many prefectures costs a few exact tests each instead of every candidate pair.
    """
    piece_idx, part_idx, owners = atlas.territory_candidates(corridor.pieces)
    if len(piece_idx) == 0:
        return {}
    order = np.lexsort((piece_idx, owners))
    piece_idx, part_idx, owners = piece_idx[order], part_idx[order], owners[order]
    cuts = np.flatnonzero(np.diff(owners)) + 1
    spans: dict[int, tuple[int, int]] = {}
    for lo, hi in zip(np.concatenate([[0], cuts]), np.concatenate([cuts, [len(owners)]]),
                      strict=True):
        first = next((int(piece_idx[k]) for k in range(lo, hi)
                      if atlas.part_touches(int(part_idx[k]), corridor.pieces[piece_idx[k]])),
                     None)
        if first is None:
            continue
        last = next((int(piece_idx[k]) for k in range(hi - 1, lo - 1, -1)
                     if piece_idx[k] <= first
                     or atlas.part_touches(int(part_idx[k]), corridor.pieces[piece_idx[k]])),
                    first)
        spans[int(owners[lo])] = (first, max(first, last))
    return spans


def direct_hits(trajectory: Trajectory, corridor: Corridor, atlas: Atlas,
                along_track_km: float) -> list[WarnedPrefecture]:
    """Prefectures whose territory the corridor touches, with reason and window."""
    impact_zone_from_km = trajectory.range_km - along_track_km
    hits: list[WarnedPrefecture] = []
    for owner, (first, last) in sorted(_first_hits(corridor, atlas).items()):
        near_impact = bool(corridor.end_distances_km[last] >= impact_zone_from_km)
        start = trajectory.launch_time + timedelta(seconds=float(corridor.starts_s[first]))
        end = trajectory.launch_time + timedelta(seconds=float(corridor.ends_s[last]))
        hits.append(_warned(atlas.prefectures[owner],
                            "impact_area" if near_impact else "overflight", start, end))
    return hits


def _adjacent(hits: list[WarnedPrefecture], atlas: Atlas) -> list[WarnedPrefecture]:
    direct = {h.code: h for h in hits}
    added: list[WarnedPrefecture] = []
    for pref in atlas.prefectures:
        if pref.code in direct:
            continue
        via = tuple(sorted(code for code in pref.neighbours if code in direct))
        if via:
            start = min(direct[c].window.start for c in via)
            end = max(direct[c].window.end for c in via)
            added.append(_warned(pref, "adjacent", start, end, via))
    return hits + added


POLICIES: Mapping[PolicyName, Callable[[list[WarnedPrefecture], Atlas], list[WarnedPrefecture]]] = {
    "prefecture": lambda hits, _atlas: hits,
    "prefecture+adjacent": _adjacent,
}


def classify_impact(trajectory: Trajectory, atlas: Atlas) -> Impact:
    """Where the predicted impact falls: on land, in the territorial sea, the EEZ, outside."""
    lon, lat = trajectory.impact_lon, trajectory.impact_lat
    time = _jst(trajectory.impact_time)
    on_land = atlas.land_at(lon, lat)
    if on_land is not None:
        return Impact(classification="land", lat=lat, lon=lon, time=time,
                      prefecture=on_land.code, prefecture_ja=on_land.name_ja,
                      prefecture_en=on_land.name_en)
    sea = _sea(sea_area_at(lon, lat))
    territories = atlas.territory_at(lon, lat)
    if territories:
        nearest = atlas.nearest_land(lon, lat, territories)
        return Impact(classification="territorial_sea", lat=lat, lon=lon, time=time,
                      prefecture=nearest.code, prefecture_ja=nearest.name_ja,
                      prefecture_en=nearest.name_en, sea=sea)
    classification: ImpactClass = "eez" if atlas.in_eez(lon, lat) else "outside"
    return Impact(classification=classification, lat=lat, lon=lon, time=time, sea=sea)


def _sea(area: SeaArea) -> Sea:
    return Sea(key=area.key, name_ja=area.name_ja, name_en=area.name_en)


def decide(detection: Detection, atlas: Atlas, *, policy: PolicyName = DEFAULT_POLICY,
           now: datetime) -> Decision:
    """The shelter decision for one detection update. Pure: same input, same output."""
    trajectory = trajectory_of(detection)
    corridor = corridor_of(trajectory, detection.uncertainty.cross_track_km,
                           detection.uncertainty.along_track_km)
    hits = direct_hits(trajectory, corridor, atlas, detection.uncertainty.along_track_km)
    warned = sorted(POLICIES[policy](hits, atlas), key=lambda w: w.code)
    return Decision(
        event_id=detection.event_id,
        sequence=detection.sequence,
        object=detection.object,
        outcome=detection.outcome,
        policy=policy,
        decided_at=_jst(now),
        launch_time=_jst(detection.launch.time),
        range_km=round(trajectory.range_km, 1),
        flight_time_s=trajectory.flight_s,
        shelter=tuple(w.code for w in warned),
        prefectures=tuple(warned),
        impact=classify_impact(trajectory, atlas),
    )
