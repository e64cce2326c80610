"""The operator console on the dashboard: cancel and close an open event from the page,
once signed in as an operator (docs/operator.md).

    GET  /console/session   {"user", "csrf", "mode"}; opens an anonymous session (cookie)
    POST /console/sign-in   {"user", "password"}: checked by the broker (below)
    POST /console/sign-out
    POST /console/cancel    {"event_id"}: published over MQTT as the signed-in operator;
    POST /console/close     the answer is the service's (`clients.operator`)

Who decides. On a broker with passwords (`broker-config`), the broker: signing in connects
as that user, and a wrong password is the broker's refusal; nothing is stored but the
session, in this process's memory, and the password in it (to publish as that user) until
sign-out or expiry. Whether the user may act is the broker's ACL too: a user that is no
operator is refused at the publish, and the page says so. On an anonymous broker (a
default drill's embedded one) nobody can be checked: the console then takes one user,
`operator`, and a one-time password made at start and printed beside the URL
(`ConsoleSpec.local_password`), and publishes anonymously.

Every POST must carry the session's CSRF token (`X-CSRF-Token`), and an `Origin` (or
`Sec-Fetch-Site`) other than the page's own is refused. The session cookie is HttpOnly,
SameSite=Strict; signing in gives a fresh session id and token.
"""

from __future__ import annotations

import json
import secrets
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from importlib import resources
from typing import Final, Literal, Protocol

import structlog
from aiohttp import web
from pydantic import ValidationError

from alertsim.domain.operator import OperatorAction, operator_name
from alertsim.domain.vocabulary import Action
from alertsim.i18n import catalogue

__all__ = ["COOKIE", "LOCAL_USER", "Answer", "ConsoleSpec", "OperatorLink", "add_console"]

log = structlog.get_logger("alertsim.web")
COOKIE: Final = "alertsim_console"
LOCAL_USER: Final = "operator"  # the one user of an anonymous broker's console
IDLE_S: Final = 30 * 60.0  # a session unused this long is gone
SESSIONS_MAX: Final = 1000  # sessions kept at once (the oldest go first)
_JSON = {"Cache-Control": "no-store"}
_STATIC = {"console.js": "text/javascript", "console.css": "text/css"}
Mode = Literal["broker", "local"]


class Answer(Protocol):
    """What came of an action (`clients.operator.OperatorOutcome`)."""

    @property
    def applied(self) -> bool: ...
    @property
    def verdict(self) -> str: ...
    @property
    def reason(self) -> str: ...
    @property
    def places(self) -> tuple[str, ...]: ...
    @property
    def detail(self) -> str: ...


class OperatorLink(Protocol):
    """The console's way to the service over the broker (`clients.operator.BrokerOperator`,
    injected: the web layer holds no MQTT client of its own)."""

    async def verify(self, user: str, password: str) -> str:
        """"ok", "wrong_password" or "unreachable"."""
        ...

    async def send(self, action: Action, event_id: str, *, user: str | None,
                   password: str | None, by: str | None) -> Answer: ...


@dataclass(frozen=True)
class ConsoleSpec:
    """The console's link to the service; with `local_password` the broker is anonymous
    and this one-time password (printed at start) signs `operator` in."""

    link: OperatorLink
    local_password: str | None = field(default=None, repr=False)

    @classmethod
    def of(cls, link: OperatorLink, *, authenticated: bool) -> ConsoleSpec:
        """`authenticated`: the service signs in to its broker, so the broker checks
        passwords; else a one-time password is made (print it beside the URL)."""
        return cls(link, None if authenticated else secrets.token_urlsafe(9))

    @property
    def mode(self) -> Mode:
        return "local" if self.local_password is not None else "broker"


@dataclass
class _Session:
    csrf: str
    used: float
    user: str | None = None
    password: str | None = field(default=None, repr=False)


class _Sessions:
    """Sessions by id, in memory, bounded, dropped when idle."""

    def __init__(self) -> None:
        self._by_id: OrderedDict[str, _Session] = OrderedDict()

    def get(self, sid: str | None) -> _Session | None:
        now = time.monotonic()
        found = None if sid is None else self._by_id.get(sid)
        if found is None or now - found.used > IDLE_S:
            return None
        found.used = now
        self._by_id.move_to_end(sid or "")
        return found

    def open(self, user: str | None = None, password: str | None = None,
             drop: str | None = None) -> tuple[str, _Session]:
        """A fresh session (id and token), the one at `drop` gone."""
        if drop is not None:
            self._by_id.pop(drop, None)
        while len(self._by_id) >= SESSIONS_MAX:
            self._by_id.popitem(last=False)
        sid = secrets.token_urlsafe(24)
        session = _Session(secrets.token_urlsafe(24), time.monotonic(), user, password)
        self._by_id[sid] = session
        return sid, session


def _reply(status: int, body: dict[str, object], sid: str | None = None) -> web.Response:
    response = web.Response(status=status, text=json.dumps(body, ensure_ascii=False),
                            content_type="application/json", headers=_JSON)
    if sid is not None:
        response.set_cookie(COOKIE, sid, httponly=True, samesite="Strict", path="/")
    return response


def _refused(status: int, error: str, detail: str = "") -> web.Response:
    return _reply(status, {"error": error, "detail": detail})


def _cross_site(request: web.Request) -> bool:
    """An Origin other than the page's own, or a browser saying the request is cross-site."""
    origin = request.headers.get("Origin")
    if origin is not None and origin != f"{request.scheme}://{request.host}":
        return True
    return request.headers.get("Sec-Fetch-Site", "same-origin") not in ("same-origin", "none")


async def _body(request: web.Request) -> dict[str, object]:
    try:
        found = await request.json()
    except ValueError:
        return {}
    return found if isinstance(found, dict) else {}


class Console:
    """The console's routes over one spec and the sessions of this dashboard process."""

    def __init__(self, spec: ConsoleSpec) -> None:
        self.spec = spec
        self.sessions = _Sessions()

    def _checked(self, request: web.Request) -> tuple[_Session | None, web.Response | None]:
        """The request's session once its origin and CSRF token pass; else the refusal."""
        if _cross_site(request):
            return None, _refused(403, "cross_site")
        session = self.sessions.get(request.cookies.get(COOKIE))
        token = request.headers.get("X-CSRF-Token", "")
        if session is None or not secrets.compare_digest(token.encode(),
                                                         session.csrf.encode()):
            return None, _refused(403, "csrf")
        return session, None

    async def session(self, request: web.Request) -> web.Response:
        sid = request.cookies.get(COOKIE)
        found = self.sessions.get(sid)
        if found is None:
            sid, found = self.sessions.open()
        return _reply(200, {"user": found.user, "csrf": found.csrf, "mode": self.spec.mode,
                            "texts": catalogue("console")}, sid)

    async def sign_in(self, request: web.Request) -> web.Response:
        session, refusal = self._checked(request)
        if session is None:
            return refusal or _refused(403, "csrf")
        body = await _body(request)
        user, password = body.get("user"), body.get("password")
        if not isinstance(user, str) or not isinstance(password, str) or not user:
            return _refused(400, "missing")
        verdict = await self._verify(user, password)
        if verdict != "ok":
            log.warning("console.sign_in_refused", user=user, why=verdict)
            return _refused(401 if verdict == "wrong_password" else 502, verdict)
        sid, fresh = self.sessions.open(user, password, drop=request.cookies.get(COOKIE))
        log.info("console.signed_in", user=user)
        return _reply(200, {"user": user, "csrf": fresh.csrf, "mode": self.spec.mode}, sid)

    async def sign_out(self, request: web.Request) -> web.Response:
        session, refusal = self._checked(request)
        if session is None:
            return refusal or _refused(403, "csrf")
        sid, fresh = self.sessions.open(drop=request.cookies.get(COOKIE))
        return _reply(200, {"user": None, "csrf": fresh.csrf, "mode": self.spec.mode}, sid)

    async def cancel(self, request: web.Request) -> web.Response:
        return await self._act(request, "cancel")

    async def close(self, request: web.Request) -> web.Response:
        return await self._act(request, "close")

    async def _act(self, request: web.Request, action: Action) -> web.Response:
        session, refusal = self._checked(request)
        if session is None:
            return refusal or _refused(403, "csrf")
        if session.user is None:
            return _refused(401, "signed_out")
        event_id = (await _body(request)).get("event_id")
        try:
            OperatorAction.model_validate({"action": action, "event_id": event_id})
        except ValidationError:
            return _refused(400, "event_id")
        outcome = await self._send(action, str(event_id), session)
        log.info("console.action", user=session.user, action=action, event_id=event_id,
                 verdict=outcome.verdict)
        return _reply(200, {"applied": outcome.applied, "verdict": outcome.verdict,
                            "reason": outcome.reason, "places": list(outcome.places),
                            "detail": outcome.detail, "event_id": event_id,
                            "action": action})

    async def _send(self, action: Action, event_id: str, session: _Session) -> Answer:
        local = self.spec.mode == "local"  # an anonymous broker: publish as nobody
        return await self.spec.link.send(
            action, event_id, user=None if local else session.user,
            password=None if local else session.password, by=operator_name(session.user))

    async def _verify(self, user: str, password: str) -> str:
        """"ok", "wrong_password" or "unreachable": the one-time password, or the broker."""
        local = self.spec.local_password
        if local is None:
            return await self.spec.link.verify(user, password)
        same = secrets.compare_digest(password.encode(), local.encode())
        return "ok" if same and user == LOCAL_USER else "wrong_password"


async def _static(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    if name not in _STATIC:
        raise web.HTTPNotFound(text="not found")
    body = resources.files(__package__).joinpath("static", name).read_text("utf-8")
    return web.Response(text=body, content_type=_STATIC[name], headers=_JSON)


async def _off(_request: web.Request) -> web.Response:
    return _reply(200, {"user": None, "csrf": None, "mode": "off",
                        "texts": catalogue("console")})


async def _off_post(_request: web.Request) -> web.Response:
    return _refused(404, "off")


def add_console(app: web.Application, spec: ConsoleSpec | None) -> None:
    """Add the console's routes to the dashboard's application; with no spec (a dashboard
    that was given no broker) the page's console says it is off."""
    app.router.add_get("/console/static/{name}", _static)
    if spec is None:
        app.router.add_get("/console/session", _off)
        app.router.add_post("/console/{verb}", _off_post)
        return
    console = Console(spec)
    app.router.add_get("/console/session", console.session)
    app.router.add_post("/console/sign-in", console.sign_in)
    app.router.add_post("/console/sign-out", console.sign_out)
    app.router.add_post("/console/cancel", console.cancel)
    app.router.add_post("/console/close", console.close)
