"""The dashboard's HTTP side: a Starlette app over a `LiveModel`, and a fan-out hub.

    GET /                    the page (map drawn server-side with the current states)
    GET /api/state           {"status", "prefectures": {"01": "none", ...}, "events", ...}
    GET /api/stream          server-sent events: a snapshot, then every update as it happens
    GET /static/{name}       the page's own script and stylesheet (no external request)
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Callable
from datetime import datetime
from html import escape
from importlib import resources

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from alertsim.web.geometry import prefecture_shapes
from alertsim.web.live import LiveModel, Update
from alertsim.web.map import MAP_CSS, MapOverlay, render_map_svg, render_overlay_svg

__all__ = ["Hub", "build_app", "overlay_update"]

STATIC = {"dashboard.js": "text/javascript; charset=utf-8",
          "dashboard.css": "text/css; charset=utf-8"}
CLIENT_BACKLOG = 1_000
SimNow = Callable[[], datetime | None]


class Hub:
    """Fan-out of updates to every open stream; a stream that falls behind is dropped."""

    def __init__(self) -> None:
        self._queues: set[asyncio.Queue[Update | None]] = set()

    def subscribe(self) -> asyncio.Queue[Update | None]:
        queue: asyncio.Queue[Update | None] = asyncio.Queue(maxsize=CLIENT_BACKLOG)
        self._queues.add(queue)
        return queue

    def unsubscribe(self, queue: asyncio.Queue[Update | None]) -> None:
        self._queues.discard(queue)

    def publish(self, update: Update) -> None:
        for queue in list(self._queues):
            try:
                queue.put_nowait(update)
            except asyncio.QueueFull:
                self._queues.discard(queue)  # its page reconnects and gets a fresh snapshot

    def close(self) -> None:
        """End every stream (the server is stopping)."""
        for queue in list(self._queues):
            with contextlib.suppress(asyncio.QueueFull):  # a full queue's stream is gone
                queue.put_nowait(None)
        self._queues.clear()


def overlay_update(model: LiveModel) -> Update:
    overlay = MapOverlay(tuple(model.tracks[e] for e in sorted(model.tracks)))
    return {"type": "overlay", "svg": render_overlay_svg(overlay), "events": model.events()}


def _sse(update: Update) -> bytes:
    return f"data: {json.dumps(update, ensure_ascii=False)}\n\n".encode()


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


def build_app(model: LiveModel, hub: Hub, sim_now: SimNow) -> Starlette:
    """The dashboard app; `sim_now` reads the scenario clock."""

    async def page(request: Request) -> Response:
        return HTMLResponse(render_page(model, sim_now()),
                            headers={"Cache-Control": "no-store"})

    async def state(request: Request) -> Response:
        return JSONResponse(model.snapshot(sim_now()), headers={"Cache-Control": "no-store"})

    async def static(request: Request) -> Response:
        name = request.path_params["name"]
        if name not in STATIC:
            return Response("not found", status_code=404)
        body = resources.files(__package__).joinpath("static", name).read_bytes()
        return Response(body, media_type=STATIC[name])

    async def stream(request: Request) -> Response:
        queue = hub.subscribe()

        async def events() -> AsyncIterator[bytes]:
            try:
                yield _sse({"type": "snapshot", **model.snapshot(sim_now())})
                yield _sse(overlay_update(model))
                while (update := await queue.get()) is not None:
                    yield _sse(update)
            finally:
                hub.unsubscribe(queue)

        return StreamingResponse(events(), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-store"})

    return Starlette(routes=[Route("/", page), Route("/api/state", state),
                             Route("/api/stream", stream),
                             Route("/static/{name}", static)])
