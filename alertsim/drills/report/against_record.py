"""The drill held against J-Alert's record: the scenario's `record` (what J-Alert actually
sent, when, to whom, from public sources) beside the alerts the drill sent.

Per prefecture and stage, the record's time is compared with the drill's: the `sent` time
(scenario clock, JST) of the first alert of that stage to that prefecture. A row is
within tolerance when the two differ by at most `record.tolerance`; otherwise it is
outside tolerance, missing in the drill (recorded, not sent) or not in the record (sent,
not recorded; a national alert is never in the record, J-Alert sends none). The areas are
the record's against the prefectures the drill warned (sent shelter). The drill matches
the record when the areas agree and every row is within tolerance.

Pure: the record and the drill's alert rows in, the comparison and its failure lines out.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from alertsim.domain.model import JST
from alertsim.domain.vocabulary import STAGES
from alertsim.drills.jalert_record import JAlertRecord
from alertsim.drills.report.matching import place_of
from alertsim.drills.report.model import (
    NATIONAL,
    RecordAreas,
    RecordComparison,
    RecordRow,
    RecordVerdict,
)
from alertsim.service.records import OutboxRow

__all__ = ["hold_against", "record_failures", "signed_duration"]


def signed_duration(seconds: float) -> str:
    """'+7 min', '-30 s', '+1 min 5 s', '0 s': a difference as the report writes it."""
    whole = round(seconds)
    minutes, rest = divmod(abs(whole), 60)
    sign = "" if whole == 0 else ("+" if whole > 0 else "-")
    if not minutes:
        return f"{sign}{rest} s"
    return f"{sign}{minutes} min" + (f" {rest} s" if rest else "")


def _first_sent(rows: Sequence[OutboxRow]) -> dict[tuple[str, str], datetime]:
    """(place, stage) -> `sent` of the first such alert, in outbox order."""
    first: dict[tuple[str, str], datetime] = {}
    for row in rows:
        # Every alert carries its `sent` time; a row without one cannot be placed.
        if row.stage is not None and row.sim_time is not None:
            first.setdefault((place_of(row), row.stage), row.sim_time)
    return first


def _jst(moment: datetime | None) -> datetime | None:
    return None if moment is None else moment.astimezone(JST)


def _row(key: tuple[str, str], recorded: datetime | None, sent: datetime | None,
         tolerance_s: float) -> RecordRow:
    difference = None
    verdict: RecordVerdict
    if recorded is None:
        verdict = "not in record"
    elif sent is None:
        verdict = "missing in drill"
    else:
        difference = (sent - recorded).total_seconds()
        verdict = "within tolerance" if abs(difference) <= tolerance_s else "outside tolerance"
    return RecordRow(prefecture=key[0], stage=key[1], record_at=_jst(recorded),
                     drill_at=_jst(sent), difference_s=difference, verdict=verdict)


def _order(key: tuple[str, str]) -> tuple[bool, str, int]:
    """Prefectures by code, the national topic last; stages in the flow's order."""
    place, stage = key
    return (place == NATIONAL, place, STAGES.index(stage) if stage in STAGES else len(STAGES))


def hold_against(record: JAlertRecord, rows: Sequence[OutboxRow]) -> RecordComparison:
    """The drill's alerts (`rows`, all of the drill's, in outbox order) against `record`."""
    recorded = record.times()
    sent = _first_sent(rows)
    compared = tuple(_row(key, recorded.get(key), sent.get(key), record.tolerance)
                     for key in sorted({*recorded, *sent}, key=_order))
    warned = sorted({place for place, stage in sent if stage == "shelter"
                     and place != NATIONAL})
    areas = RecordAreas(record=tuple(sorted(record.areas)), drill=tuple(warned),
                        only_in_record=tuple(sorted(set(record.areas) - set(warned))),
                        only_in_drill=tuple(sorted(set(warned) - set(record.areas))))
    matched = (not areas.only_in_record and not areas.only_in_drill
               and all(r.verdict == "within tolerance" for r in compared))
    return RecordComparison(sources=record.sources, notes=record.notes,
                            tolerance_s=record.tolerance, areas=areas, rows=compared,
                            matched=matched)


def _at(moment: datetime | None) -> str:
    return "—" if moment is None else f"{moment.astimezone(JST):%H:%M:%S}"


def record_failures(comparison: RecordComparison) -> list[str]:
    """Why the drill does not match the record: the areas, then each row that differs."""
    lines: list[str] = []
    areas = comparison.areas
    if areas.only_in_record or areas.only_in_drill:
        lines.append("record: areas differ: in the record, not warned in the drill: "
                     f"{', '.join(areas.only_in_record) or 'none'}; warned in the drill, "
                     f"not in the record: {', '.join(areas.only_in_drill) or 'none'}")
    tolerance = signed_duration(comparison.tolerance_s).lstrip("+")
    for row in comparison.rows:
        what = f"record: {row.prefecture} {row.stage}"
        if row.verdict == "outside tolerance" and row.difference_s is not None:
            lines.append(f"{what}: drill {_at(row.drill_at)}, record {_at(row.record_at)}, "
                         f"{signed_duration(row.difference_s)} (tolerance {tolerance})")
        elif row.verdict == "missing in drill":
            lines.append(f"{what}: recorded at {_at(row.record_at)}, not sent by the drill")
        elif row.verdict == "not in record":
            lines.append(f"{what}: sent by the drill at {_at(row.drill_at)}, "
                         "not in the record")
    return lines
