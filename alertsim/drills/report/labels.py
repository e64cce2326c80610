"""The report's words in Japanese or English: every label from the `report` catalogue
(alertsim/i18n/report.json), and the names of stages, map states, places and actions.

What the record holds in words (failure reasons, refusal reasons, the service's answers,
the scenario's notes and sources, topics) is shown as recorded, never translated.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime
from functools import cache

from alertsim.data import load_atlas
from alertsim.drills.report.model import NATIONAL
from alertsim.drills.report.render import jst
from alertsim.i18n import Lang, catalogue, text

__all__ = ["action_name", "label", "place_name", "stage_name", "stage_words", "stages_label",
           "state_name", "when"]

_STAGE_WORD = re.compile(r"\b(shelter|imminent|passed|fell_land|fell_sea|cancel|national|"
                         r"nothing)\b")


def label(key: str, lang: Lang, **fields: object) -> str:
    """One label of the report in `lang`, formatted with `fields`."""
    return text("report", key, lang, **fields)


def _named(prefix: str, value: str | None, lang: Lang) -> str:
    """The catalogue's name for `value` under `prefix`, else the value itself."""
    if value is None:
        return "—"
    key = f"{prefix}.{value}"
    return label(key, lang) if key in catalogue("report") else value


def stage_name(stage: str | None, lang: Lang) -> str:
    """A stage as people call it ("passed" -> ミサイル通過 / Passed over)."""
    return _named("stage", stage, lang)


def state_name(state: str, lang: Lang) -> str:
    """A map state as the legend names it."""
    return _named("state", state, lang)


def action_name(action: str, lang: Lang) -> str:
    """An operator action as people call it (cancel, close)."""
    return _named("action", action, lang)


def stages_label(stages: Sequence[str], lang: Lang) -> str:
    """Stages in order, or the word for nothing."""
    sep = "、" if lang == "ja" else ", "
    return sep.join(stage_name(s, lang) for s in stages) or label("stage.nothing", lang)


# The judge's other words in checks (drills/report/assemble.py), as catalogue keys.
_CHECK_PHRASES = ((re.compile(r"^nothing to others \((?P<count>\d+) prefectures\)$"),
                   "check.silent_others"),
                  (re.compile(r"^nothing to (?P<places>.+)$"), "check.silent_places"),
                  (re.compile(r"^sent$"), "check.sent"),
                  (re.compile(r"^not sent$"), "check.not_sent"))


def stage_words(said: str, lang: Lang) -> str:
    """A check's words ("r1: shelter, passed", "nothing to others (46 prefectures)") in
    `lang`: the judge's phrases from the catalogue, each stage by its name."""
    for pattern, key in _CHECK_PHRASES:
        found = pattern.match(said)
        if found:
            return label(key, lang, **found.groupdict())
    return _STAGE_WORD.sub(lambda m: stage_name(m.group(1), lang), said)


@cache
def _names() -> dict[str, tuple[str, str]]:
    return {p.code: (p.name_ja, p.name_en) for p in load_atlas().prefectures}


def place_name(place: str, lang: Lang) -> str:
    """"47 沖縄県" / "47 Okinawa"; the national topic by name; anything else as given."""
    if place == NATIONAL:
        return label("place.national", lang)
    names = _names().get(place)
    return place if names is None else f"{place} {names[0] if lang == 'ja' else names[1]}"


def when(moment: datetime | None, *, ms: bool = False) -> str:
    """An instant in JST, to the second (or millisecond), or a dash."""
    return jst(moment, ms=ms) or "—"
