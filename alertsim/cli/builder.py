"""`alertsim builder`: serve the scenario builder page on 127.0.0.1 until Ctrl-C."""

from __future__ import annotations

import asyncio
import signal
import socket
from datetime import datetime, timedelta
from pathlib import Path
from typing import Annotated

import typer

from alertsim.cli.messages import current_lang
from alertsim.cli.options import EXIT_OK, LogLevelOption
from alertsim.cli.settings import settings_and_logging
from alertsim.domain.model import JST
from alertsim.errors import InputError
from alertsim.i18n import DEFAULT_PAGE_LANG, Lang, text

__all__ = ["builder_command"]

AREA = "builder"  # the builder's words, the CLI's few included (alertsim/i18n/builder.json)


def _bind(port: int) -> socket.socket:
    from alertsim.web.local_http import loopback_socket

    try:
        return loopback_socket(port)
    except OSError as exc:
        raise InputError("--port", [text(AREA, "cli.cannot_bind", current_lang(), port=port,
                                         reason=exc.strerror or exc)]) from exc


def _next_hour() -> datetime:
    """A new page's launch time: the next full hour, JST."""
    now = datetime.now(JST)
    return now.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)


async def _serve(port: int, out: Path, lang: Lang) -> None:
    from alertsim.builder.backend import Builder
    from alertsim.data import load_atlas
    from alertsim.web.builder_app import BuilderServer, serve_builder

    server = BuilderServer(Builder(load_atlas(), out), lang, _next_hour)
    sock = _bind(port)
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        async with serve_builder(server, sock) as url:
            # The first line is the one scripts and tests read the URL from.
            print(text(AREA, "cli.listening", current_lang(), url=url), flush=True)
            print(text(AREA, "cli.saved_in", current_lang(), folder=out), flush=True)
            await stop.wait()
    finally:
        sock.close()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)


def builder_command(
    port: Annotated[int, typer.Option(
        "--port", min=0, max=65535, metavar="N",
        help="the page's port on 127.0.0.1 (default 0: any free port; the URL is printed)")
    ] = 0,
    out: Annotated[Path, typer.Option(
        "--out", metavar="DIR", help="where scenarios are saved (and their drills' reports, "
                                     "in DIR/reports)")] = Path("built-scenarios"),
    lang: Annotated[Lang, typer.Option(
        "--lang", help="the page's language at first (a toggle on the page switches)")
    ] = DEFAULT_PAGE_LANG,
    log_level: LogLevelOption = None,
) -> int:
    """Serve the scenario builder: pick a launch, aim, preview, save, start the drill."""
    settings_and_logging(log_level=log_level)
    asyncio.run(_serve(port, out, lang))
    return EXIT_OK
