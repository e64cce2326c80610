"""The dashboard's HTTP side: an aiohttp application over a `LiveModel`.

    GET /                    the page (map drawn server-side with the current states), in
                             Japanese, or `?lang=en`; a toggle switches it in place
    GET /api/state           {"status", "prefectures": {"01": "none", ...}, "events", ...}
    GET /api/stream          server-sent events: a snapshot, then frames of changes
                             (`alertsim.web.frames`)
    GET /static/{name}       the page's own script and stylesheet (no external request)

Why aiohttp and not an ASGI server: a stream must be dropped the moment its client stops
reading, and an ASGI app only sees `send`, which waits for the client and offers no way
to abort the connection. aiohttp hands the handler its request's transport (public API):
a stream is written without waiting and a client over its byte budget is aborted
(`alertsim.web.stream`, `frames.Broadcaster`).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from datetime import datetime
from html import escape

from aiohttp import web

from alertsim.i18n import DEFAULT_PAGE_LANG, LANGS, Lang, catalogue, text
from alertsim.web.frames import Broadcaster, encode
from alertsim.web.geometry import prefecture_shapes
from alertsim.web.live import LiveModel, Update
from alertsim.web.local_http import NO_STORE, static_file
from alertsim.web.map import MAP_CSS, MAP_STATES, MapOverlay, render_map_svg
from alertsim.web.stream import EventStream

__all__ = ["DashboardServer", "page_lang", "render_page", "snapshot_message"]

STATIC = {"dashboard.js": "text/javascript", "dashboard.css": "text/css"}
SimNow = Callable[[], datetime | None]
AREA = "dashboard"  # the page's i18n catalogue (alertsim/i18n/dashboard.json)
LOG_COLUMNS = ("log.time", "log.event", "log.place", "log.stage", "log.headline",
               "log.identifier")
PLACE_COLUMNS = ("places.place", "places.state", "places.events", "places.reason",
                 "places.receipts", "places.latency")


def snapshot_message(model: LiveModel, sim_now: datetime | None) -> Update:
    """A stream's first message: the whole picture, each event's overlay group included."""
    return {"type": "snapshot", **model.snapshot(sim_now), "tracks": model.track_svgs}


def _t(key: str, lang: Lang, tag: str = "span", **fields: object) -> str:
    """An element whose text comes from the catalogue; the script swaps it on a toggle
    (its `data-*` attributes are the text's fields)."""
    data = "".join(f' data-{k}="{escape(str(v), quote=True)}"' for k, v in fields.items())
    return (f'<{tag} data-i18n="{key}"{data}>{escape(text(AREA, key, lang, **fields))}'
            f"</{tag}>")


def page_lang(requested: str | None) -> Lang:
    """The page's language: `?lang=ja|en`, Japanese by default."""
    return next((lang for lang in LANGS if lang == requested), DEFAULT_PAGE_LANG)


def _names() -> str:
    """Every prefecture's names for the script: code -> {"ja", "en"}."""
    return json.dumps({s.code: {"ja": s.name_ja, "en": s.name_en} for s in prefecture_shapes()},
                      ensure_ascii=False)


def _legend(lang: Lang) -> str:
    states = "".join(_t(f"state.{s}", lang).replace("<span ", f'<span class="{s}" ', 1)
                     for s in MAP_STATES)
    last = _t("legend.last", lang).replace("<span ", '<span class="last" ', 1)
    return f'<div class="alertsim-legend">{states}{last} · {_t("legend.overlay", lang)}</div>'



def _tables(lang: Lang) -> str:
    def head(keys: tuple[str, ...]) -> str:
        return "".join(_t(k, lang, "th") for k in keys)

    return f"""<h2>{_t("heading.messages", lang)}</h2>
<div id="log-box"><table id="message-log"><thead><tr>{head(LOG_COLUMNS)}</tr></thead>
<tbody></tbody></table></div>
<h2>{_t("heading.places", lang)}</h2>
<div id="receipts-box"><table id="receipts"><thead><tr>{head(PLACE_COLUMNS)}</tr></thead>
<tbody></tbody></table></div>"""


def _clock_panel(model: LiveModel, sim_now: datetime | None, lang: Lang) -> str:
    clock = model.clock(sim_now)
    return f"""<div id="clock-panel"><button id="lang-toggle" type="button" data-i18n="lang.switch"
 data-i18n-title="lang.switch_title" title="{escape(text(AREA, "lang.switch_title", lang))}"
 >{escape(text(AREA, "lang.switch", lang))}</button>
<div id="title">{escape(model.title)}</div>
<div>{_t("clock.scenario_time", lang)}
<b id="sim-clock">{escape(clock["sim_now_jst"] or "-")}</b>
{_t("clock.jst", lang)} · {_t("clock.speed", lang)} <b id="speed">×{model.speed:g}</b></div>
<div class="hint">{_t("clock.operator_topic", lang)}
<code>{escape(model.operator_topic)}</code></div></div>"""


def render_page(model: LiveModel, sim_now: datetime | None, lang: Lang = DEFAULT_PAGE_LANG,
                ) -> str:
    """The dashboard page at this moment, in `lang`; the script keeps it live from there
    and switches its language in place."""
    overlay = MapOverlay(tuple(model.tracks[e] for e in sorted(model.tracks)
                               if e in model.track_svgs))
    svg = render_map_svg(model.prefectures(), overlay=overlay, lang=lang,
                         last=model.last_states())
    status = escape(model.status, quote=True)
    texts = json.dumps(catalogue(AREA), ensure_ascii=False)
    return f"""<!doctype html>
<html lang="{lang}"><head><meta charset="utf-8">
{_t("page.title", lang, "title", title=model.title)}
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" href="data:,">
<style>{MAP_CSS}</style><link rel="stylesheet" href="static/dashboard.css">
</head><body data-status="{status}">
<div id="status-banner" role="alert" data-status="{status}" data-i18n="banner.{status}">
{escape(text(AREA, f"banner.{model.status}", lang))}</div>
<main>
<section id="map-panel">{svg}
{_legend(lang)}
</section>
<aside>
{_clock_panel(model, sim_now, lang)}
{_tables(lang)}
<div id="errors"></div>
</aside></main>
<script id="prefecture-names" type="application/json">{_names()}</script>
<script id="dashboard-texts" type="application/json">{texts}</script>
<script src="static/dashboard.js"></script><script src="console/static/console.js"></script>
</body></html>"""


class DashboardServer:
    """Serves the page, /api/state and the streams of one model."""

    def __init__(self, model: LiveModel, broadcaster: Broadcaster, sim_now: SimNow) -> None:
        self.model = model
        self.broadcaster = broadcaster
        self.sim_now = sim_now
        self._snapshot: tuple[int, float, bytes] | None = None  # frame, built at, bytes
        # The map's outlines, labels and neighbouring land are computed once per process:
        # here, before the URL is given out, not on the first page's request.
        render_map_svg()

    def snapshot(self) -> bytes:
        """The encoded snapshot, shared by the streams opened within one frame (a crowd of
        pages reconnecting at once costs one encoding)."""
        now = asyncio.get_running_loop().time()
        cached = self._snapshot
        if (cached is None or cached[0] != self.broadcaster.frames
                or now - cached[1] > self.broadcaster.gap_s):
            message = encode(snapshot_message(self.model, self.sim_now()))
            self._snapshot = cached = (self.broadcaster.frames, now, message)
        return cached[2]

    def application(self) -> web.Application:
        """The routes, as an aiohttp application (`serving` runs it on its socket)."""
        app = web.Application()
        app.router.add_get("/", self.page)
        app.router.add_get("/api/state", self.state)
        app.router.add_get("/api/stream", self.stream)
        app.router.add_get("/static/{name}", self.static)
        return app

    async def page(self, request: web.Request) -> web.Response:
        page = render_page(self.model, self.sim_now(), page_lang(request.query.get("lang")))
        return web.Response(text=page, content_type="text/html", headers=NO_STORE)

    async def state(self, _request: web.Request) -> web.Response:
        body = json.dumps(self.model.snapshot(self.sim_now()), ensure_ascii=False)
        return web.Response(text=body, content_type="application/json", headers=NO_STORE)

    async def static(self, request: web.Request) -> web.Response:
        return static_file(request.match_info["name"], STATIC)

    async def stream(self, request: web.Request) -> web.StreamResponse:
        """A snapshot, then every frame, until the page leaves or is dropped."""
        stream = await EventStream.open(request, self.broadcaster.max_buffered)
        self.broadcaster.join(stream, self.snapshot())
        try:
            await stream.pump()
        finally:
            self.broadcaster.leave(stream)
        return stream.response
