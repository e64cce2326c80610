"""Launch sites the builder offers, with where each coordinate comes from.

Coordinates are public and rounded to about 1 km; a launch pad itself is rarely
published, so an airfield or a stand-in point near the reported area is named as such.
`docs/jalert.md` is this repository's own summary of public sources; the others are the
Wikipedia articles' coordinates (each from its infobox, 2018 to 2024 revisions).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

__all__ = ["SITES", "LaunchSite", "site"]


@dataclass(frozen=True)
class LaunchSite:
    """A named launch site: where, in both languages, and the source of its coordinates."""

    key: str
    name_ja: str
    name_en: str
    lat: float
    lon: float
    source: str


SITES: Final[tuple[LaunchSite, ...]] = (
    LaunchSite("sohae", "東倉里（西海衛星発射場）", "Sohae (Tongchang-ri)", 39.660, 124.705,
               "docs/jalert.md, worked examples; Wikipedia 'Sohae Satellite Launching "
               "Station' (39°39′36″N 124°42′18″E)"),
    LaunchSite("sunan", "平壌・順安（空港）", "Pyongyang Sunan (airport)", 39.224, 125.670,
               "docs/jalert.md (the airport as a proxy for the pad); Wikipedia 'Pyongyang "
               "International Airport' (39°13′26″N 125°40′12″E)"),
    LaunchSite("musudan", "舞水端里（東海衛星発射場）", "Musudan-ri (Tonghae)", 40.858, 129.686,
               "docs/jalert.md, worked examples; Wikipedia 'Tonghae Satellite Launching "
               "Ground'"),
    LaunchSite("sinpo", "新浦", "Sinpo", 40.030, 128.180,
               "Wikipedia 'Sinpo' (40°02′N 128°11′E); scenarios/fell-short-off-akita.yaml"),
    LaunchSite("jagang", "慈江道・舞坪里付近", "Jagang (near Mupyong-ri)", 40.700, 126.400,
               "a stand-in inside Jagang province: the pad of 2022-10-04 is not published "
               "(scenarios/2022-10-04-hwasong-12.yaml)"),
    LaunchSite("wonsan", "元山（葛麻空港）", "Wonsan (Kalma airport)", 39.166, 127.484,
               "Wikipedia 'Kalma Airport' (39°9′59″N 127°29′3″E)"),
)


def site(key: str) -> LaunchSite | None:
    """The site of that key, or None."""
    return next((s for s in SITES if s.key == key), None)
