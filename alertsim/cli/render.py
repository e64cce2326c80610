"""Text for people: decisions (`decide --format text`) and alerts as a subscriber shows them."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Literal

from alertsim.data import load_atlas
from alertsim.domain.messages import Alert, PrefectureState
from alertsim.domain.model import JST
from alertsim.domain.warnings import Course, Decision, Reason

__all__ = [
    "Lang",
    "decision_text",
    "default_client_id",
    "position",
    "render_alert",
    "render_state",
]

Lang = Literal["ja", "en"]

_IMPACT_TEXT = {
    "land": "on land",
    "territorial_sea": "in Japan's territorial sea",
    "eez": "in Japan's EEZ (approximation: within 200 nmi of land), outside territorial waters",
    "outside": "outside Japan's EEZ",
}
_REASON_TEXT: dict[Reason, str] = {"overflight": "overflight", "impact_area": "impact area",
                                   "adjacent": "adjacent", "block": "block"}
# The published case (jalert.md, "The published flow") and the closing message it leads to.
_COURSE_TEXT: dict[Course, str] = {
    "falls_in_japan": "may fall on land or in the territorial sea: evacuate now, then the "
                      "fall message on the outcome",
    "flies_over": "flies over Japan: passed once the passage is confirmed",
    "falls_short": "falls short of Japanese territory: the fell-outside message on the "
                   "outcome, if anyone was warned",
}
_BANNERS = {
    "Exercise": "*** EXERCISE — 訓練 / not a real alert ***",
    "Test": "*** TEST — 試験 / not a real alert ***",
}
_LABELS = {
    "ja": {"area": "対象地域", "sent": "発表時刻", "expires": "有効期限"},
    "en": {"area": "Area", "sent": "Sent", "expires": "Expires"},
}


def position(lat: float, lon: float) -> str:
    """35.680N 139.760E, 20.000S 40.000W: hemispheres as letters, never a minus sign."""
    return (f"{abs(lat):.3f}{'S' if lat < 0 else 'N'} "
            f"{abs(lon):.3f}{'W' if lon < 0 else 'E'}")


def decision_text(decision: Decision) -> str:
    """The decision as `alertsim decide --format text` prints it (see the README)."""
    atlas = load_atlas()
    impact = decision.impact
    lines = [
        f"Event {decision.event_id} (sequence {decision.sequence}), {decision.object}, "
        f"policy {decision.policy}",
        f"Launch {decision.launch_time.astimezone(JST):%Y-%m-%d %H:%M:%S} JST; "
        f"range {decision.range_km:,.0f} km, flight {decision.flight_time_s / 60:.1f} min",
    ]
    where = _IMPACT_TEXT[impact.classification]
    if impact.prefecture:
        pref = atlas.by_code[impact.prefecture]
        where += f", {pref.name_ja} {pref.name_en}"
    if impact.sea and impact.classification != "land":
        where += f", {impact.sea.name_ja} ({impact.sea.name_en})"
    lines.append(f"Impact {impact.time:%H:%M:%S} JST at {position(impact.lat, impact.lon)}: "
                 f"{where}")
    lines.append(f"Case: {_COURSE_TEXT[decision.course]}")
    if not decision.prefectures:
        lines.append("Shelter: none (no prefecture's territory is under the corridor)")
    else:
        lines.append(f"Shelter: {len(decision.prefectures)} prefecture(s)")
        for p in decision.prefectures:
            via = f" via {','.join(p.via)}" if p.via else ""
            window = (f"{p.window.start.astimezone(JST):%H:%M:%S}-"
                      f"{p.window.end.astimezone(JST):%H:%M:%S} JST")
            lines.append(f"  {p.code} {p.name_ja}\u3000{p.name_en:<10} "
                         f"{_REASON_TEXT[p.reason]:<12} {window}{via}")
    return "\n".join(lines)


def render_alert(alert: Alert, lang: Lang) -> str:
    """The alert as a person reads it: banner, texts in `lang`, area, when it was sent and
    when it expires (JST, with the date: an old copy must look old), footer."""
    language = "ja-JP" if lang == "ja" else "en-US"
    info = next((i for i in alert.info if i.language == language), alert.info[0])
    labels = _LABELS[lang]
    areas = ("、" if lang == "ja" else ", ").join(a.areaDesc for a in info.area)
    banner = _BANNERS[alert.status]
    return "\n".join([
        banner,
        info.headline,
        info.description,
        info.instruction,
        f"{labels['area']}: {areas}",
        f"{labels['sent']}: {alert.sent.astimezone(JST):%Y-%m-%d %H:%M:%S} JST",
        f"{labels['expires']}: {info.expires.astimezone(JST):%Y-%m-%d %H:%M:%S} JST",
        f"-- {alert.msgType} {alert.identifier}",
    ])


def render_state(state: PrefectureState | None, code: str) -> str:
    """One prefecture's retained state: its open events, or "no active alert"."""
    if state is None or not state.events:
        return f"[{code}] no active alert"
    mode = "SHELTERING" if state.sheltering else "no shelter call"
    lines = [f"[{code}] {state.status.upper()} state: {mode} "
             f"(updated {state.updated.astimezone(JST):%H:%M:%S} JST)"]
    lines += [f"  event {e.event_id}: {e.stage} ({e.identifier})" for e in state.events]
    return "\n".join(lines)


def default_client_id(codes: Sequence[str], unique: str) -> str:
    """`alertsim-sub-47-01-UNIQUE` (`unique`: a random tag the subscriber keeps in its state
    file, so that two subscribers never share an id); a long list of prefectures is
    shortened with a hash to fit 64 characters."""
    joined = "-".join(dict.fromkeys(codes))
    client_id = f"alertsim-sub-{joined}-{unique}"
    if len(client_id) <= 64:
        return client_id
    digest = hashlib.sha256(joined.encode()).hexdigest()[:10]
    return f"{client_id[:63 - len(unique) - 12].rstrip('-')}-{digest}-{unique}"
