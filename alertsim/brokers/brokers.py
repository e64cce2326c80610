"""MQTT brokers for tests, demos and the CLI: a Mosquitto subprocess and an in-process amqtt.

Both listen on a loopback port chosen here (never 1883, which a system broker may hold).

- `MosquittoBroker` runs `mosquitto -c FILE` with a generated config in its own data
  directory: persistence on (or off, for fault tests), generous queues (Mosquitto's default
  of 1,000 queued messages per client silently drops messages for a slow subscriber). It can
  be stopped and started again on the same port with its persistence intact, which outbox
  tests rely on, or killed (SIGKILL: nothing saved since the last save is kept). Its log
  goes to its output pipe, which a thread copies into `mosquitto.log` (`OutputLog`): `start`
  returns when the log says the listener is open and the broker running, not after a poll.
- `EmbeddedBroker` runs amqtt inside the current event loop: MQTT 3.1.1 only, QoS 1 and
  retained messages, anonymous clients.

Broker URLs are parsed by `alertsim.mqtt.url.parse_broker_url` (a `BrokerUrl`).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import re
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from alertsim.brokers.output import OutputLog, tail
from alertsim.errors import BrokerError

__all__ = [
    "DEFAULT_MQTT_PORT",
    "EmbeddedBroker",
    "MosquittoBroker",
    "free_port",
    "ready_lines",
]

DEFAULT_MQTT_PORT = 1883
_LOOPBACK = "127.0.0.1"
_START_TIMEOUT_S = 10.0
_TERM_AGAIN_S = 0.5
_STOP_TIMEOUT_S = 10.0


# Below Linux's ephemeral range (32768-60999 by default), from which the OS picks both
# `bind(0)` ports and every outgoing connection's local port: a broker killed and
# restarted on a port from there can find it taken by some client's connection meanwhile.
_LISTEN_PORTS = range(20000, 32768)
_PICKS = 200


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago: a random one below the
    ephemeral range (so no outgoing connection takes it after a broker on it dies), else
    one the OS picks."""
    pick = random.SystemRandom()
    for _ in range(_PICKS):
        port = pick.choice(_LISTEN_PORTS)
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind((_LOOPBACK, port))
            except OSError:
                continue
            return port
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((_LOOPBACK, 0))
        chosen: int = sock.getsockname()[1]
        return chosen


def ready_lines(port: int) -> list[re.Pattern[bytes]]:
    """The lines of a Mosquitto log that say it is ready: its listener on `port` opened,
    then running. Both, from the process's own output: a port that accepts could be
    someone else's."""
    return [re.compile(rb"Opening ipv4 listen socket on port %d\." % port),
            re.compile(rb"mosquitto version \S+ running")]


# Debian installs mosquitto in /usr/sbin, which is not on a normal user's PATH.
_SBIN_DIRS = os.pathsep.join(["/usr/local/sbin", "/usr/sbin"])


def _terminate(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM until it exits (SIGKILL after _STOP_TIMEOUT_S). Sent again every
    _TERM_AGAIN_S: a SIGTERM that lands after Mosquitto says "running" but before its main
    loop sets its run flag is forgotten (its handler's flag is overwritten)."""
    deadline = time.monotonic() + _STOP_TIMEOUT_S
    while (left := deadline - time.monotonic()) > 0:
        process.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=min(_TERM_AGAIN_S, left))
        if process.poll() is not None:
            return
    process.kill()
    process.wait()


def _mosquitto_binary(search_path: str | None) -> str:
    if search_path is None:
        binary = shutil.which("mosquitto") or shutil.which("mosquitto", path=_SBIN_DIRS)
    else:
        binary = shutil.which("mosquitto", path=search_path)
    if binary is None:
        raise BrokerError(
            "the mosquitto binary was not found on PATH; install it with "
            "`apt-get install mosquitto` (Debian/Ubuntu)"
        )
    return binary


class MosquittoBroker:
    """A Mosquitto subprocess on its own loopback port with persistence in `data_dir`.

    Use `async with MosquittoBroker() as broker:` or call `start()` / `stop()` / `close()`.
    `stop()` then `start()` (or `restart()`) keeps the port and the persisted sessions,
    queued QoS 1 messages and retained messages (Mosquitto saves them on SIGTERM).
    Without `data_dir`, a temporary directory is made and removed by `close()`.
    `search_path` replaces where the binary is looked for (default: PATH, then the sbin
    directories). `persistence=False` keeps nothing across a restart (no sessions, queued
    or retained messages); the attribute is read at each `start()`. `kill()` ends the
    process with SIGKILL: Mosquitto saves only on a clean exit (and every 30 min), so a
    restart after it loads what the last clean stop saved.
    """

    def __init__(self, *, port: int | None = None, data_dir: Path | None = None,
                 search_path: str | None = None, persistence: bool = True,
                 bridge_from: str | None = None) -> None:
        self.port = port if port is not None else free_port()
        self.persistence = persistence
        # "HOST:PORT" of a broker whose alertsim/# messages this one copies in (a bridge),
        # to spread receivers over two brokers when one process runs out of file handles.
        self.bridge_from = bridge_from
        self._search_path = search_path
        self._owns_dir = data_dir is None
        self.data_dir = Path(tempfile.mkdtemp(prefix="alertsim-mosquitto-")) \
            if data_dir is None else data_dir
        self.config_path = self.data_dir / "mosquitto.conf"
        self.log_path = self.data_dir / "mosquitto.log"
        self._process: subprocess.Popen[bytes] | None = None
        self._output: OutputLog | None = None

    @property
    def url(self) -> str:
        """`mqtt://127.0.0.1:PORT`."""
        return f"mqtt://{_LOOPBACK}:{self.port}"

    @property
    def running(self) -> bool:
        """True while the subprocess is alive."""
        return self._process is not None and self._process.poll() is None

    def config_text(self) -> str:
        """The generated mosquitto.conf."""
        lines = [
            f"listener {self.port} {_LOOPBACK}",
            "allow_anonymous true",
            "per_listener_settings false",
            f"persistence {'true' if self.persistence else 'false'}",
            # Mosquitto joins location and file name by concatenation: keep the slash.
            f"persistence_location {self.data_dir}/",
            "max_queued_messages 100000",
            "max_inflight_messages 100",
            # Alerts are small: without it, back-to-back messages to a client waited ~40 ms
            # for a delayed ACK (Nagle), seen in drills as p99 ~46 ms for a 2-alert burst.
            "set_tcp_nodelay true",
            "log_dest stderr",  # a pipe, copied into log_path by `OutputLog`
            "log_type error",
            "log_type warning",
            "log_type notice",
            "log_type information",
        ]
        if self.bridge_from is not None:
            lines += [f"connection alertsim-bridge-{self.port}", f"address {self.bridge_from}",
                      "topic alertsim/# in 1", "cleansession true"]
        if os.geteuid() == 0:
            # As root, Mosquitto switches to user `mosquitto` and then silently runs without
            # persistence or log it cannot write; staying root keeps the directory usable.
            lines.append("user root")
        return "\n".join(lines) + "\n"

    def start(self) -> None:
        """Start the subprocess and block until its log says it listens on our port and
        runs (10 s); BrokerError with the log's tail if it exits first or is slower."""
        if self.running:
            return
        binary = _mosquitto_binary(self._search_path)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.config_path.write_text(self.config_text(), encoding="utf-8")
        process = self._process = subprocess.Popen(
            [binary, "-c", str(self.config_path)],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        assert process.stdout is not None
        output = self._output = OutputLog(process.stdout, self.log_path,
                                          ready_lines(self.port),
                                          name=f"mosquitto-{self.port}")
        if output.wait(_START_TIMEOUT_S):
            return
        exited = output.settled.is_set()  # its output ended before it said it runs
        if exited:
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=_STOP_TIMEOUT_S)  # for its exit code
        self.stop()
        if exited:
            raise BrokerError(f"mosquitto exited with code {process.returncode} on port "
                              f"{self.port}: {tail(self.log_path)}")
        raise BrokerError(f"mosquitto did not listen on port {self.port} within "
                          f"{_START_TIMEOUT_S} s: {tail(self.log_path)}")

    def stop(self) -> None:
        """Terminate the subprocess (SIGTERM, so it saves its persistence) and wait for it."""
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            _terminate(process)
        self._close_output()

    def kill(self) -> None:
        """End the subprocess with SIGKILL (no shutdown, nothing saved) and wait for it."""
        process, self._process = self._process, None
        if process is not None:
            if process.poll() is None:
                process.kill()
            process.wait()
        self._close_output()

    def restart(self) -> None:
        """Stop and start again on the same port with the same persistence."""
        self.stop()
        self.start()

    def close(self) -> None:
        """Stop, and remove the data directory if this object created it."""
        self.stop()
        if self._owns_dir:
            shutil.rmtree(self.data_dir, ignore_errors=True)

    def _close_output(self) -> None:
        """Wait for the output copy to finish (the process has exited: its pipe ends)."""
        output, self._output = self._output, None
        if output is not None:
            output.join()

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    async def __aenter__(self) -> Self:
        try:
            await asyncio.to_thread(self.start)
        except BaseException:
            self.close()
            raise
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await asyncio.to_thread(self.close)


class EmbeddedBroker:
    """An amqtt broker in the running event loop on a loopback port picked here.

    MQTT 3.1.1 only (amqtt refuses MQTT 5 CONNECTs); QoS 0/1/2, retained messages and
    anonymous clients. amqtt keeps queued messages for offline sessions only for
    authenticated clients, so persistent sessions are not offered here.

    Pitfall: do not probe the port with a bare TCP connect; amqtt 0.12 leaks the server-side
    transport of a connection closed before CONNECT (a ResourceWarning, an error under
    pytest's warnings-as-errors). Connect an MQTT client instead.
    """

    def __init__(self, *, port: int | None = None) -> None:
        self.port = port if port is not None else free_port()
        self._broker: Any = None  # amqtt.broker.Broker; amqtt ships no type hints

    @property
    def url(self) -> str:
        """`mqtt://127.0.0.1:PORT`."""
        return f"mqtt://{_LOOPBACK}:{self.port}"

    def config(self) -> dict[str, Any]:
        """The amqtt 0.12 broker config: one TCP listener, anonymous access, no $SYS."""
        return {
            "listeners": {"default": {"type": "tcp", "bind": f"{_LOOPBACK}:{self.port}"}},
            # Naming `plugins` replaces amqtt's defaults (packet logging, $SYS every 20 s):
            # only the anonymous-auth plugin is kept, which lets clients without a username in.
            "plugins": {
                "amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True},
            },
        }

    async def start(self) -> None:
        """Start listening; BrokerError if amqtt cannot bind or start."""
        from amqtt.broker import Broker  # imported here: only tests and demos need amqtt
        from amqtt.errors import BrokerError as AmqttBrokerError

        broker = Broker(self.config())
        try:
            await broker.start()
        except (AmqttBrokerError, OSError) as exc:
            raise BrokerError(f"amqtt could not start on port {self.port}: {exc}") from exc
        self._broker = broker

    async def stop(self) -> None:
        """Shut the broker down (idempotent)."""
        broker, self._broker = self._broker, None
        if broker is not None:
            await broker.shutdown()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.stop()
