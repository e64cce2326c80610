"""Every catalogue (alertsim/i18n/AREA.json) gives every key in Japanese and English, with
the same format fields, and `text` formats them."""

from __future__ import annotations

import string

import pytest

from alertsim.i18n import LANGS, areas, catalogue, text


def fields_of(template: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(template) if name}


@pytest.mark.parametrize("area", areas())
def test_every_key_has_both_languages_with_the_same_fields(area: str) -> None:
    """A key missing a language, empty in one, or naming other fields is an error."""
    for key, entry in catalogue(area).items():
        assert set(entry) == set(LANGS), f"{area}:{key}"
        assert all(entry[lang].strip() for lang in LANGS), f"{area}:{key}"
        assert fields_of(entry["ja"]) == fields_of(entry["en"]), f"{area}:{key}"


def test_text_formats_and_unknown_keys_fail_loudly() -> None:
    """`text` picks the language; an unknown key or area is an error, not a blank."""
    assert text("common", "status.exercise", "ja") == "訓練"
    assert text("common", "status.exercise", "en") == "Exercise"
    with pytest.raises(KeyError):
        text("common", "no.such.key", "en")
    with pytest.raises(KeyError):
        catalogue("no-such-area")
