"""The closing stage of the flow: each warned prefecture's one closing message.

Which one an outcome calls for (fell on land, fell in the sea, passed, cancel), and when a
passage without an outcome counts as confirmed so that `passed` goes out
(docs/jalert.md, "The published flow"; the whole flow: domain/lifecycle.py).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from alertsim.domain import texts
from alertsim.domain.detection import Detection
from alertsim.domain.draft import Draft
from alertsim.domain.event_state import PlaceState
from alertsim.domain.vocabulary import Stage
from alertsim.domain.warnings import Decision


def _toward(decision: Decision) -> tuple[str, str]:
    impact = decision.impact
    if impact.sea is not None and impact.classification in ("eez", "outside"):
        return impact.sea.name_ja, impact.sea.name_en
    if impact.prefecture_ja and impact.prefecture_en:
        return impact.prefecture_ja, impact.prefecture_en
    return "日本の周辺", "the waters around Japan"


def _passed_text(places: list[PlaceState], decision: Decision | None,
                 lifts: bool) -> texts.Bilingual:
    """One text for every recipient: over which prefectures, toward where, between when."""
    over = [p for p in (decision.prefectures if decision else ()) if p.overflown]
    names_ja = [p.name_ja for p in over] or [p.name_ja for p in places]
    names_en = [p.name_en for p in over] or [p.name_en for p in places]
    starts = [p.window.start for p in over] or [p.window_start or p.window_end for p in places]
    ends = [p.window.end for p in over] or [p.window_end for p in places]
    toward_ja, toward_en = _toward(decision) if decision else ("太平洋", "the Pacific Ocean")
    return texts.passed(min(starts), max(ends), names_ja, names_en, toward_ja, toward_en,
                        lifts_call=lifts)


def confirms_passage(draft: Draft, detection: Detection) -> bool:
    """A detection observed after the last window still open confirms the passage."""
    last = draft.last_window()
    return last is not None and detection.observed_at >= last and not draft.had_imminent()


def confirmation(draft: Draft, detection: Detection, decision: Decision, *,
                 confirm_after: timedelta) -> tuple[Stage | None, datetime | None]:
    """(ended, passed_due) after an update without an outcome."""
    if decision.course != "flies_over" or draft.had_imminent():
        return None, None
    last = draft.last_window()
    if last is None:
        return None, None
    if detection.observed_at < last:
        return None, last + confirm_after
    if draft.now < last:  # confirmed, but the alert cannot go out before the window's end
        return None, last
    return send_passed(draft, decision), None


def send_passed(draft: Draft, decision: Decision | None) -> Stage | None:
    """"Passed" to every place still sheltering, named from `decision` when it flies over;
    under the 2023 rule it also lifts the call to shelter."""
    over = decision if decision is not None and decision.course == "flies_over" else None
    lifts = decision is not None and decision.policy == "prefecture+adjacent"
    return draft.close_all("passed", _passed_text(draft.sheltering(), over, lifts))


def closing_stage(decision: Decision, outcome: str, had_imminent: bool) -> Stage:
    """The closing message an outcome calls for (jalert.md, "The published flow")."""
    impact = decision.impact
    if outcome in ("breakup", "lost"):
        return "cancel"
    if outcome == "impact" and impact.classification in ("land", "territorial_sea"):
        return "fell_land"
    flew_over = outcome == "orbit" or decision.course == "flies_over"
    if impact.sea is not None and (had_imminent or not flew_over):
        return "fell_sea"
    return "passed"


def on_outcome(draft: Draft, detection: Detection,
               decision: Decision) -> tuple[Stage | None, datetime | None]:
    """(ended, passed_due) on the final update: the event's one closing message."""
    if not draft.sheltering() or detection.outcome is None:
        return None, None
    impact = decision.impact
    stage = closing_stage(decision, detection.outcome, draft.had_imminent())
    if stage == "cancel":
        return draft.close_all("cancel", texts.cancel()), None
    if stage == "fell_land":
        return draft.close_all("fell_land", texts.fell_land(
            impact.time, impact.prefecture_ja or "", impact.prefecture_en or "")), None
    if stage == "fell_sea" and impact.sea is not None:
        return draft.close_all("fell_sea", texts.fell_sea(
            impact.time, impact.sea.name_ja, impact.sea.name_en,
            impact.classification == "eez")), None
    last = draft.last_window()
    if last is not None and draft.now < last:  # confirmed, but not past the last window yet
        return None, last
    return send_passed(draft, decision), None
