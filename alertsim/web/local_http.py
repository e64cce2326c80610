"""What every local page shares (the dashboard, the builder): a listening socket on
127.0.0.1 and its static files, never cached (a page and its script change together)."""

from __future__ import annotations

import socket
from collections.abc import Mapping
from importlib import resources

from aiohttp import web

__all__ = ["NO_STORE", "loopback_socket", "static_file"]

NO_STORE = {"Cache-Control": "no-store"}


def loopback_socket(port: int) -> socket.socket:
    """A TCP socket bound to 127.0.0.1:`port` (0: any free one); OSError when it cannot
    be, the socket closed."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(("127.0.0.1", port))
    except OSError:
        sock.close()
        raise
    return sock


def static_file(name: str, types: Mapping[str, str]) -> web.Response:
    """`alertsim/web/static/NAME` with its content type; 404 for a name not in `types`."""
    if name not in types:
        raise web.HTTPNotFound(text="not found")
    body = resources.files(__package__).joinpath("static", name).read_text("utf-8")
    return web.Response(text=body, content_type=types[name], headers=NO_STORE)
