"""Japanese and English for everything people read around the alert texts (pages, the
report, the CLI's own messages). The alert texts themselves are J-Alert's and live in
`alertsim.domain.texts`.

Each area has a catalogue beside this module, `AREA.json`:

    {"key": {"ja": "訓練", "en": "Exercise"}, "greeting": {"ja": "{name}さん", "en": "Hi {name}"}}

`text(area, key, lang, **fields)` gives one string, formatted with `fields`;
`catalogue(area)` every key of an area (pages get theirs as JSON, to switch language
without a round trip). Every key has both languages with the same `{fields}`
(tests/unit/test_i18n.py), and code names keys, never literal user-facing strings.
Japanese follows the official terms (J-Alert, the Cabinet Secretariat's 国民保護ポータル,
JMA's 訓練/試験): see docs/jalert.md.
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Final, Literal, get_args

__all__ = ["DEFAULT_PAGE_LANG", "LANGS", "Lang", "areas", "catalogue", "text"]

Lang = Literal["ja", "en"]
LANGS: Final[tuple[Lang, ...]] = get_args(Lang)
DEFAULT_PAGE_LANG: Final[Lang] = "ja"  # pages open in Japanese; the CLI follows --lang


def areas() -> list[str]:
    """Every catalogue's area name (`AREA.json` beside this module)."""
    return sorted(entry.name.removesuffix(".json")
                  for entry in resources.files(__package__).iterdir()
                  if entry.name.endswith(".json"))


@cache
def catalogue(area: str) -> dict[str, dict[str, str]]:
    """Key -> {"ja": ..., "en": ...} for one area; KeyError for an unknown area."""
    if area not in areas():
        raise KeyError(f"no i18n catalogue {area!r}")
    raw = resources.files(__package__).joinpath(f"{area}.json").read_text("utf-8")
    loaded: dict[str, dict[str, str]] = json.loads(raw)
    return loaded


def text(area: str, key: str, lang: Lang, **fields: object) -> str:
    """One string of an area in `lang`, formatted with `fields`; KeyError when missing."""
    entry = catalogue(area)[key]
    return entry[lang].format(**fields) if fields else entry[lang]
