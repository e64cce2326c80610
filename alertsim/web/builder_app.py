"""The scenario builder's HTTP side (`alertsim builder`): an aiohttp application over a
`BuilderBackend`, which the CLI wires in (`alertsim.builder.backend.Builder`), so the web
layer needs nothing of the drills.

    GET  /                  the page (?lang=ja|en; default the server's language)
    GET  /static/{name}     builder.js, builder.css (no external request)
    POST /api/preview       a draft -> its preview (JSON), its tracks as SVG per map
                            frame and each prefecture's map state
    POST /api/locate        {"x", "y"} in map units -> {"lat", "lon"}
    POST /api/save          {"draft", "name"} -> {"path"}: the scenario written
    POST /api/drill         {"name"} -> {"url"}: its drill started, the dashboard's URL

A body that is not JSON, or a draft the rules refuse, gets 400 and {"errors": [...]}, one
line per problem naming its field; nothing else answers 400.
"""

from __future__ import annotations

import contextlib
import json
import socket
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

from aiohttp import web

from alertsim.domain.detection import Detection
from alertsim.errors import InputError, ScenarioError
from alertsim.i18n import LANGS, Lang
from alertsim.web.builder_map import locate, overlay_svg, preview_states
from alertsim.web.builder_page import render_builder_page
from alertsim.web.local_http import NO_STORE, static_file

__all__ = ["BuilderBackend", "BuilderServer", "Previewed", "serve_builder"]

STATIC = {"builder.js": "text/javascript", "builder.css": "text/css"}
Handler = Callable[[Any], Awaitable[dict[str, Any]]]


class Previewed(Protocol):
    """A draft's preview, as the server needs it."""

    @property
    def detections(self) -> tuple[Detection, ...]: ...

    def summary(self) -> dict[str, Any]: ...

    def stages(self) -> dict[str, list[str]]: ...


class BuilderBackend(Protocol):
    """What the page asks of the builder; InputError for bad input."""

    def sites(self) -> Sequence[Mapping[str, object]]: ...

    def preview(self, body: object) -> Previewed: ...

    def save(self, body: object) -> Path: ...

    async def start_drill(self, body: object) -> str: ...

    async def close(self) -> None: ...


def _problems(exc: InputError | ScenarioError) -> list[str]:
    return exc.problems if isinstance(exc, InputError) else str(exc).splitlines()


class BuilderServer:
    """Serves the page and its JSON endpoints over one backend."""

    def __init__(self, backend: BuilderBackend, lang: Lang,
                 launch: Callable[[], datetime]) -> None:
        self.backend = backend
        self.lang = lang
        self.launch = launch  # the launch time a new page starts from (JST)

    def application(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/", self.page)
        app.router.add_get("/static/{name}", self.static)
        for path, handler in (("/api/preview", self.preview), ("/api/locate", self.locate),
                              ("/api/save", self.save), ("/api/drill", self.drill)):
            app.router.add_post(path, self._json(handler))
        return app

    def _json(self, handler: Handler) -> Callable[[web.Request], Awaitable[web.Response]]:
        """The handler over the request's JSON body; 400 with the problems it names."""
        async def respond(request: web.Request) -> web.Response:
            try:
                body = json.loads(await request.read())
            except (json.JSONDecodeError, UnicodeDecodeError):
                return _answer({"errors": ["body: not JSON"]}, 400)
            try:
                return _answer(await handler(body))
            except (InputError, ScenarioError) as exc:
                return _answer({"errors": _problems(exc)}, 400)
        return respond

    async def page(self, request: web.Request) -> web.Response:
        asked = request.query.get("lang")
        lang = next((known for known in LANGS if known == asked), self.lang)
        page = render_builder_page(lang, self.backend.sites(), self.launch())
        return web.Response(text=page, content_type="text/html", headers=NO_STORE)

    async def static(self, request: web.Request) -> web.Response:
        return static_file(request.match_info["name"], STATIC)

    async def preview(self, body: object) -> dict[str, Any]:
        previewed = self.backend.preview(body)
        return {**previewed.summary(), "overlay": overlay_svg(previewed.detections),
                "states": preview_states(previewed.stages())}

    async def locate(self, body: object) -> dict[str, Any]:
        point = body if isinstance(body, dict) else {}
        x, y = point.get("x"), point.get("y")
        if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in (x, y)):
            raise InputError("point", ["x and y: numbers (map units)"])
        found = locate(float(x), float(y))  # type: ignore[arg-type]
        if found is None:
            raise InputError("point", ["off the map"])
        return {"lat": round(found[0], 4), "lon": round(found[1], 4)}

    async def save(self, body: object) -> dict[str, Any]:
        path = self.backend.save(body)
        return {"path": str(path), "name": path.name}

    async def drill(self, body: object) -> dict[str, Any]:
        return {"url": await self.backend.start_drill(body)}


def _answer(body: dict[str, Any], status: int = 200) -> web.Response:
    return web.Response(text=json.dumps(body, ensure_ascii=False), status=status,
                        content_type="application/json", headers=NO_STORE)


@contextlib.asynccontextmanager
async def serve_builder(server: BuilderServer, sock: socket.socket) -> AsyncIterator[str]:
    """Serve the builder on `sock` while the block runs; yields its URL. The backend is
    closed (its drills ended) afterwards."""
    runner = web.AppRunner(server.application(), access_log=None)
    await runner.setup()
    try:
        await web.SockSite(runner, sock).start()
        yield f"http://127.0.0.1:{sock.getsockname()[1]}/"
    finally:
        await runner.cleanup()
        await server.backend.close()
