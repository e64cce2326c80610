"""The dashboard's HTTP side: an aiohttp application over a `LiveModel`.

    GET /                    the page (map drawn server-side with the current states)
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
from importlib import resources

from aiohttp import web

from alertsim.web.frames import Broadcaster, encode
from alertsim.web.geometry import prefecture_shapes
from alertsim.web.live import LiveModel, Update
from alertsim.web.map import MAP_CSS, MapOverlay, render_map_svg
from alertsim.web.stream import EventStream

__all__ = ["DashboardServer", "render_page", "snapshot_message"]

STATIC = {"dashboard.js": "text/javascript", "dashboard.css": "text/css"}
NO_STORE = {"Cache-Control": "no-store"}
SimNow = Callable[[], datetime | None]


def snapshot_message(model: LiveModel, sim_now: datetime | None) -> Update:
    """A stream's first message: the whole picture, each event's overlay group included."""
    return {"type": "snapshot", **model.snapshot(sim_now), "tracks": model.track_svgs}


def _banner(status: str) -> str:
    if status == "Test":
        return "TEST ・ テスト ・ simulated alerts, not a real warning"
    return "EXERCISE ・ 訓練 ・ simulated alerts, not a real warning"


def render_page(model: LiveModel, sim_now: datetime | None) -> str:
    """The dashboard page at this moment; the script keeps it live from there."""
    overlay = MapOverlay(tuple(model.tracks[e] for e in sorted(model.tracks)))
    svg = render_map_svg(model.prefectures(), overlay=overlay)
    names = json.dumps({s.code: s.name_en for s in prefecture_shapes()}, ensure_ascii=False)
    clock = model.clock(sim_now)
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>alertsim dashboard: {escape(model.title)}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" href="data:,">
<style>{MAP_CSS}</style><link rel="stylesheet" href="static/dashboard.css">
</head><body data-status="{escape(model.status)}">
<div id="status-banner" role="alert" data-status="{escape(model.status)}">
{escape(_banner(model.status))}</div>
<main>
<section id="map-panel">{svg}
<div class="alertsim-legend"><span class="none">none</span><span class="shelter">shelter</span>
<span class="passed">passed</span><span class="fell">fell</span>
<span class="cancelled">cancelled</span> · track, corridor, ▲ launch, ✕ impact, ● missile</div>
</section>
<aside>
<div id="clock-panel"><div id="title">{escape(model.title)}</div>
<div>Scenario time <b id="sim-clock">{escape(clock["sim_now_jst"] or "-")}</b> JST
· speed <b id="speed">×{model.speed:g}</b></div>
<div class="hint">Operator topic: <code>{escape(model.operator_topic)}</code></div></div>
<h2>Messages</h2>
<div id="log-box"><table id="message-log"><thead><tr><th>time JST</th><th>place</th>
<th>stage</th><th>headline</th><th>identifier</th></tr></thead><tbody></tbody></table></div>
<h2>Prefectures and receipts</h2>
<div id="receipts-box"><table id="receipts"><thead><tr><th>place</th><th>state</th>
<th>receipts</th><th>latency median / max</th></tr></thead><tbody></tbody></table></div>
<div id="errors"></div>
</aside></main>
<script id="prefecture-names" type="application/json">{names}</script>
<script src="static/dashboard.js"></script>
</body></html>"""


class DashboardServer:
    """Serves the page, /api/state and the streams of one model."""

    def __init__(self, model: LiveModel, broadcaster: Broadcaster, sim_now: SimNow) -> None:
        self.model = model
        self.broadcaster = broadcaster
        self.sim_now = sim_now
        self._snapshot: tuple[int, float, bytes] | None = None  # frame, built at, bytes

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

    async def page(self, _request: web.Request) -> web.Response:
        page = render_page(self.model, self.sim_now())
        return web.Response(text=page, content_type="text/html", headers=NO_STORE)

    async def state(self, _request: web.Request) -> web.Response:
        body = json.dumps(self.model.snapshot(self.sim_now()), ensure_ascii=False)
        return web.Response(text=body, content_type="application/json", headers=NO_STORE)

    async def static(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        if name not in STATIC:
            raise web.HTTPNotFound(text="not found")
        body = resources.files(__package__).joinpath("static", name).read_text("utf-8")
        return web.Response(text=body, content_type=STATIC[name], headers=NO_STORE)

    async def stream(self, request: web.Request) -> web.StreamResponse:
        """A snapshot, then every frame, until the page leaves or is dropped."""
        stream = await EventStream.open(request, self.broadcaster.max_buffered)
        self.broadcaster.join(stream, self.snapshot())
        try:
            await stream.pump()
        finally:
            self.broadcaster.leave(stream)
        return stream.response
