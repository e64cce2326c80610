"""The builder's page: the map, the draft's form and the preview's places, every string
from the `builder` catalogue (`alertsim/i18n/builder.json`) in the page's language, with
the catalogue embedded so that the script switches language without a round trip.

Page contract (the script and the tests read it): form fields by id (`launch_lat`,
`target_lat`, `azimuth`, ...); `#click-mode` says what a map click sets; the preview
fills `#detections` (`li[data-sequence] li[data-code]`: each detection's warned
prefectures), `#prefectures` (`tr[data-code]`, its messages as `li[data-stage]`),
`#refusals`, `#open-at-end` and `#yaml`; `#errors` lists a refused draft's problems.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from html import escape

from alertsim.i18n import Lang, catalogue, text
from alertsim.web.builder_map import ELEMENT_ID
from alertsim.web.map import MAP_CSS, MapOverlay, render_map_svg

__all__ = ["render_builder_page"]

Site = Mapping[str, object]
AREA = "builder"
DEFAULT_TARGET = ("42.0", "147.5")  # east of Hokkaido, in the Pacific: a first picture


def _t(key: str, lang: Lang, tag: str = "span", attrs: str = "") -> str:
    """An element holding the key's text, marked for the script's language switch."""
    return (f'<{tag} data-i18n="{escape(key, quote=True)}"{attrs}>'
            f"{escape(text(AREA, key, lang))}</{tag}>")


def _options(prefix: str, values: Sequence[str], lang: Lang) -> str:
    return "".join(_t(f"{prefix}.{v}", lang, "option", f' value="{escape(v, quote=True)}"')
                   for v in values)


def _select(name: str, values: Sequence[str], lang: Lang) -> str:
    return f'<select id="{name}">{_options(name, values, lang)}</select>'


def _field(key: str, lang: Lang, control: str) -> str:
    return f"<label>{_t(key, lang)}{control}</label>"


def _number(name: str, value: str, step: str = "any") -> str:
    return f'<input id="{name}" type="number" step="{step}" value="{value}">'


def _site_options(sites: Sequence[Site], lang: Lang) -> str:
    rows = []
    for n, s in enumerate(sites):
        name = s["name_ja"] if lang == "ja" else s["name_en"]
        chosen = " selected" if n == 0 else ""
        rows.append(f'<option value="{escape(str(s["key"]), quote=True)}"{chosen} '
                    f'data-lat="{s["lat"]}" data-lon="{s["lon"]}" '
                    f'data-name-ja="{escape(str(s["name_ja"]), quote=True)}" '
                    f'data-name-en="{escape(str(s["name_en"]), quote=True)}">'
                    f"{escape(str(name))}</option>")
    return _t("site.custom", lang, "option", ' value=""') + "".join(rows)


def _scenario_section(lang: Lang, launch: datetime) -> str:
    policies = ("auto", "block-2017", "prefecture", "prefecture+adjacent")
    title = escape(text(AREA, "scenario.default_title", lang), quote=True)
    return f"""<fieldset><legend>{_t("section.scenario", lang)}</legend>
{_field("field.title", lang, f'<input id="title" value="{title}">')}
{_field("field.event_id", lang, f'<input id="event_id" value="builder-{launch:%Y%m%d-%H%M}">')}
{_field("field.status", lang, _select("status", ("exercise", "test"), lang))}
{_field("field.policy", lang, _select("policy", policies, lang))}
{_field("field.object", lang, _select("object", ("ballistic_missile", "space_launch_vehicle"),
                                      lang))}
{_field("field.notes", lang, '<textarea id="notes" rows="2"></textarea>')}</fieldset>"""


def _launch_section(lang: Lang, sites: Sequence[Site], launch: datetime) -> str:
    first = sites[0] if sites else {"lat": 39.66, "lon": 124.705}
    return f"""<fieldset><legend>{_t("section.launch", lang)}</legend>
{_field("field.site", lang, f'<select id="site">{_site_options(sites, lang)}</select>')}
{_field("field.lat", lang, _number("launch_lat", str(first["lat"])))}
{_field("field.lon", lang, _number("launch_lon", str(first["lon"])))}
{_field("field.launch_time", lang,
        f'<input id="launch_time" type="datetime-local" value="{launch:%Y-%m-%dT%H:%M}">')}
</fieldset>"""


def _aim_section(lang: Lang) -> str:
    radio = ('<label class="inline"><input type="radio" name="aim_by" value="{0}"{1}>'
             '{2}</label>')
    return f"""<fieldset><legend>{_t("section.aim", lang)}</legend>
<div>{radio.format("target", " checked", _t("aim.target", lang))}
{radio.format("bearing", "", _t("aim.bearing", lang))}</div>
{_field("field.lat", lang, _number("target_lat", DEFAULT_TARGET[0]))}
{_field("field.lon", lang, _number("target_lon", DEFAULT_TARGET[1]))}
{_field("field.azimuth", lang, _number("azimuth", ""))}
{_field("field.range", lang, _number("range", ""))}
{_field("field.flight_min", lang, _number("flight_min", ""))}</fieldset>
<fieldset><legend>{_t("section.detection", lang)}</legend>
{_field("field.detect_at", lang, '<input id="detect_at" value="00:02:00">')}
{_field("field.cross", lang, _number("cross", "25"))}
{_field("field.along", lang, _number("along", "100"))}</fieldset>"""


def _timeline_section(lang: Lang) -> str:
    return f"""<fieldset><legend>{_t("section.timeline", lang)}</legend>
<div id="updates"></div><div id="actions"></div>
<button type="button" id="add-update">{_t("button.add_update", lang)}</button>
<button type="button" id="add-cancel">{_t("button.add_cancel", lang)}</button>
<button type="button" id="add-close">{_t("button.add_close", lang)}</button></fieldset>"""


def _preview_section(lang: Lang) -> str:
    return f"""<section id="preview"><h2>{_t("section.preview", lang)}</h2>
<div id="busy" hidden>{_t("preview.busy", lang)}</div>
<div id="errors" role="alert" hidden></div><p id="summary"></p>
<ol id="detections"></ol>
<table id="prefectures"><thead><tr><th>{_t("table.place", lang)}</th>
<th>{_t("table.reason", lang)}</th><th>{_t("table.window", lang)}</th>
<th>{_t("table.messages", lang)}</th></tr></thead><tbody></tbody></table>
<p id="refusals"></p><p id="open-at-end" class="warning"></p></section>"""


def _save_section(lang: Lang) -> str:
    return f"""<section id="save-panel"><h2>{_t("section.save", lang)}</h2>
{_field("field.file", lang, '<input id="file" value="">')}
<button type="button" id="save">{_t("button.save", lang)}</button>
<span id="saved"></span><br>
<button type="button" id="start-drill">{_t("button.drill", lang)}</button>
<span id="drill-status"></span> <a id="dashboard-link" target="_blank" hidden></a>
<details><summary>{_t("section.yaml", lang)}</summary><pre id="yaml"></pre></details>
</section>"""


def _sources(sites: Sequence[Site], lang: Lang) -> str:
    rows = "".join(f'<li><span class="site-name" data-name-ja="{escape(str(s["name_ja"]))}" '
                   f'data-name-en="{escape(str(s["name_en"]))}">'
                   f'{escape(str(s["name_ja"] if lang == "ja" else s["name_en"]))}</span> '
                   f'{s["lat"]}N {s["lon"]}E: {escape(str(s["source"]))}</li>' for s in sites)
    return f'<details id="sources"><summary>{_t("section.sources", lang)}</summary>' \
           f"<ul>{rows}</ul></details>"


def render_builder_page(lang: Lang, sites: Sequence[Site], launch: datetime) -> str:
    """The whole page in `lang`, the launch time preset to `launch` (JST)."""
    svg = render_map_svg(overlay=MapOverlay(()), element_id=ELEMENT_ID)
    strings = json.dumps(catalogue(AREA), ensure_ascii=False).replace("</", "<\\/")
    return f"""<!doctype html>
<html lang="{lang}"><head><meta charset="utf-8">
<title data-i18n="page.title">{escape(text(AREA, "page.title", lang))}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" href="data:,">
<style>{MAP_CSS}</style><link rel="stylesheet" href="static/builder.css">
</head><body>
<header><h1>{_t("page.title", lang)}</h1>
<button type="button" id="lang-toggle">{_t("lang.switch", lang)}</button>
<div id="banner" role="note">{_t("page.banner", lang)}</div></header>
<main><section id="map-panel">
<label>{_t("map.click", lang)} <select id="click-mode">
{_t("map.mode.launch", lang, "option", ' value="launch"')}
{_t("map.mode.target", lang, "option", ' value="target" selected')}</select></label>
{svg}<p class="hint">{_t("map.legend", lang)}</p>{_sources(sites, lang)}</section>
<aside><form id="draft" autocomplete="off">{_scenario_section(lang, launch)}
{_launch_section(lang, sites, launch)}{_aim_section(lang)}{_timeline_section(lang)}</form>
{_preview_section(lang)}{_save_section(lang)}</aside></main>
<script id="i18n" type="application/json">{strings}</script>
<script src="static/builder.js"></script>
</body></html>"""
