"""Broker URLs: `mqtt[s]://[user[:password]@]host[:port]`, parsed once, never shown with
the password; and the client TLS context for `mqtts://` (`tls_context`).

`parse_broker_url(text)` returns a frozen `BrokerUrl`; the port defaults to 1883 for
`mqtt://` and 8883 for `mqtts://` (TLS). A bare `host` or `host:port` means `mqtt://`.
`str()`, `repr()` and `redacted()` show `***` in place of the password, so a URL can be
logged; `secret()` is the full URL, for handing to another process only.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Literal
from urllib.parse import quote, unquote, urlsplit

from alertsim.errors import BrokerError, InputError

__all__ = ["DEFAULT_PORTS", "BrokerUrl", "Scheme", "client_auth", "parse_broker_url",
           "redacted", "tls_context"]

Scheme = Literal["mqtt", "mqtts"]
DEFAULT_PORTS: Final[dict[Scheme, int]] = {"mqtt": 1883, "mqtts": 8883}
_SOURCE: Final = "--broker"


@dataclass(frozen=True)
class BrokerUrl:
    """A parsed broker URL; the password is never part of `str()` or `repr()`."""

    scheme: Scheme
    host: str
    port: int
    username: str | None = None
    password: str | None = field(default=None, repr=False)

    @property
    def tls(self) -> bool:
        """True for `mqtts://`."""
        return self.scheme == "mqtts"

    def redacted(self) -> str:
        """`mqtt://user:***@host:port` (no `:***` without a password)."""
        return _compose(self, self.username, None if self.password is None else "***")

    def secret(self) -> str:
        """The full URL, password included: never log it."""
        return _compose(self, self.username,
                        None if self.password is None else quote(self.password, safe=""))

    def without_credentials(self) -> str:
        """`scheme://host:port`."""
        return _compose(self, None, None)

    def __str__(self) -> str:
        return self.redacted()


def _compose(url: BrokerUrl, username: str | None, password: str | None) -> str:
    """`url` as text with these credentials (`password` as given: already masked or quoted)."""
    host = f"[{url.host}]" if ":" in url.host else url.host
    auth = ""
    if username is not None:
        auth = quote(username, safe="")
        if password is not None:
            auth += f":{password}"
        auth += "@"
    return f"{url.scheme}://{auth}{host}:{url.port}"


def with_credentials(url: str, username: str | None, password: str | None) -> str:
    """`url` with these credentials, unless it carries its own (the URL's win)."""
    parsed = parse_broker_url(url)
    if parsed.username is not None or username is None:
        return url
    return BrokerUrl(parsed.scheme, parsed.host, parsed.port, username, password).secret()


def parse_broker_url(text: str) -> BrokerUrl:
    """`mqtt[s]://[user[:pass]@]host[:port]`, `host:port` or `host` -> BrokerUrl;
    InputError(source="--broker") listing every problem."""
    stripped = text.strip()
    if not stripped:
        raise InputError(source=_SOURCE, problems=["empty broker URL"])
    parts = urlsplit(stripped if "://" in stripped else f"mqtt://{stripped}")
    problems: list[str] = []
    if parts.scheme not in DEFAULT_PORTS:
        problems.append(f"scheme must be mqtt:// or mqtts:// (got {parts.scheme!r})")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        # The URL may hold a password: name the parts, not the text.
        problems.append("a broker URL has no path, query or fragment "
                        f"(got {_safe(stripped)!r})")
    if parts.password is not None and not parts.username:
        problems.append("a password in the URL needs a user name (user:password@host)")
    host = parts.hostname
    if not host:
        problems.append(f"no host in {_safe(stripped)!r}")
    port: int | None = None
    try:
        port = parts.port
    except ValueError:
        problems.append(f"port must be an integer from 1 to 65535 (got {_safe(stripped)!r})")
    if port == 0:
        problems.append("port must be an integer from 1 to 65535 (got 0)")
    if problems or host is None:
        raise InputError(source=_SOURCE, problems=problems)
    scheme: Scheme = "mqtts" if parts.scheme == "mqtts" else "mqtt"
    return BrokerUrl(
        scheme=scheme, host=host, port=port or DEFAULT_PORTS[scheme],
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password is not None else None,
    )


def _safe(text: str) -> str:
    """`text` with any `:password@` replaced by `:***@`, for error messages."""
    scheme, sep, rest = text.partition("://")
    if not sep:
        scheme, rest = "", text
    userinfo, at, hostpart = rest.rpartition("@")
    if not at or ":" not in userinfo:
        return text
    user = userinfo.split(":", 1)[0]
    return f"{scheme}{sep}{user}:***@{hostpart}"


def redacted(text: str) -> str:
    """A URL for logs and errors: without its password (`:***@`), parsed or not."""
    try:
        return parse_broker_url(text).redacted()
    except InputError:
        return _safe(text)


class _ClosingSSLSocket(ssl.SSLSocket):
    """An SSL socket that closes itself when its handshake fails (paho 2.2 leaves it open:
    a ResourceWarning per refused TLS connection)."""

    def do_handshake(self, block: bool = False) -> None:
        try:
            super().do_handshake(block)
        except BaseException:
            self.close()
            raise


def tls_context(ca_file: Path | None) -> ssl.SSLContext:
    """A client context trusting `ca_file` (else the system's CAs); host names checked.

    OSError or ssl.SSLError when the CA file cannot be read.
    """
    context = ssl.create_default_context(cafile=None if ca_file is None else str(ca_file))
    context.sslsocket_class = _ClosingSSLSocket
    return context


def client_auth(url: BrokerUrl, username: str | None, password: str | None,
                ca_file: Path | None) -> dict[str, Any]:
    """aiomqtt.Client's `username`, `password` (default: the URL's) and `tls_context`
    (for `mqtts://` or a `ca_file`); BrokerError when the CA file cannot be loaded."""
    auth: dict[str, Any] = {
        "username": username if username is not None else url.username,
        "password": password if password is not None else url.password,
    }
    if url.tls or ca_file is not None:
        try:
            auth["tls_context"] = tls_context(ca_file)
        except (OSError, ssl.SSLError) as exc:
            raise BrokerError(f"CA file {ca_file}: {exc}") from exc
    return auth
