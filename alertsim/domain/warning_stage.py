"""The warning stage of the flow: who is told to shelter, and who is told more.

On every update without an outcome: the launch message (shelter) to newly warned
prefectures, never after the fact; cancel to prefectures no longer warned (unless the
update confirms a passage, which closes them with `passed` instead); evacuate-now around
a predicted fall in Japan, never after it; and, opt-in, alertsim's own national message
when nobody is warned (docs/jalert.md, "The published flow"; the whole flow:
domain/lifecycle.py).
"""

from __future__ import annotations

from alertsim.domain import texts
from alertsim.domain.closing_stage import confirms_passage
from alertsim.domain.detection import Detection
from alertsim.domain.draft import Draft
from alertsim.domain.event_state import PlaceState
from alertsim.domain.warnings import Decision, WarnedPrefecture


def warn(draft: Draft, decision: Decision, detection: Detection, *, national: bool) -> None:
    """Apply the warning rules to one update, in order: cancel, shelter, evacuate-now,
    national (`national`: whether the era or drill sends the national message)."""
    warned = {w.code: w for w in decision.prefectures}
    seq = f"sequence {detection.sequence}"
    if detection.outcome is None and not _confirms_flyover(draft, decision, detection):
        _cancel_no_longer_warned(draft, warned)
    for _, w in sorted(warned.items()):
        _shelter_newly_warned(draft, w, seq)
    if decision.course == "falls_in_japan" and detection.outcome is None:
        _evacuate_now_around_fall(draft, decision, warned, seq)
    if national and not warned:
        _national_when_nobody_warned(draft, decision)


def _confirms_flyover(draft: Draft, decision: Decision, detection: Detection) -> bool:
    """The update confirms an overflight: places it no longer names get `passed`, not cancel."""
    return decision.course == "flies_over" and confirms_passage(draft, detection)


def _cancel_no_longer_warned(draft: Draft, warned: dict[str, WarnedPrefecture]) -> None:
    """Cancel where the call to shelter stands but the update no longer warns (a narrowing);
    the text names the place unless nobody is warned any more."""
    for place in draft.sheltering():
        if place.code not in warned:
            body = texts.cancel(place.name_ja, place.name_en) if warned else texts.cancel()
            draft.emit("cancel", place, body)


def _shelter_newly_warned(draft: Draft, w: WarnedPrefecture, seq: str) -> None:
    """Shelter for a newly warned place whose window is still ahead; a place still
    sheltering takes the new window; a closed place or a window already over gets nothing."""
    known = draft.places.get(w.code)
    if known is not None and known.status == "sheltering":
        draft.places[w.code] = known.model_copy(update={
            "reason": w.reason, "window_end": w.window.end, "window_start": w.window.start})
    elif known is not None:
        draft.withhold(w.code, f"{seq}: {w.name_en} already had its closing message "
                               f"({known.stages[-1]}); nothing more is sent there")
    elif w.window.end <= draft.now:
        draft.withhold(w.code, f"{seq}: {w.name_en}'s window ended at "
                               f"{texts.hm_en(w.window.end)}, before {texts.hm_en(draft.now)}: "
                               "no shelter call after the fact")
    else:
        draft.emit("shelter", _place(w), texts.shelter())


def _place(w: WarnedPrefecture) -> PlaceState:
    return PlaceState(code=w.code, name_ja=w.name_ja, name_en=w.name_en, reason=w.reason,
                      window_start=w.window.start, window_end=w.window.end,
                      status="sheltering")


def _evacuate_now_around_fall(draft: Draft, decision: Decision,
                              warned: dict[str, WarnedPrefecture], seq: str) -> None:
    """Evacuate-now, once, to the places sheltering around a predicted fall in Japan (the
    impact area and the prefecture of the fall); never once the predicted fall is past."""
    impact = decision.impact
    around = {c for c, w in warned.items() if w.reason == "impact_area"}
    around |= {impact.prefecture} if impact.prefecture else set()
    for place in draft.sheltering():
        if place.code not in around or "imminent" in place.stages:
            continue
        if draft.now >= impact.time:
            draft.withhold(place.code, f"{seq}: the predicted fall at "
                                       f"{texts.hm_en(impact.time)} is past: no evacuate-now "
                                       "message")
            continue
        draft.emit("imminent", place, texts.imminent(
            impact.time, impact.prefecture_ja or place.name_ja,
            impact.prefecture_en or place.name_en))


def _national_when_nobody_warned(draft: Draft, decision: Decision) -> None:
    """alertsim's national message (opt-in), once, for an event that warned nobody and
    falls in a named sea."""
    impact = decision.impact
    if draft.state.places or draft.state.national or impact.sea is None:
        return
    draft.emit("national", None, texts.national(impact.time, impact.sea.name_ja,
                                                impact.sea.name_en,
                                                impact.classification == "eez"))
