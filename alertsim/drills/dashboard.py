"""`alertsim drill --dashboard`: the live page beside a drill, and the wait for the operator.

With a dashboard the drill does not end with its timeline: the operator needs time to
look and may still send a cancel or close (`alertsim cancel`, or the operator topic).
After the timeline has played and delivery settled, the drill keeps its broker, service,
receivers and page running until Ctrl-C (or SIGTERM); then it settles again and writes
its report, so actions taken while it waited are in the report.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from pathlib import Path
from typing import TextIO

from alertsim.bootstrap import console_for, dashboard
from alertsim.service.service import Service

__all__ = ["open_dashboard", "wait_for_operator"]


async def open_dashboard(stack: contextlib.AsyncExitStack, service: Service, *,
                         port: int | None, title: str, out: TextIO,
                         broker_url: str, ca_file: Path | None) -> str | None:
    """Serve the dashboard for the rest of the drill and print its URL (None: no port, no
    dashboard), with its operator console on the drill's broker (on an anonymous one,
    `operator` signs in with a one-time password printed here). A drill starts on an
    empty record: no starting picture to read."""
    if port is None:
        return None
    console = console_for(broker_url, root=service.config.topics.root, ca_file=ca_file)
    url = await stack.enter_async_context(dashboard(service, port=port, title=title,
                                                    console=console))
    print(f"  dashboard: {url}", file=out, flush=True)
    if console.local_password is not None:
        print(f"  console: sign in as operator with the one-time password "
              f"{console.local_password}", file=out, flush=True)
    return url


async def wait_for_operator(url: str, out: TextIO) -> None:
    """Keep everything running until Ctrl-C or SIGTERM, saying so."""
    print(f"timeline played; the dashboard stays at {url} and the service keeps taking "
          "operator actions. Ctrl-C ends the drill and writes its report.", file=out,
          flush=True)
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    handled = (signal.SIGINT, signal.SIGTERM)
    for sig in handled:
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        for sig in handled:
            loop.remove_signal_handler(sig)
    print("ending the drill", file=out, flush=True)
