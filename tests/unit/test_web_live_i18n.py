"""The dashboard page's words: Japanese by default, English on request, every string the
page or its script shows from alertsim/i18n/dashboard.json."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from importlib import resources
from typing import get_args

import pytest

from alertsim.domain.vocabulary import STAGES, MsgType
from alertsim.domain.warnings import Reason
from alertsim.i18n import catalogue
from alertsim.web.app import page_lang, render_page
from alertsim.web.geometry import layout
from alertsim.web.live import LiveModel
from alertsim.web.map import MAP_STATES

NOW = datetime(2025, 1, 1, 1, 0, tzinfo=UTC)
TEXTS = catalogue("dashboard")


def script() -> str:
    return resources.files("alertsim.web").joinpath("static", "dashboard.js").read_text("utf-8")


def test_every_value_the_page_names_has_its_words() -> None:
    """Each stage, message type, map state, reason, inset and status the page can show has
    a key (so a new one in the vocabulary fails here until it is translated)."""
    keys = ([f"stage.{s}" for s in STAGES] + [f"msgtype.{m}" for m in get_args(MsgType)]
            + [f"state.{s}" for s in MAP_STATES] + [f"reason.{r}" for r in get_args(Reason)]
            + [f"map.inset.{f.frame.name}" for f in layout().insets]
            + ["banner.Exercise", "banner.Test"])
    assert [k for k in keys if k not in TEXTS] == []


def test_every_key_the_page_and_script_use_exists() -> None:
    """Every data-i18n key of the page (both languages) and every literal key of the
    script is in the catalogue."""
    model = LiveModel(status="Exercise", title="t")
    page = render_page(model, NOW, "ja") + render_page(model, NOW, "en")
    used = set(re.findall(r'data-i18n(?:-[a-z-]+)?="([^"]+)"', page))
    used |= set(re.findall(r'\bt\("([a-z_.]+)"', script()))
    prefixes = set(re.findall(r"t\(`([a-z_.]+)\.\$\{", script()))
    assert used
    assert prefixes
    assert sorted(k for k in used if k not in TEXTS) == []
    assert all(any(k.startswith(f"{p}.") for k in TEXTS) for p in prefixes)


def test_the_page_opens_in_japanese() -> None:
    """By default the page is ja (html lang, banner, headings, names); ?lang=en gives the
    same page in English; anything else falls back to ja."""
    model = LiveModel(status="Exercise", title="drill")
    ja = render_page(model, NOW, page_lang(None))
    assert '<html lang="ja">' in ja
    assert TEXTS["banner.Exercise"]["ja"] in ja
    assert "配信メッセージ" in ja
    assert ">東京<" in ja
    en = render_page(model, NOW, page_lang("en"))
    assert '<html lang="en">' in en
    assert "Messages" in en
    assert ">Tokyo<" in en
    assert page_lang("fr") == "ja"


@pytest.mark.parametrize("status", ["Exercise", "Test"])
def test_the_banner_says_exercise_or_test_in_both(status: str) -> None:
    """The status banner is unmistakable in either language: both words in each."""
    word = {"Exercise": ("訓練", "EXERCISE"), "Test": ("試験", "TEST")}[status]
    for lang in ("ja", "en"):
        assert all(w in TEXTS[f"banner.{status}"][lang] for w in word)
