"""What the live dashboard shows, kept up to date from the service's events.

`LiveModel.take(event)` applies one `ServiceEvent` and returns the small updates it makes
(the diffs a page applies; `frames` batches them): a prefecture's state, a log row, an
error, the receipt tallies of the places touched, one event's overlay group per frame.

Display state of a prefecture (the map's `data-state`, `/api/state`'s "prefectures") is
read from exactly what the service retains on `state/{code}` (`PrefectureState`): one
entry per open event that has sent the prefecture something. Each entry maps to a state:

    sheltering (stages shelter, imminent)   shelter
    last stage fell_land or fell_sea        fell
    last stage passed                       passed
    last stage cancel                       cancelled
    no open event (empty retained payload)  none     (a closed event clears its places)

When several open events touch one prefecture, the most urgent wins:
shelter > fell > passed > cancelled > none. So a salvo's second launch still sheltering
Hokkaido keeps it red while the first has passed.

Beside the retained state, each prefecture's place (`place_json`) says which events touch
it and, once they all closed, `last`: the state it showed before (the page draws it
dimmed, where the retained state reads none), with the events it came from. Each event's
reason per prefecture (overflight, impact_area, adjacent, block) is what the decision
gives (`reasons_of`: the dashboard decides again from the event's latest detection, under
the service's policy). A closed event's track is removed from the map (an empty group per
frame); its times stay in `events`.

Receipt latency runs from the alert's commit in the service (its outbox row's
`created_at`, the moment it was decided) to the receiver's `received_at`.

Seeding (`LiveModel.seed`) and the events queued meanwhile overlap: alerts are kept once
by identifier, tracks by sequence, and receipts in the seed are not counted again when
their event arrives (until `caught_up`).
"""

from __future__ import annotations

import json
import statistics
from collections import Counter, deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from alertsim.data import load_atlas
from alertsim.domain.detection import Detection
from alertsim.domain.messages import Alert, PlaceEvent, PrefectureState
from alertsim.domain.model import JST
from alertsim.domain.policies import resolve_policy
from alertsim.domain.vocabulary import POLICIES, PREFECTURE_CODES, PolicyChoice
from alertsim.domain.warnings import decide
from alertsim.service.events import (
    Closed,
    Decided,
    ReceiptSeen,
    Received,
    ServiceEvent,
    Written,
)
from alertsim.service.records import OutboxMessage
from alertsim.web.map import (
    MapState,
    TrackOverlay,
    removed_track_svg,
    render_track_svg,
    track_of,
)
from alertsim.web.seed import DashboardSeed

__all__ = ["LiveModel", "display_state", "event_state", "parse_state", "reasons_of"]

RANK: dict[MapState, int] = {"none": 0, "cancelled": 1, "passed": 2, "fell": 3, "shelter": 4}
LOG_ROWS = 500
Update = dict[str, Any]


def event_state(event: PlaceEvent) -> MapState:
    """The display state of one open event at one prefecture."""
    if event.sheltering or event.stage in ("shelter", "imminent"):
        return "shelter"
    if event.stage in ("fell_land", "fell_sea"):
        return "fell"
    if event.stage == "passed":
        return "passed"
    return "cancelled"


def display_state(state: PrefectureState | None) -> MapState:
    """One prefecture's state over all its open events: the most urgent wins."""
    if state is None:
        return "none"
    return max((event_state(e) for e in state.events), key=RANK.__getitem__, default="none")


def parse_state(payload: bytes) -> PrefectureState | None:
    """A retained state payload; empty (cleared) is None."""
    return PrefectureState.model_validate_json(payload) if payload else None


def reasons_of(detection: Detection, policy: PolicyChoice = "auto") -> dict[str, str]:
    """Code -> why the decision warns that prefecture, under `policy` (auto: the rule of
    the launch's day). A prefecture only another policy warns (a service run under a
    named policy the page was not told) takes that policy's reason: the direct hits,
    overflight and impact_area, are the same under every policy."""
    first = resolve_policy(policy, detection.launch.time)
    reasons: dict[str, str] = {}
    for rule in (first, *(p for p in POLICIES if p != first)):
        decision = decide(detection, load_atlas(), policy=rule, now=detection.observed_at)
        for warned in decision.prefectures:
            reasons.setdefault(warned.code, warned.reason)
    return dict(sorted(reasons.items()))


def _jst(moment: datetime | None) -> str | None:
    return None if moment is None else moment.astimezone(JST).strftime("%Y-%m-%d %H:%M:%S")


@dataclass
class _Receipts:
    count: int = 0
    latencies_ms: list[float] = field(default_factory=list)

    def as_json(self) -> Update:
        lat = self.latencies_ms
        return {"count": self.count,
                "latency_ms_median": round(statistics.median(lat)) if lat else None,
                "latency_ms_max": round(max(lat)) if lat else None}


def log_row(alert: Alert, created_at: datetime) -> Update:
    """One message-log line: time (JST), place, stage, headlines and identifier."""
    ja, en = alert.info[0], alert.info[-1]
    return {"identifier": alert.identifier, "time": _jst(alert.sent), "created_at":
            created_at.isoformat(), "prefecture": alert.prefecture or "national",
            "place": en.area[0].areaDesc if en.area else "", "stage": alert.stage,
            "msg_type": alert.msgType, "headline_ja": ja.headline,
            "headline_en": en.headline, "event_id": alert.alertsim.event_id}


def track_json(track: TrackOverlay) -> Update:
    return {"event_id": track.event_id, "launch_time": track.launch_time.isoformat(),
            "impact_time": track.impact_time.isoformat(), "launch": list(track.launch),
            "impact": list(track.impact)}


class LiveModel:
    """The dashboard's picture of one service; every change returns the updates to push."""

    def __init__(self, *, status: str, title: str = "", speed: float = 1.0,
                 operator_topic: str = "", policy: PolicyChoice = "auto") -> None:
        self.status = status
        self.title = title
        self.speed = speed
        self.operator_topic = operator_topic
        self.policy = policy
        self.states: dict[str, PrefectureState | None] = dict.fromkeys(PREFECTURE_CODES)
        self.last: dict[str, tuple[MapState, tuple[str, ...]]] = {}  # code -> state, events
        self.log: deque[Update] = deque(maxlen=LOG_ROWS)
        self.errors: deque[Update] = deque(maxlen=50)
        self.tracks: dict[str, TrackOverlay] = {}
        self.track_svgs: dict[str, dict[str, str]] = {}  # event -> frame -> its overlay group
        self.reasons: dict[str, dict[str, str]] = {}  # event -> code -> reason
        self.closed: set[str] = set()
        self._sequences: dict[str, int] = {}
        self._alerts: dict[str, tuple[str, datetime]] = {}  # identifier -> place, created
        self._receipts: dict[str, _Receipts] = {}
        self._seeded: Counter[ReceiptSeen] = Counter()  # seed receipts not met again yet

    # -- following the service --------------------------------------------------------

    def take(self, event: ServiceEvent) -> list[Update]:
        """Apply one service event; the updates it makes (none for `Published`)."""
        if isinstance(event, Written):
            return [u for row in event.rows for u in self.apply(row)]
        if isinstance(event, Decided):
            return self.decided(event.detection)
        if isinstance(event, Closed):
            return self.close(event.event_id)
        if isinstance(event, Received):
            return self.add_receipts(event.receipts)
        return []

    def seed(self, seed: DashboardSeed) -> None:
        """Start from the record's picture (before any page is served)."""
        for row in seed.rows:
            self.apply(row)
        for detection in seed.detections:
            self.decided(detection)
        for event_id in sorted(seed.closed):
            self.close(event_id)
        self.add_receipts(seed.receipts)
        self._seeded = Counter(seed.receipts)

    def caught_up(self) -> None:
        """The events queued while seeding are applied: stop looking for seeded receipts."""
        self._seeded.clear()

    def apply(self, row: OutboxMessage) -> list[Update]:
        """Take one outbox row (alert, state, error); the updates it makes, if any."""
        if row.kind == "state" and row.prefecture in self.states:
            try:
                return self.set_state(row.prefecture, parse_state(row.payload))
            except ValidationError:
                return []
        if row.kind == "alert":
            alert = Alert.model_validate_json(row.payload)
            if alert.identifier in self._alerts:  # seen while seeding from the record
                return []
            self._alerts[alert.identifier] = (alert.prefecture or "national", row.created_at)
            entry = log_row(alert, row.created_at)
            self.log.append(entry)
            return [{"type": "log", "row": entry}]
        if row.kind == "error":
            body = json.loads(row.payload)
            entry = {"time": _jst(row.created_at), "reason": body.get("reason", ""),
                     "source": body.get("source", "")}
            self.errors.append(entry)
            return [{"type": "error", "row": entry}]
        return []

    def set_state(self, code: str, state: PrefectureState | None) -> list[Update]:
        """A prefecture's new retained state; what it showed is kept when it clears."""
        before = self.states[code]
        shown, now = display_state(before), display_state(state)
        if now == "none" and shown != "none" and before is not None:
            self.last[code] = (shown, tuple(e.event_id for e in before.events))
        elif now != "none":
            self.last.pop(code, None)
        self.states[code] = state
        return [self.prefecture_update(code),
                {"type": "place", "code": code, "place": self.place_json(code)}]

    def add_receipts(self, receipts: Iterable[ReceiptSeen]) -> list[Update]:
        """Receipts of known alerts; the tallies of the places they touched."""
        touched: set[str] = set()
        for receipt in receipts:
            if self._seeded[receipt] > 0:  # counted from the seed already
                self._seeded[receipt] -= 1
                continue
            if receipt.message_id not in self._alerts:
                continue
            place, created = self._alerts[receipt.message_id]
            tally = self._receipts.setdefault(place, _Receipts())
            tally.count += 1
            tally.latencies_ms.append((receipt.received_at - created).total_seconds() * 1000.0)
            touched.add(place)
        if not touched:
            return []
        return [{"type": "receipts", "receipts": {p: self._receipts[p].as_json()
                                                  for p in sorted(touched)}}]

    def decided(self, detection: Detection) -> list[Update]:
        """An event's latest detection: its track, drawn once per newer sequence."""
        event_id = detection.event_id
        if self._sequences.get(event_id, -1) >= detection.sequence:
            return []
        self._sequences[event_id] = detection.sequence
        drawn = track_of(detection)
        if self.tracks.get(event_id) == drawn:
            return []
        self.tracks[event_id] = drawn
        self.reasons[event_id] = reasons_of(detection, self.policy)
        updates: list[Update] = [{"type": "reasons", "event_id": event_id,
                                  "reasons": self.reasons[event_id]}]
        if event_id in self.closed:  # a late detection of a closed event: no track
            return updates
        self.track_svgs[event_id] = render_track_svg(drawn)
        return [*updates, {"type": "track", "event_id": event_id,
                           "svg": self.track_svgs[event_id]}]

    def close(self, event_id: str) -> list[Update]:
        """An event closed: its track leaves the map (an empty group in every frame)."""
        if event_id in self.closed:
            return []
        self.closed.add(event_id)
        updates: list[Update] = [{"type": "closed", "event_id": event_id}]
        if self.track_svgs.pop(event_id, None) is not None:
            updates.append({"type": "track", "event_id": event_id,
                            "svg": removed_track_svg(event_id)})
        return updates

    # -- views -------------------------------------------------------------------------

    def prefectures(self) -> dict[str, MapState]:
        return {code: display_state(state) for code, state in self.states.items()}

    def prefecture_update(self, code: str) -> Update:
        return {"type": "state", "code": code, "state": display_state(self.states[code])}

    def place_json(self, code: str) -> Update:
        """The events at a prefecture (open ones, else those of its last state) and its
        last state once they closed (None while one is open or never)."""
        state = self.states[code]
        if state is not None and state.events:
            return {"events": sorted({e.event_id for e in state.events}), "last": None}
        last, events = self.last.get(code, ("none", ()))
        return {"events": sorted(set(events)), "last": None if last == "none" else last}

    def places(self) -> dict[str, Update]:
        """Every prefecture with events or a last state: code -> `place_json`."""
        return {code: self.place_json(code) for code in PREFECTURE_CODES
                if display_state(self.states[code]) != "none" or code in self.last}

    def last_states(self) -> dict[str, MapState]:
        """Code -> the state drawn dimmed (its events closed)."""
        return {code: state for code, (state, _) in sorted(self.last.items())
                if display_state(self.states[code]) == "none"}

    def receipts_json(self) -> dict[str, Update]:
        return {place: tally.as_json() for place, tally in sorted(self._receipts.items())}

    def events(self) -> list[Update]:
        """Every event seen: its tracks' times and its open places' states."""
        places: dict[str, dict[str, MapState]] = {}
        for code, state in self.states.items():
            for e in () if state is None else state.events:
                places.setdefault(e.event_id, {})[code] = event_state(e)
        out = []
        for event_id in sorted(set(places) | set(self.tracks)):
            track = self.tracks.get(event_id)
            out.append({"event_id": event_id, "closed": event_id in self.closed,
                        "prefectures": places.get(event_id, {}),
                        **(track_json(track) if track else {})})
        return out

    def snapshot(self, sim_now: datetime | None = None) -> Update:
        """The whole picture: `/api/state` and the first message of every live stream."""
        return {"status": self.status, "title": self.title,
                "prefectures": self.prefectures(), "places": self.places(),
                "reasons": self.reasons, "events": self.events(),
                "log": list(self.log), "errors": list(self.errors),
                "receipts": self.receipts_json(), "clock": self.clock(sim_now),
                "operator_topic": self.operator_topic}

    def clock(self, sim_now: datetime | None) -> Update:
        return {"sim_now": None if sim_now is None else sim_now.isoformat(),
                "sim_now_jst": _jst(sim_now), "speed": self.speed}

