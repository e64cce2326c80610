"""Which prefectures must take shelter, and why: `decide(detection, atlas, policy=, now=)`.

Rule (jalert.md): a prefecture is warned when its territory (land plus the 12-nautical-
mile territorial sea) intersects the uncertainty corridor. An impact inside the EEZ but
outside every territory warns nobody. The reason is `impact_area` when the territory meets
the part of the corridor within along_track_km of the predicted impact, else `overflight`;
the window is when the corridor pieces touching the territory are flown.

Policies are named rules applied to those direct hits (`policies.ERAS` says which was in
force when):
- `block-2017` (the rule until 2018-01-07): also every other prefecture in a hit's
  regional block or that block's related areas (`blocks`), with reason `block`, `via`
  naming the hits that brought it in and their combined window.
- `prefecture` (the 2018 rule, the default): the direct hits only.
- `prefecture+adjacent` (the 2023 rule): also every land neighbour of a direct hit,
  with reason `adjacent`, `via` naming the hits it borders and their combined window.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

import numpy as np
from numpy.typing import NDArray
from pydantic import AwareDatetime

from alertsim.domain.blocks import warned_with
from alertsim.domain.detection import Detection, ObjectKind, Outcome
from alertsim.domain.model import JST, Frozen, Latitude, Longitude
from alertsim.domain.prefectures import Atlas, Prefecture
from alertsim.domain.seas import SeaArea, sea_area_at
from alertsim.domain.trajectory import (
    Corridor,
    Trajectory,
    corridor_of,
    trajectory_of,
    unwrap_lon,
)
from alertsim.domain.vocabulary import DEFAULT_POLICY, Policy, PrefectureCode

IntArray = NDArray[np.intp]
BoolArray = NDArray[np.bool_]

Reason = Literal["overflight", "impact_area", "adjacent", "block"]
ImpactClass = Literal["land", "territorial_sea", "eez", "outside"]
# Which of J-Alert's published cases the prediction falls in (jalert.md, "The published
# flow"): it may fall on land or in the territorial sea; it flies over Japanese territory
# and falls beyond; or it falls short, at sea, before reaching any territory.
Course = Literal["falls_in_japan", "flies_over", "falls_short"]


class Window(Frozen):
    start: AwareDatetime
    end: AwareDatetime


class WarnedPrefecture(Frozen):
    code: PrefectureCode
    iso: str
    name_ja: str
    name_en: str
    reason: Reason
    window: Window
    via: tuple[PrefectureCode, ...] = ()
    # Its territory meets the corridor before the predicted impact point: the track flies
    # over it (or falls on it), rather than only the overshoot of the impact area.
    overflown: bool = False


class Sea(Frozen):
    key: str
    name_ja: str
    name_en: str


class Impact(Frozen):
    classification: ImpactClass
    lat: Latitude
    lon: Longitude
    time: AwareDatetime
    prefecture: PrefectureCode | None = None
    prefecture_ja: str | None = None
    prefecture_en: str | None = None
    sea: Sea | None = None


class Decision(Frozen):
    event_id: str
    sequence: int
    object: ObjectKind
    outcome: Outcome | None
    policy: Policy
    decided_at: AwareDatetime
    launch_time: AwareDatetime
    range_km: float
    flight_time_s: float
    shelter: tuple[PrefectureCode, ...]
    prefectures: tuple[WarnedPrefecture, ...]
    impact: Impact
    course: Course = "falls_short"

    def warned(self, code: str) -> WarnedPrefecture | None:
        return next((p for p in self.prefectures if p.code == code), None)


@dataclass(frozen=True)
class _Hit:
    """A warned prefecture while deciding; times are seconds after launch."""

    pref: Prefecture
    reason: Reason
    start_s: float
    end_s: float
    via: tuple[str, ...] = ()
    # The corridor meets the territory before the predicted impact point (it is flown
    # over or fallen on), not only in the overshoot of the impact area beyond it.
    before_impact: bool = False


class _JstSeconds:
    """Seconds after an origin -> JST datetimes rounded to the second.

    Rounded because alerts are read by people and output must be stable. The origin is
    split once into a whole JST second and a fraction, so each window edge costs one
    timedelta instead of a rounding and a time-zone conversion.
    """

    def __init__(self, origin: datetime) -> None:
        local = origin.astimezone(JST)
        self._whole = local.replace(microsecond=0)
        self._fraction = local.microsecond / 1e6

    def at(self, seconds: float) -> datetime:
        return self._whole + timedelta(seconds=math.floor(seconds + self._fraction + 0.5))


def _jst(moment: datetime) -> datetime:
    """A single moment in JST, rounded to the second."""
    return _JstSeconds(moment).at(0.0)


def _scan(hit: Callable[[IntArray], BoolArray], cursor: IntArray, stop: IntArray,
          step: int) -> IntArray:
    """For every group at once, the first candidate from `cursor` (moving by `step`,
    before `stop`) that `hit` accepts; -1 where none does.

    Each round makes one vectorised exact test over the groups still searching, so the
    Python overhead is per round, not per test. Groups usually stop at their first
    candidate, so a decision takes a handful of rounds.
    """
    found = np.full(len(cursor), -1, dtype=np.intp)
    cursor = cursor.copy()
    active = np.flatnonzero(cursor != stop)
    while len(active):
        hits = hit(cursor[active])
        found[active[hits]] = cursor[active[hits]]
        misses = active[~hits]
        cursor[misses] += step
        active = misses[cursor[misses] != stop[misses]]
    return found


def first_and_last_hits(corridor: Corridor, atlas: Atlas) -> dict[int, tuple[int, int]]:
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
    starts = np.flatnonzero(np.diff(owners, prepend=-1))
    ends = np.append(starts[1:], len(owners))

    def touches(pairs: IntArray) -> BoolArray:
        return atlas.parts_touch(part_idx[pairs], corridor.pieces[piece_idx[pairs]])

    first = _scan(touches, starts, ends, 1)
    warned = first >= 0
    starts, ends, first = starts[warned], ends[warned], first[warned]
    # From the far end back to the first hit: the first hit itself is the fallback.
    last = _scan(touches, ends - 1, first, -1)
    last = np.where(last >= 0, last, first)
    return {int(owners[s]): (int(piece_idx[f]), int(piece_idx[lt]))
            for s, f, lt in zip(starts, first, last, strict=True)}


def direct_hits(trajectory: Trajectory, corridor: Corridor, atlas: Atlas,
                along_track_km: float) -> list[_Hit]:
    """Prefectures whose territory the corridor touches, with reason and window."""
    impact_zone_from_km = trajectory.range_km - along_track_km
    hits: list[_Hit] = []
    for owner, (first, last) in sorted(first_and_last_hits(corridor, atlas).items()):
        # Pieces break at the start of the impact area, so a piece ending there is outside
        # it; the piece reaching the impact itself is always inside (along_track_km 0).
        reach = float(corridor.end_distances_km[last])
        near_impact = reach > impact_zone_from_km or reach >= trajectory.range_km
        before_impact = float(corridor.samples.distances_km[first]) < trajectory.range_km
        hits.append(_Hit(atlas.prefectures[owner], "impact_area" if near_impact else "overflight",
                         float(corridor.starts_s[first]), float(corridor.ends_s[last]),
                         before_impact=before_impact))
    return hits


def _extended(hits: list[_Hit], atlas: Atlas, reason: Reason,
              via_of: Callable[[Prefecture, Collection[str]], tuple[str, ...]]) -> list[_Hit]:
    """The direct hits plus every other prefecture `via_of` ties to some of them, warned
    for `reason` over the window those hits span."""
    direct = {h.pref.code: h for h in hits}
    added: list[_Hit] = []
    for pref in atlas.prefectures:
        if pref.code in direct:
            continue
        via = via_of(pref, direct.keys())
        if via:
            added.append(_Hit(pref, reason, min(direct[c].start_s for c in via),
                              max(direct[c].end_s for c in via), via))
    return hits + added


def _adjacent(hits: list[_Hit], atlas: Atlas) -> list[_Hit]:
    """The 2023 rule: also every land neighbour of a direct hit."""
    return _extended(hits, atlas, "adjacent", lambda pref, direct: tuple(
        sorted(code for code in pref.neighbours if code in direct)))


def _block(hits: list[_Hit], atlas: Atlas) -> list[_Hit]:
    """The 2017 rule: also every prefecture of a direct hit's block and related areas."""
    return _extended(hits, atlas, "block", lambda pref, direct: tuple(
        sorted(code for code in direct if pref.code in warned_with(code))))


POLICY_RULES: Mapping[Policy, Callable[[list[_Hit], Atlas], list[_Hit]]] = {
    "block-2017": _block,
    "prefecture": lambda hits, _atlas: hits,
    "prefecture+adjacent": _adjacent,
}


def classify_impact(trajectory: Trajectory, atlas: Atlas) -> Impact:
    """Where the predicted impact falls: on land, in the territorial sea, the EEZ, outside."""
    # Classified at the track's longitude (Japan-centred), reported in [-180, 180).
    lon, lat = trajectory.impact_lon, trajectory.impact_lat
    time = _jst(trajectory.impact_time)
    where = {"lat": lat, "lon": unwrap_lon(lon, 0.0), "time": time}
    on_land = atlas.land_at(lon, lat)
    if on_land is not None:
        return Impact(classification="land", **where,
                      prefecture=on_land.code, prefecture_ja=on_land.name_ja,
                      prefecture_en=on_land.name_en)
    sea = _sea(sea_area_at(lon, lat))
    territories = atlas.territory_at(lon, lat)
    if territories:
        nearest = atlas.nearest_land(lon, lat, territories)
        return Impact(classification="territorial_sea", **where,
                      prefecture=nearest.code, prefecture_ja=nearest.name_ja,
                      prefecture_en=nearest.name_en, sea=sea)
    classification: ImpactClass = "eez" if atlas.in_eez(lon, lat) else "outside"
    return Impact(classification=classification, **where, sea=sea)


def course_of(impact: Impact, hits: list[_Hit]) -> Course:
    """The published case a prediction falls in (see `Course`)."""
    if impact.classification in ("land", "territorial_sea"):
        return "falls_in_japan"
    return "flies_over" if any(h.before_impact for h in hits) else "falls_short"


def _sea(area: SeaArea) -> Sea:
    return Sea(key=area.key, name_ja=area.name_ja, name_en=area.name_en)


def decide(detection: Detection, atlas: Atlas, *, policy: Policy = DEFAULT_POLICY,
           now: datetime) -> Decision:
    """The shelter decision for one detection update. Pure: same input, same output."""
    trajectory = trajectory_of(detection)
    corridor = corridor_of(trajectory, detection.uncertainty.cross_track_km,
                           detection.uncertainty.along_track_km)
    hits = direct_hits(trajectory, corridor, atlas, detection.uncertainty.along_track_km)
    warned = sorted(POLICY_RULES[policy](hits, atlas), key=lambda h: h.pref.code)
    seconds = _JstSeconds(trajectory.launch_time)
    impact = classify_impact(trajectory, atlas)
    # One validation of the whole decision: cheaper than building each part as a model.
    return Decision.model_validate({
        "event_id": detection.event_id,
        "sequence": detection.sequence,
        "object": detection.object,
        "outcome": detection.outcome,
        "policy": policy,
        "decided_at": _jst(now),
        "launch_time": _jst(detection.launch.time),
        "range_km": round(trajectory.range_km, 1),
        "flight_time_s": trajectory.flight_s,
        "shelter": [h.pref.code for h in warned],
        "prefectures": [{"code": h.pref.code, "iso": h.pref.iso, "name_ja": h.pref.name_ja,
                         "name_en": h.pref.name_en, "reason": h.reason, "via": h.via,
                         "overflown": h.before_impact,
                         "window": {"start": seconds.at(h.start_s), "end": seconds.at(h.end_s)}}
                        for h in warned],
        "impact": impact,
        "course": course_of(impact, hits),
    })
