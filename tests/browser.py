"""Browser support for tests: Playwright for Python driving Debian's headless chromium.

Never `playwright install` (it downloads a browser build): scripts/test installs the
Debian package `chromium` (see `ensure_chromium` in scripts/lib.sh) and these helpers
launch it by path. Every page records the requests it makes and its console errors, so a
test can show that a page stays offline and clean.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from playwright.async_api import ConsoleMessage, Page, Request, async_playwright

CHROMIUM = Path("/usr/bin/chromium")
LAUNCH_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
               "--disable-component-update", "--disable-sync", "--no-first-run"]
VIEWPORT = {"width": 1280, "height": 800}

# The page contract: every prefecture's state, read from the DOM.
STATES_JS = """() => Object.fromEntries([...document.querySelectorAll(
    'g.prefecture[data-code]')].map(g => [g.dataset.code, g.dataset.state]))"""


@dataclass
class Watched:
    """A page and what it did: every request URL, failed requests and console errors."""

    page: Page
    requests: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)

    async def states(self) -> dict[str, str]:
        states: dict[str, str] = await self.page.evaluate(STATES_JS)
        return states


def require_chromium() -> None:
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: scripts/test installs Debian's chromium")


@asynccontextmanager
async def chromium_page() -> AsyncIterator[Watched]:
    """A fresh 1280x800 page in headless Debian chromium, closed afterwards."""
    require_chromium()
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=LAUNCH_ARGS)
        try:
            page = await browser.new_page(viewport=VIEWPORT)  # type: ignore[arg-type]
            watched = Watched(page)

            def on_console(message: ConsoleMessage) -> None:
                if message.type == "error":
                    watched.console_errors.append(message.text)

            def on_failed(request: Request) -> None:
                watched.failed.append(f"{request.url} {request.failure}")

            page.on("request", lambda r: watched.requests.append(r.url))
            page.on("requestfailed", on_failed)
            page.on("console", on_console)
            yield watched
        finally:
            await browser.close()


def artifacts_dir(tmp_path: Path, name: str) -> Path:
    """Where a test keeps its screenshots: $ALERTSIM_ARTIFACTS/NAME, else under tmp_path."""
    root = os.environ.get("ALERTSIM_ARTIFACTS")
    folder = Path(root) / name if root else tmp_path / "artifacts"
    folder.mkdir(parents=True, exist_ok=True)
    print(f"screenshots in {folder}")
    return folder
