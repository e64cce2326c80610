"""The composition root: wires the service to its adapters (SQLite record, MQTT link,
system clock), the dashboard and the metrics endpoint. It sits above the layers: the
service sees ports only, and only the entry points (cli, drills) import this module.
The CLI builds `ServeOptions` from settings and calls `serve`; `serve` hands the dashboard's
URL back through `ServeOptions.announce` (the CLI prints it on a line of its own).

At start `serve` tells the service which prefectures' retained states the record ever set
(`Service.once_set`): only those are restated (cleared where nothing is open) on connect.

Before its own connections, `serve` asks whether a service already runs with its client id
(`adapters.mqtt.presence`) and stops with `IdentityInUse` if one answers.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import socket
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import structlog

from alertsim.adapters.mqtt.link import run_link
from alertsim.adapters.mqtt.presence import service_answers
from alertsim.adapters.sqlite.integrity import check_record
from alertsim.adapters.sqlite.store import Store
from alertsim.adapters.sqlite.views import RecordViews
from alertsim.data import load_atlas
from alertsim.domain.event_state import EventState
from alertsim.errors import InputError
from alertsim.mqtt.client import MqttSettings
from alertsim.mqtt.negotiation import wait_for_protocol
from alertsim.mqtt.protocol import Protocol as MqttProtocol
from alertsim.mqtt.url import parse_broker_url
from alertsim.service.clock import SystemClock
from alertsim.service.config import ServiceConfig
from alertsim.service.service import Service
from alertsim.signing import SigningKey

if TYPE_CHECKING:
    from alertsim.metrics import PrometheusObserver
    from alertsim.web.console import ConsoleSpec
    from alertsim.web.seed import SeedSource

__all__ = ["IdentityInUse", "LinkOptions", "MetricsEndpoint", "ServeOptions",
           "console_for", "dashboard", "default_client_id", "metrics", "once_set", "run_serve",
           "running", "serve"]

log = structlog.get_logger("alertsim.serve")


@dataclass(frozen=True)
class ServeOptions:
    """Where the service keeps its record and which broker it serves, and as whom."""

    config: ServiceConfig
    db: Path
    broker_url: str = field(repr=False)  # may hold a password
    mqtt_protocol: str = "auto"  # "5", "3.1.1" or "auto"
    client_id: str | None = None  # None: `default_client_id(db)`
    signer: SigningKey | None = None  # signs every alert and state (`signing`); None: unsigned
    # Shared by redundant services: identical identifiers (docs/redundancy.md). Never logged.
    identity_secret: bytes | None = field(default=None, repr=False)
    cap: bool = False  # also publish every alert as CAP 1.2 XML on its cap topic
    # Broker credentials (default: those in `broker_url`) and the CA for TLS; never logged.
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    ca_file: Path | None = None
    dashboard_port: int | None = None  # serve the live dashboard (0: any free port); None: no
    metrics_port: int | None = None  # serve Prometheus /metrics (0: any free port); None: no
    metrics_host: str = "127.0.0.1"  # the address /metrics binds ("0.0.0.0": every one)
    # Told the dashboard's URL once it listens (the CLI prints it); None: only the log.
    announce: Callable[[str], None] | None = field(default=None, compare=False)
    # The listener operators sign in on (the generated broker's clients listener, where
    # the operator role has its password); None: `broker_url`'s.
    console_broker_url: str | None = None
    # Told the console's one-time password on an anonymous broker (the CLI prints it).
    announce_password: Callable[[str], None] | None = field(default=None, compare=False)

    @property
    def identity(self) -> str:
        """The client id the service connects with."""
        return self.client_id or default_client_id(self.db)


class IdentityInUse(InputError):
    """A service with this client id answers on this broker: a second one would take its
    connection over and over. Bad input (exit 2): the id must change."""

    def __init__(self, client_id: str, broker: str) -> None:
        super().__init__(source="client id", problems=[
            f"a service with client id {client_id!r} is already running on {broker}; "
            "stop it, or give this one another id (--client-id ID or ALERTSIM_CLIENT_ID; "
            "redundant services each need their own, docs/redundancy.md)"])


def default_client_id(db: Path, host: str | None = None) -> str:
    """`alertsim-service-<8 hex>` of this host name and the record's absolute path: stable
    across restarts (the persistent input session needs it), distinct for two records."""
    where = f"{host or socket.gethostname()}\0{db.expanduser().absolute()}"
    return f"alertsim-service-{hashlib.sha256(where.encode()).hexdigest()[:8]}"


@dataclass(frozen=True)
class LinkOptions:
    """How the service reaches its broker: where, in which protocol, as whom."""

    url: str = field(repr=False)  # may hold a password
    protocol: MqttProtocol  # negotiated
    client_id: str
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    ca_file: Path | None = None
    signer: SigningKey | None = None
    cap: bool = False
    on_refused: Callable[[str], None] | None = None  # counts refused publishes (metrics)


@contextlib.asynccontextmanager
async def running(service: Service, link: LinkOptions) -> AsyncIterator[asyncio.Event]:
    """The service's timers and broker link while the block runs; yields the link's
    `connected` event. A task that fails ends the block with its error."""
    connected = asyncio.Event()
    async with asyncio.TaskGroup() as group:
        tasks = [group.create_task(service.run_timers(), name="service-timers"),
                 group.create_task(run_link(
                     service, url=link.url, protocol=link.protocol, client_id=link.client_id,
                     username=link.username, password=link.password, ca_file=link.ca_file,
                     signer=link.signer, cap=link.cap, connected=connected,
                     on_refused=link.on_refused),
                     name="service-link")]
        try:
            yield connected
        finally:
            for task in tasks:
                task.cancel()


def console_for(url: str, *, root: str, ca_file: Path | None,
                username: str | None = None) -> ConsoleSpec:
    """The operator console of a dashboard whose service uses `url`: sign-in is checked by
    that broker when the service signs in to it (operators sign in as themselves), else a
    one-time password signs `operator` in (an anonymous broker checks nobody)."""
    from alertsim.clients.operator import BrokerOperator
    from alertsim.web.console import ConsoleSpec

    parsed = parse_broker_url(url)
    return ConsoleSpec.of(BrokerOperator(parsed.without_credentials(), root, ca_file),
                          authenticated=(username or parsed.username) is not None)


def dashboard(service: Service, *, port: int | None, title: str,
              seed: SeedSource | None = None, console: ConsoleSpec | None = None,
              ) -> contextlib.AbstractAsyncContextManager[str | None]:
    """The live dashboard beside the service, yielding its URL; nothing when `port` is None.

    `seed`: the record's views, read once after it subscribes, so current states show at
    once (`serve` on an existing record); a drill starts empty and passes none."""
    if port is None:
        return contextlib.nullcontext()
    from alertsim.web.dashboard import live_dashboard  # the web stack only when asked

    return live_dashboard(service, seed=seed, port=port, title=title, console=console)


@dataclass(frozen=True)
class MetricsEndpoint:
    observer: PrometheusObserver
    url: str


@contextlib.asynccontextmanager
async def metrics(port: int | None,
                  host: str = "127.0.0.1") -> AsyncIterator[MetricsEndpoint | None]:
    """The Prometheus observer and its /metrics endpoint on `host` (loopback unless asked),
    or nothing. The log line gives the address the socket is really bound to."""
    if port is None:
        yield None
        return
    from alertsim.metrics import PrometheusObserver, start_metrics_server

    observer = PrometheusObserver()
    server = start_metrics_server(observer.registry, port, host=host)
    url = server.url
    log.info("metrics.listening", url=url, host=server.host, port=server.port,
             all_interfaces=server.host in ("0.0.0.0", "::"))
    try:
        yield MetricsEndpoint(observer, url)
    finally:
        server.close()


def run_serve(options: ServeOptions) -> None:
    """`serve` until interrupted, on uvloop when it is installed (the service's throughput
    gains 10-30%), else on asyncio's own loop."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency off Windows
        asyncio.run(serve(options))
        return
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(serve(options))


async def serve(options: ServeOptions) -> None:
    """Run the service until interrupted: refuse a second one on the same client id, then
    resume the record, timers, broker link."""
    await check_record(options.db)  # a damaged record is refused even with no broker up
    atlas = load_atlas()
    atlas.warm_up()
    config = options.config
    protocol = await wait_for_protocol(options.broker_url, options.mqtt_protocol,
                                       username=options.username,
                                       password=options.password, ca_file=options.ca_file)
    await _refuse_a_second(options, protocol)  # before the record is even opened
    async with await Store.open(options.db, check=False) as store, \
            metrics(options.metrics_port, options.metrics_host) as endpoint:
        service = Service(atlas=atlas, store=store.record, clock=SystemClock(), config=config,
                          observer=None if endpoint is None else endpoint.observer)
        service.engine.identity_secret = options.identity_secret  # before events are made
        resumed = await service.resume()
        service.once_set = await once_set(store.views)
        log.info("service.started", db=str(options.db),
                 broker=parse_broker_url(options.broker_url).redacted(),
                 client_id=options.identity, status=config.status, policy=config.policy,
                 resumed_events=resumed, shared_identity=options.identity_secret is not None)
        link = LinkOptions(url=options.broker_url, protocol=protocol,
                           client_id=options.identity, username=options.username,
                           password=options.password, ca_file=options.ca_file,
                           signer=options.signer, cap=options.cap,
                           on_refused=None if endpoint is None else
                           endpoint.observer.publish_refused)
        console = None if options.dashboard_port is None else console_for(
            options.console_broker_url or options.broker_url, root=config.topics.root,
            ca_file=options.ca_file, username=options.username)
        async with dashboard(service, port=options.dashboard_port, title="alertsim serve",
                             seed=store.views, console=console) as url, running(service, link):
            _announce(options, url, console)
            await asyncio.Event().wait()  # until cancelled (Ctrl-C) or a task fails


def _announce(options: ServeOptions, url: str | None, console: ConsoleSpec | None) -> None:
    if url is not None and options.announce is not None:
        options.announce(url)
    if console is not None and console.local_password is not None \
            and options.announce_password is not None:
        options.announce_password(console.local_password)


async def once_set(views: RecordViews) -> frozenset[str]:
    """The prefectures whose retained state the record says was ever set: every place an
    event of it, open or closed, reached (a fresh record: none)."""
    return frozenset(code for row in await views.events()
                     for code in EventState.model_validate_json(row.state_json).places)


async def _refuse_a_second(options: ServeOptions, protocol: MqttProtocol) -> None:
    """IdentityInUse when a service with our client id answers on our broker."""
    asker = MqttSettings(url=options.broker_url, client_id=options.identity,
                         protocol=protocol, username=options.username,
                         password=options.password, ca_file=options.ca_file)
    if await service_answers(asker, options.config.topics, options.identity):
        raise IdentityInUse(options.identity, parse_broker_url(options.broker_url).redacted())
