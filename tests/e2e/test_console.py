"""The operator console on the dashboard (Playwright + Debian chromium, the generated broker,
the dashboard in its own process): signed out or with a wrong password nothing is sent, a
cross-site POST is refused, a signed-in cancel is applied, shown and in the audit log."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import aiohttp
import pytest

from alertsim.adapters.mqtt.link import run_link
from alertsim.adapters.sqlite.store import Store
from alertsim.clients.operator import BrokerOperator
from alertsim.domain.prefectures import Atlas
from alertsim.domain.topics import TopicTree
from alertsim.drills.report import build_report
from alertsim.drills.report.html import build_html
from alertsim.i18n import text
from alertsim.mqtt.url import parse_broker_url
from alertsim.service.clock import ScaledClock
from alertsim.service.config import ServiceConfig
from alertsim.service.service import Service
from alertsim.testing import DEFAULT_LAUNCH_TIME, eventually, make_detection
from alertsim.web.console import COOKIE, ConsoleSpec
from alertsim.web.dashboard import bind, spec_of
from alertsim.web.frames import MAX_BUFFERED
from alertsim.web.process import dashboard_process
from tests.browser import Watched, artifacts_dir, chromium_page
from tests.integration.test_broker_config import MOSQUITTO, Broker, _broker

pytestmark = [pytest.mark.mosquitto, pytest.mark.timeout(120),
              pytest.mark.skipif(MOSQUITTO is None, reason="needs the mosquitto binary")]
ROOT = "alertsim/v1"
EVENT = "console-aomori"
OVER_AOMORI = make_detection((40.7, 126.4), (33.63, 178.2), 40, 300, event_id=EVENT,
                             flight=timedelta(minutes=22))
SESSION_JS = """async () => (await fetch("console/session")).json()"""
POST_JS = """async ([path, token, eventId]) => {
  const r = await fetch(path, {method: "POST", headers: {"Content-Type": "application/json",
    "X-CSRF-Token": token}, body: JSON.stringify({event_id: eventId})});
  return [r.status, await r.json()];
}"""


@dataclass
class Drill:
    broker: Broker
    service: Service
    store: Store
    url: str

    def password(self, user: str) -> str:
        users = self.broker.credentials["users"]
        assert isinstance(users, dict)
        return str(users[user]["password"])


@pytest.fixture
async def drill(atlas: Atlas, tmp_path: Path) -> AsyncIterator[Drill]:
    """A service on the generated broker with Hokkaido and Aomori sheltering, and its
    dashboard (own process) with the console on the operators' listener."""
    async with _broker(tmp_path / "broker") as broker, \
            await Store.open(tmp_path / "svc.db") as store:
        service = Service(atlas=atlas, store=store.record,
                          clock=ScaledClock(start=DEFAULT_LAUNCH_TIME, speed=1.0),
                          config=ServiceConfig(topics=TopicTree(ROOT)))
        connected = asyncio.Event()
        tasks = [asyncio.create_task(service.run_timers()),
                 asyncio.create_task(run_link(service, url=broker.url("service-exercise"),
                                              protocol="5", client_id="svc",
                                              connected=connected))]
        queue = service.events.subscribe()
        sock = bind(0)
        operators = parse_broker_url(broker.url("operator")).without_credentials()
        console = ConsoleSpec.of(BrokerOperator(operators, ROOT), authenticated=True)
        spec = dataclasses.replace(spec_of(service, None, "console test", MAX_BUFFERED),
                                   console=console)
        try:
            await asyncio.wait_for(connected.wait(), 10)
            async with dashboard_process(spec, sock, queue) as url:
                assert await service.accept_detection(
                    OVER_AOMORI.model_dump_json().encode())
                await eventually(service.drained, what="the shelter alerts published")
                yield Drill(broker, service, store, url)
        finally:
            sock.close()
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)


async def sign_in(page: Watched, user: str, password: str) -> None:
    form = page.page.locator("#console-sign-in")
    await form.locator("input[name=user]").fill(user)
    await form.locator("input[name=password]").fill(password)
    await form.locator("button[type=submit]").click()


async def message(page: Watched) -> tuple[str, str, str]:
    """The console's last answer: (applied | refused, its code, its text)."""
    found = page.page.locator("#console-message:not(.pending)")
    await found.wait_for(timeout=15_000)
    return ((await found.get_attribute("class") or ""),
            (await found.get_attribute("data-code") or ""), await found.inner_text())


async def test_console_refuses_then_applies_a_signed_in_cancel(drill: Drill,
                                                                tmp_path: Path) -> None:
    """Signed out: refused; wrong password: refused; signed in: the cancel is applied,
    shown with both prefectures, and in the audit log as the operator's."""
    async with chromium_page() as page:
        page.page.on("dialog", lambda d: asyncio.ensure_future(d.accept()))
        await page.page.goto(drill.url)
        await page.page.locator("#console-sign-in").wait_for()
        session = await page.page.evaluate(SESSION_JS)
        assert session["user"] is None
        status, body = await page.page.evaluate(POST_JS, ["console/cancel", session["csrf"],
                                                              EVENT])
        assert (status, body["error"]) == (401, "signed_out")

        await sign_in(page, "operator", "not-the-password")
        lang = await page.page.evaluate("document.documentElement.lang")
        wrong = text("console", "error.wrong_password", "en" if lang == "en" else "ja")
        assert await message(page) == ("refused", "wrong_password", wrong)
        assert await page.page.locator("#console-user").count() == 0

        await sign_in(page, "operator", drill.password("operator"))
        await page.page.locator("#console-user").wait_for()
        await page.page.locator(f"button.console-cancel[data-event='{EVENT}']").click()
        kind, code, said = await message(page)
        assert (kind, code) == ("applied", "applied"), said
        assert "01, 02" in said
        shots = artifacts_dir(tmp_path, "console")
        await page.page.screenshot(path=str(shots / "console-after-cancel.png"), full_page=True)
    [row] = await drill.store.views.audit()
    assert (row.by, row.action, row.event_id, row.answer) == ("operator", "cancel", EVENT,
                                                              "applied")
    cancels = [r.prefecture for r in await drill.store.views.outbox(kind="alert")
               if r.stage == "cancel"]
    assert sorted(cancels) == ["01", "02"]
    report = await build_report(drill.store)  # and in the report handed over
    assert [(a.by, a.action, a.event_id, a.answer) for a in report.audit] == [
        ("operator", "cancel", EVENT, "applied")]
    page = await build_html(drill.store, report, "en")
    audit = page[page.index("<table id='audit'>"):]
    audit = audit[:audit.index("</table>")]
    assert "<td>operator</td>" in audit
    assert f"<td>{EVENT}</td>" in audit


async def test_cross_site_posts_are_refused(drill: Drill) -> None:
    """With a signed-in session's cookie: no token, a foreign token, or a foreign Origin
    (even with the right token) is refused, and nothing reaches the service."""
    async with chromium_page() as page:
        await page.page.goto(drill.url)
        await page.page.locator("#console-sign-in").wait_for()
        await sign_in(page, "operator", drill.password("operator"))
        await page.page.locator("#console-user").wait_for()
        csrf = (await page.page.evaluate(SESSION_JS))["csrf"]
        [cookie] = [c for c in await page.page.context.cookies() if c["name"] == COOKIE]
        assert cookie["httpOnly"]
        assert cookie["sameSite"] == "Strict"
    jar = {COOKIE: cookie["value"]}
    attempts = [{}, {"X-CSRF-Token": "forged"},
                {"X-CSRF-Token": csrf, "Origin": "http://evil.example"},
                {"X-CSRF-Token": csrf, "Sec-Fetch-Site": "cross-site"}]
    async with aiohttp.ClientSession(cookies=jar) as http:
        for headers in attempts:
            async with http.post(f"{drill.url}console/cancel", json={"event_id": EVENT},
                                 headers=headers) as response:
                assert response.status == 403, headers
        async with http.post(f"{drill.url}console/cancel", json={"event_id": "nope"},
                             headers={"X-CSRF-Token": csrf}) as response:
            assert response.status == 200  # the control: the same session, same site
            assert (await response.json())["verdict"] == "refused"
    rows = await drill.store.views.audit()
    assert [(r.event_id, r.answer) for r in rows] == [("nope", "event_id: no event 'nope' "
                                                                "is known")]


async def test_a_user_without_the_operator_role_is_refused_by_the_broker(
        drill: Drill) -> None:
    """`monitor` signs in (the broker knows it) but may not publish an action: the broker
    refuses the publish and the page shows why."""
    async with chromium_page() as page:
        page.page.on("dialog", lambda d: asyncio.ensure_future(d.accept()))
        await page.page.goto(drill.url)
        await page.page.locator("#console-sign-in").wait_for()
        await sign_in(page, "monitor", drill.password("monitor"))
        await page.page.locator("#console-user").wait_for()
        await page.page.locator(f"button.console-close[data-event='{EVENT}']").click()
        kind, code, said = await message(page)
        assert (kind, code) == ("refused", "denied"), said
        assert "Not authorized" in said  # the broker's own reason, shown
    assert await drill.store.views.audit() == ()
    assert drill.service.open_events() == [EVENT]
