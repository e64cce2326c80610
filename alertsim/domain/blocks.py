"""The regional blocks of the 2017 era and their preset related areas (policy `block-2017`).

Until 2018-01-07 J-Alert sent missile information by regional block: a prefecture the
predicted flight touched warned its whole block plus the areas preset as related to that
block. This module is alertsim's reconstruction of those tables from the public record;
J-Alert's internal tables are not public, so the block members and related areas below
are what the record supports, not an official list.

Sources (docs/jalert.md, "Which areas get it"). These are facts from public records, not
a copyrighted work.
- Nine blocks, "such as Tohoku and Kanto" (NHK, 2017-12, on the change to prefectures
  from 2018-01-08).
- The Cabinet Secretariat's explanation to the Asahi Shimbun (2017-09-15): both 2017
  Hokkaido overflights (2017-08-29 and 2017-09-15) were sent to the Tohoku block (Aomori,
  Iwate, Miyagi, Akita, Yamagata, Fukushima) and its preset related areas (関連地域),
  Hokkaido, Ibaraki, Tochigi, Gunma, Niigata and Nagano, "in case the trajectory
  deviated": 12 prefectures, 617 municipalities (Asahi Shimbun 2017-11-29).
- The 2012-12-12 and 2016-02-07 satellite launches over the Sakishima islands went to
  Okinawa alone (Asahi Shimbun 2017-11-29; Fire and Disaster Management Agency,
  2016-02-07 report).

Choices alertsim makes where the record is silent:
- Members follow the usual eight-region division (as the atlas's `region` column), with
  Okinawa (47) split from Kyushu into a block of its own. Chubu is the broad one: Hokuriku
  (Niigata, Toyama, Ishikawa, Fukui), Koshin (Yamanashi, Nagano) and Tokai without Mie
  (Gifu, Shizuoka, Aichi); Mie is in Kinki.
- Related areas: the Tohoku block's are the record's six; a hit on Hokkaido alone warns
  the same 12 (the Hokkaido block's related areas are the Tohoku block and the same five),
  since on record a Hokkaido overflight was sent to the Tohoku block and its related
  areas. No related areas are on record for the other seven blocks, so none are assumed:
  a hit there warns its own block only.

Pure data and lookups; codes are JIS X 0401 ("01".."47").
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

__all__ = ["BLOCKS", "Block", "block_of", "warned_with"]


@dataclass(frozen=True)
class Block:
    """One regional block: its member prefectures and the related areas it also warns."""

    name: str
    members: tuple[str, ...]
    related: tuple[str, ...] = ()


def _codes(first: int, last: int) -> tuple[str, ...]:
    return tuple(f"{n:02d}" for n in range(first, last + 1))


# Beyond Tohoku, both northern blocks warn these: the southern neighbours of the 2017
# overflight corridor in Kanto (Ibaraki, Tochigi, Gunma) and Chubu (Niigata, Nagano).
_NORTHERN_RELATED: Final = ("08", "09", "10", "15", "20")

BLOCKS: Final[tuple[Block, ...]] = (
    Block("Hokkaido", ("01",), _codes(2, 7) + _NORTHERN_RELATED),
    Block("Tohoku", _codes(2, 7), ("01", *_NORTHERN_RELATED)),
    Block("Kanto", _codes(8, 14)),
    Block("Chubu", _codes(15, 23)),
    Block("Kinki", _codes(24, 30)),
    Block("Chugoku", _codes(31, 35)),
    Block("Shikoku", _codes(36, 39)),
    Block("Kyushu", _codes(40, 46)),
    Block("Okinawa", ("47",)),
)

_BLOCK_OF: Final[dict[str, Block]] = {code: b for b in BLOCKS for code in b.members}
_WARNED_WITH: Final[dict[str, frozenset[str]]] = {
    code: frozenset(block.members + block.related) for code, block in _BLOCK_OF.items()}


def block_of(code: str) -> Block:
    """The block prefecture `code` belongs to; KeyError for a code outside 01..47."""
    return _BLOCK_OF[code]


def warned_with(code: str) -> frozenset[str]:
    """Every prefecture a direct hit on `code` warns: its block and that block's related
    areas, `code` itself included; KeyError for a code outside 01..47."""
    return _WARNED_WITH[code]
