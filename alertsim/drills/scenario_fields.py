"""Field types shared by scenario files and their J-Alert record: offsets on the scenario
clock, prefecture codes as YAML writes them, and cross-field errors that know their field.
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import BeforeValidator, Field

from alertsim.domain.vocabulary import PrefectureCode

__all__ = ["Code", "Located", "Offset", "parse_offset"]

_OFFSET = re.compile(r"^(?:(?P<h>\d+):)?(?P<m>\d{1,2}):(?P<s>\d{1,2}(?:\.\d+)?)$")


def parse_offset(value: object) -> object:
    """'HH:MM:SS', 'MM:SS' or a number of seconds -> seconds; anything else passes through
    for pydantic to reject with its own message."""
    if isinstance(value, str):
        text = value.strip()
        match = _OFFSET.match(text)
        if match is None:
            try:
                return float(text)
            except ValueError:
                raise ValueError(
                    "expected 'HH:MM:SS', 'MM:SS' or a number of seconds") from None
        minutes, seconds = int(match["m"]), float(match["s"])
        if (minutes >= 60 and match["h"] is not None) or seconds >= 60:
            raise ValueError("minutes and seconds must be below 60")
        return int(match["h"] or 0) * 3600 + minutes * 60 + seconds
    return value


def _jis_code(value: object) -> object:
    """Accept an unquoted YAML number (47, or 1 from `01`) as its two-digit code."""
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:02d}"
    return value


Offset = Annotated[float, BeforeValidator(parse_offset), Field(ge=0.0, allow_inf_nan=False)]
Code = Annotated[PrefectureCode, BeforeValidator(_jis_code)]


class Located(ValueError):
    """A cross-field problem that knows the field path it belongs to (relative to the
    model that raised it), so the report can name the field and its line."""

    def __init__(self, loc: tuple[int | str, ...], message: str) -> None:
        super().__init__(message)
        self.loc = loc
