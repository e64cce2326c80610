"""Human-readable text for decisions (the CLI's --format text)."""

from __future__ import annotations

from alertsim.data import load_atlas
from alertsim.domain.model import JST
from alertsim.domain.warnings import Decision

_IMPACT_TEXT = {
    "land": "on land",
    "territorial_sea": "in Japan's territorial sea",
    "eez": "in Japan's EEZ (approximation: within 200 nmi of land), outside territorial waters",
    "outside": "outside Japan's EEZ",
}
_REASON_TEXT = {"overflight": "overflight", "impact_area": "impact area", "adjacent": "adjacent"}



def position(lat: float, lon: float) -> str:
    """35.680N 139.760E, 20.000S 40.000W: hemispheres as letters, never a minus sign."""
    return (f"{abs(lat):.3f}{'S' if lat < 0 else 'N'} "
            f"{abs(lon):.3f}{'W' if lon < 0 else 'E'}")


def decision_text(decision: Decision) -> str:
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
