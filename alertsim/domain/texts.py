"""Message texts for each alert stage, in Japanese and English.

Source of the Japanese standard texts: Cabinet Secretariat, civil protection portal
(内閣官房 国民保護ポータルサイト), "Jアラートによる情報伝達" message examples, current
wording, as collected in docs/jalert.md. Licence: Japanese government websites' standard
terms of use (政府標準利用規約 2.0, compatible with CC BY 4.0); attribution: 内閣官房.
Adaptations, all ours: the municipality (●●市) is dropped because alertsim addresses
prefectures; the sea-fall text names the EEZ; the national information text has no
official counterpart (J-Alert sends nothing when no territory is at risk).
English texts are our working translations; no official English exists.

Every function is pure: it takes the facts to fill in and returns the texts.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from alertsim.domain.model import JST

SUSPICIOUS_JA = "不審な物を発見した場合には、決して近寄らず、直ちに警察や消防などに連絡して下さい。"
SUSPICIOUS_EN = ("If you find a suspicious object, do not approach it; call the police or fire "
                 "department at once.")
SHELTER_JA = "建物の中、又は地下に避難して下さい。"
SHELTER_EN = "Take shelter inside a building or underground."
ORIGIN_JA = "北朝鮮"
ORIGIN_EN = "North Korea"


@dataclass(frozen=True)
class Texts:
    """One language's headline, description and instruction for a message."""

    headline: str
    description: str
    instruction: str


@dataclass(frozen=True)
class Bilingual:
    ja: Texts
    en: Texts


def hm_ja(moment: datetime) -> str:
    local = moment.astimezone(JST)
    return f"{local.hour}時{local.minute}分"


def hm_en(moment: datetime) -> str:
    return f"{moment.astimezone(JST):%H:%M} JST"


def shelter() -> Bilingual:
    ja = ("ミサイル発射。ミサイル発射。" + ORIGIN_JA + "からミサイルが発射されたものとみられます。"
          + SHELTER_JA)
    en = ("Missile launch. Missile launch. A missile appears to have been launched from "
          f"{ORIGIN_EN}. {SHELTER_EN}")
    return Bilingual(Texts("ミサイル発射", ja, SHELTER_JA),
                     Texts("Missile launch: take shelter", en, SHELTER_EN))


def imminent(when: datetime, place_ja: str, place_en: str) -> Bilingual:
    now_ja = "直ちに建物の中、又は地下に避難して下さい。"
    ja = (f"直ちに避難。直ちに避難。{now_ja}ミサイルが、{hm_ja(when)}頃、{place_ja}周辺に"
          "落下するものとみられます。直ちに避難して下さい。")
    now_en = "Take shelter inside a building or underground immediately."
    en = (f"Evacuate now. Evacuate now. {now_en} The missile is expected to fall around "
          f"{place_en} at about {hm_en(when)}. Take shelter now.")
    return Bilingual(Texts("直ちに避難", ja, now_ja),
                     Texts("Evacuate now: missile expected to fall nearby", en, now_en))


def fell_land(when: datetime, place_ja: str, place_en: str) -> Bilingual:
    stay_ja = "続報を伝達しますので、引き続き屋内に避難して下さい。"
    ja = (f"ミサイル落下。ミサイル落下。ミサイルが、{hm_ja(when)}頃、{place_ja}周辺に"
          f"落下したものとみられます。{stay_ja}")
    stay_en = "Further information will follow; stay sheltered indoors."
    en = (f"Missile fell. Missile fell. The missile appears to have fallen around {place_en} at "
          f"about {hm_en(when)}. {stay_en}")
    return Bilingual(Texts("ミサイル落下", ja, stay_ja), Texts("Missile fell", en, stay_en))


def _names_ja(names: list[str]) -> str:
    return "、".join(names)


def _names_en(names: list[str]) -> str:
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"


def passed(start: datetime, end: datetime, over_ja: list[str], over_en: list[str],
           toward_ja: str, toward_en: str, *, lifts_call: bool = False) -> Bilingual:
    """From where to where, between what times (one text for every recipient); under the
    2023 rule the same message also lifts the call to shelter."""
    if hm_ja(start) == hm_ja(end):
        when_ja, when_en = f"{hm_ja(end)}頃", f"at about {hm_en(end)}"
    else:
        when_ja = f"{hm_ja(start)}から{hm_ja(end)}頃"
        when_en = f"between {hm_en(start)[:-4]} and {hm_en(end)}"
    lift_ja = "避難の呼びかけを解除します。" if lifts_call else ""
    lift_en = " The call to take shelter is lifted." if lifts_call else ""
    ja = (f"ミサイル通過。ミサイル通過。先程のミサイルは、{when_ja}、{_names_ja(over_ja)}上空を"
          f"{toward_ja}へ通過したものとみられます。{SUSPICIOUS_JA}{lift_ja}")
    en = (f"Missile passed. Missile passed. The missile appears to have passed over "
          f"{_names_en(over_en)} toward {toward_en} {when_en}. {SUSPICIOUS_EN}{lift_en}")
    return Bilingual(Texts("ミサイル通過", ja, SUSPICIOUS_JA + lift_ja),
                     Texts("Missile passed over", en, SUSPICIOUS_EN + lift_en))


def _zone(in_eez: bool) -> tuple[str, str]:
    if in_eez:
        return "の我が国の排他的経済水域内", ", inside Japan's exclusive economic zone"
    return "の我が国の排他的経済水域外", ", outside Japan's exclusive economic zone"


def fell_sea(when: datetime, sea_ja: str, sea_en: str, in_eez: bool) -> Bilingual:
    zone_ja, zone_en = _zone(in_eez)
    ja = (f"先程のミサイルは、{hm_ja(when)}頃、{sea_ja}{zone_ja}に落下したものと"
          f"みられます。{SUSPICIOUS_JA}")
    en = (f"The missile appears to have fallen into {sea_en}{zone_en}, at about {hm_en(when)}. "
          f"{SUSPICIOUS_EN}")
    return Bilingual(Texts("ミサイル落下（海域）", ja, SUSPICIOUS_JA),
                     Texts("Missile fell at sea", en, SUSPICIOUS_EN))


def cancel(place_ja: str | None = None, place_en: str | None = None) -> Bilingual:
    """The cancel text; with a place, the missile is no longer expected *there* only."""
    lift_ja = "避難の呼びかけを解除します。"
    lift_en = "The call to take shelter is lifted."
    if place_ja is None or place_en is None:
        ja = f"先ほどのミサイルは我が国には飛来しないものとみられます。{lift_ja}"
        en = f"The missile is no longer expected to reach Japan. {lift_en}"
    else:
        ja = f"先ほどのミサイルは{place_ja}には飛来しないものとみられます。{lift_ja}"
        en = f"The missile is no longer expected to reach {place_en}. {lift_en}"
    return Bilingual(Texts("避難の呼びかけ解除", ja, lift_ja),
                     Texts("Shelter call lifted", en, lift_en))


def national(when: datetime, sea_ja: str, sea_en: str, in_eez: bool) -> Bilingual:
    zone_ja, zone_en = _zone(in_eez)
    none_ja = "避難の必要はありません。"
    none_en = "No shelter is needed."
    ja = (f"ミサイル発射情報。{ORIGIN_JA}からミサイルが発射されたものとみられます。我が国の領域に"
          f"飛来するおそれはありません。{hm_ja(when)}頃、{sea_ja}{zone_ja}に落下するものと"
          f"みられます。{none_ja}{SUSPICIOUS_JA}")
    en = (f"Missile launch information. A missile appears to have been launched from "
          f"{ORIGIN_EN}. It is not expected to reach Japanese territory; it is expected to fall "
          f"into {sea_en}{zone_en}, at about {hm_en(when)}. {none_en} {SUSPICIOUS_EN}")
    return Bilingual(Texts("ミサイル発射情報（避難不要）", ja, none_ja),
                     Texts("Missile launch information: no shelter needed", en, none_en))
