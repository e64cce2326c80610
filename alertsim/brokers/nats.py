"""A NATS cluster with MQTT enabled on loopback: a distributed broker for tests and drills.

`NatsCluster(nodes=3)` runs one Debian `nats-server` subprocess per node, each with its own
`server_name`, JetStream store directory, cluster routes to every other node and an MQTT
listener; `urls` holds one `mqtt://` URL per node. NATS speaks MQTT 3.1.1 only and keeps
MQTT sessions, retained and QoS 1 messages in JetStream, so JetStream is on everywhere.
Settings from platform.md: `consumer_replicas: 1` and `consumer_memory_storage: true`
(the defaults wedged a 3-node cluster under thousands of QoS 1 subscribers).

`start()` returns once the cluster is ready, observed rather than slept for: every node
reports routes to all the others and a JetStream meta leader (monitoring port), then a
QoS 1 probe published on the first node reaches a subscriber on every node (the first MQTT
clients also make NATS create its MQTT streams, which takes a second or two). Ports are
picked here, never 4222 or 1883 (a system NATS or Mosquitto may hold them).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import subprocess
import tempfile
import time
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Self

from alertsim.brokers.brokers import free_port
from alertsim.domain.publication import Publication
from alertsim.errors import BrokerError
from alertsim.mqtt.client import MqttSettings, connect
from alertsim.mqtt.messages import publish, received
from alertsim.mqtt.messages import subscribe as mqtt_subscribe

__all__ = ["NatsCluster", "NatsNode"]

_LOOPBACK = "127.0.0.1"
_SBIN_DIRS = "/usr/local/sbin:/usr/sbin"
_READY_TIMEOUT_S = 60.0
_STOP_TIMEOUT_S = 10.0
_POLL_S = 0.05


@dataclass(frozen=True)
class NatsNode:
    """One node's name and loopback ports."""

    name: str
    client_port: int
    cluster_port: int
    http_port: int
    mqtt_port: int

    @property
    def url(self) -> str:
        """The node's MQTT listener, `mqtt://127.0.0.1:PORT`."""
        return f"mqtt://{_LOOPBACK}:{self.mqtt_port}"


def _nats_binary() -> str:
    binary = shutil.which("nats-server") or shutil.which("nats-server", path=_SBIN_DIRS)
    if binary is None:
        raise BrokerError("the nats-server binary was not found; install it with "
                          "`apt-get install nats-server` (Debian/Ubuntu)")
    return binary


def _monitor(node: NatsNode, endpoint: str) -> dict[str, Any]:
    """A monitoring endpoint's JSON, or {} while the node does not answer."""
    url = f"http://{_LOOPBACK}:{node.http_port}/{endpoint}"
    try:
        with urllib.request.urlopen(url, timeout=1.0) as answer:
            found = json.loads(answer.read())
    except (OSError, ValueError):
        return {}
    return found if isinstance(found, dict) else {}


class NatsCluster:
    """`nodes` nats-server processes routed into one cluster, each with MQTT enabled.

    `async with NatsCluster(nodes=3) as cluster:` (or `await start()` / `await stop()`);
    `cluster.urls[i]` is node i's MQTT URL. Without `data_dir`, a temporary directory holds
    configs, logs and JetStream stores, and is removed on stop. `kill(i)` ends one node
    with SIGKILL (the others carry on as a cluster of the rest).
    """

    def __init__(self, nodes: int = 3, *, data_dir: Path | None = None,
                 name: str = "alertsim") -> None:
        if nodes < 1:
            raise ValueError(f"nodes must be >= 1 (got {nodes})")
        self.name = name
        self.nodes = tuple(NatsNode(f"{name}-n{i + 1}", free_port(), free_port(), free_port(),
                                    free_port()) for i in range(nodes))
        self._owns_dir = data_dir is None
        self.data_dir = Path(tempfile.mkdtemp(prefix="alertsim-nats-")) \
            if data_dir is None else data_dir
        self._processes: list[subprocess.Popen[bytes] | None] = [None] * nodes
        self._outputs: list[IO[bytes] | None] = [None] * nodes

    @property
    def urls(self) -> tuple[str, ...]:
        """One MQTT URL per node, in node order."""
        return tuple(node.url for node in self.nodes)

    def node_dir(self, index: int) -> Path:
        return self.data_dir / self.nodes[index].name

    def config_text(self, index: int) -> str:
        """The generated nats-server configuration of node `index`."""
        node = self.nodes[index]
        routes = ", ".join(f"nats-route://{_LOOPBACK}:{other.cluster_port}"
                           for other in self.nodes if other is not node)
        store = self.node_dir(index) / "jetstream"
        return "\n".join([
            f"server_name: {node.name}",
            f"listen: {_LOOPBACK}:{node.client_port}",
            f"http: {_LOOPBACK}:{node.http_port}",
            f'jetstream {{ store_dir: "{store}", max_memory_store: 512MB, '
            "max_file_store: 1GB }",
            f"cluster {{ name: {self.name}, listen: {_LOOPBACK}:{node.cluster_port}, "
            f"routes: [{routes}] }}",
            f"mqtt {{ listen: {_LOOPBACK}:{node.mqtt_port}, consumer_replicas: 1, "
            "consumer_memory_storage: true }",
        ]) + "\n"

    # -- processes -------------------------------------------------------------------

    def _launch(self) -> None:
        binary = _nats_binary()
        for index in range(len(self.nodes)):
            folder = self.node_dir(index)
            folder.mkdir(parents=True, exist_ok=True)
            config = folder / "nats.conf"
            config.write_text(self.config_text(index), encoding="utf-8")
            output = (folder / "nats.log").open("ab")
            self._outputs[index] = output
            self._processes[index] = subprocess.Popen(
                [binary, "-c", str(config)], stdin=subprocess.DEVNULL, stdout=output,
                stderr=output)

    def _node_ready(self, index: int) -> bool:
        node = self.nodes[index]
        routes = _monitor(node, "routez").get("num_routes")
        if routes != len(self.nodes) - 1:
            return False
        meta = _monitor(node, "jsz").get("meta_cluster") or {}
        return bool(meta.get("leader")) if len(self.nodes) > 1 else True

    def _wait_routed(self, deadline: float) -> None:
        """Block until every node is routed to all others and sees a meta leader."""
        waiting = set(range(len(self.nodes)))
        while waiting:
            self._check_alive()
            waiting = {i for i in waiting if not self._node_ready(i)}
            if waiting and time.monotonic() > deadline:
                names = ", ".join(self.nodes[i].name for i in sorted(waiting))
                raise BrokerError(f"NATS nodes not clustered within {_READY_TIMEOUT_S} s: "
                                  f"{names}: {self.log_tail()}")
            if waiting:
                time.sleep(_POLL_S)

    def _check_alive(self) -> None:
        for index, process in enumerate(self._processes):
            if process is not None and process.poll() is not None:
                raise BrokerError(f"nats-server {self.nodes[index].name} exited with code "
                                  f"{process.returncode}: {self.log_tail(index)}")

    async def start(self) -> None:
        """Start every node and return once the cluster carries MQTT between all of them."""
        if any(p is not None for p in self._processes):
            raise RuntimeError("the cluster is already started")
        deadline = time.monotonic() + _READY_TIMEOUT_S
        try:
            await asyncio.to_thread(self._launch)
            await asyncio.to_thread(self._wait_routed, deadline)
            await self._wait_mqtt(deadline)
        except BaseException:
            await asyncio.to_thread(self.close)
            raise

    async def _wait_mqtt(self, deadline: float) -> None:
        """Probe until a QoS 1 message from the first node reaches every node's subscriber."""
        errors: list[str] = []
        while time.monotonic() < deadline:
            self._check_alive()
            try:
                async with asyncio.timeout(max(0.1, deadline - time.monotonic())):
                    await self._probe()
            except (BrokerError, TimeoutError) as exc:
                errors.append(str(exc) or type(exc).__name__)
                await asyncio.sleep(_POLL_S)  # between attempts at an observable condition
            else:
                return
        raise BrokerError(f"NATS MQTT not ready within {_READY_TIMEOUT_S} s: "
                          f"{errors[-1:] or 'no attempt'}: {self.log_tail()}")

    async def _probe(self) -> None:
        topic = f"alertsim-probe/{uuid.uuid4().hex}"
        payload = b"probe"
        async with contextlib.AsyncExitStack() as stack:
            clients = []
            for url in self.urls:
                settings = MqttSettings(url=url, protocol="3.1.1",
                                        client_id=f"alertsim-probe-{uuid.uuid4().hex[:12]}")
                client = await stack.enter_async_context(connect(settings))
                await mqtt_subscribe(client, topic, qos=1)
                clients.append(client)
            await publish(clients[0], Publication(topic, payload, qos=1), protocol="3.1.1")
            for client in clients:
                async with contextlib.aclosing(received(client)) as messages:
                    async for message in messages:
                        if message.topic == topic and message.payload == payload:
                            break

    def kill(self, index: int) -> None:
        """End node `index` with SIGKILL and wait for it."""
        process, self._processes[index] = self._processes[index], None
        if process is not None:
            if process.poll() is None:
                process.kill()
            process.wait()
        self._close_output(index)

    def stop(self) -> None:
        """Terminate every node (SIGTERM, then SIGKILL after 10 s) and wait for them."""
        for process in self._processes:
            if process is not None and process.poll() is None:
                process.terminate()
        for index, process in enumerate(self._processes):
            if process is not None:
                try:
                    process.wait(timeout=_STOP_TIMEOUT_S)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
            self._processes[index] = None
            self._close_output(index)

    def close(self) -> None:
        """Stop, and remove the data directory if this object created it."""
        self.stop()
        if self._owns_dir:
            shutil.rmtree(self.data_dir, ignore_errors=True)

    def _close_output(self, index: int) -> None:
        output, self._outputs[index] = self._outputs[index], None
        if output is not None:
            output.close()

    def log_tail(self, index: int | None = None, lines: int = 5) -> str:
        """The last lines of one node's log (or of every node's), for error messages."""
        chosen = range(len(self.nodes)) if index is None else [index]
        texts = []
        for i in chosen:
            with contextlib.suppress(OSError):
                found = (self.node_dir(i) / "nats.log").read_text("utf-8", "replace")
                texts += [f"{self.nodes[i].name}: {line}"
                          for line in found.splitlines()[-lines:]]
        return " | ".join(texts) or "(no output)"

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await asyncio.to_thread(self.close)
