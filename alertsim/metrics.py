"""Prometheus metrics: the service's `Observer` as counters, and the /metrics endpoint.

    PrometheusObserver     what `serve --metrics-port N` exposes (names below)
    start_metrics_server   an HTTP server for one registry on a port (0 = any free port),
                           on 127.0.0.1 unless another address is asked for

Every metric lives in a registry of its own (not prometheus_client's global one), so a
test, a drill or the fleet can run several side by side; the fleet can register its own
metrics in a `CollectorRegistry` and serve it with `start_metrics_server` too.

    alertsim_detections_total{outcome}        accepted | duplicate | refused
    alertsim_decisions_total                  decisions recorded
    alertsim_alerts_total{stage}              alerts written to the outbox, by stage
    alertsim_rejected_inputs_total{input}     detection | operator | receipt | other
    alertsim_receipts_total                   receipts recorded
    alertsim_published_total{kind}            outbox rows acknowledged by the broker
    alertsim_publish_latency_seconds{kind}    outbox write -> broker acknowledgement
    alertsim_outbox_depth                     rows written, not yet acknowledged
    alertsim_publish_refused_total{reason}    publishes the broker refused (MQTT 5 PUBACK
                                              reason, e.g. "Not authorized"); retried
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

from alertsim.service.observer import DetectionOutcome, InputKind

__all__ = ["MetricsServer", "PrometheusObserver", "start_metrics_server"]

# Publish latency buckets: a PUBACK on loopback takes ~1 ms; a burst queues rows for seconds.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                   10.0, 30.0)


class PrometheusObserver:
    """The service's observer port, counted in `registry` (a new one by default)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self._detections = Counter("alertsim_detections", "Detections received, by outcome",
                                   ["outcome"], registry=r)
        self._decisions = Counter("alertsim_decisions", "Decisions recorded", registry=r)
        self._alerts = Counter("alertsim_alerts", "Alerts written to the outbox, by stage",
                               ["stage"], registry=r)
        self._rejected = Counter("alertsim_rejected_inputs", "Inputs rejected, by input",
                                 ["input"], registry=r)
        self._receipts = Counter("alertsim_receipts", "Receipts recorded", registry=r)
        self._published = Counter("alertsim_published", "Outbox rows acknowledged, by kind",
                                  ["kind"], registry=r)
        self._latency = Histogram("alertsim_publish_latency_seconds",
                                  "Outbox write to broker acknowledgement, by kind", ["kind"],
                                  buckets=LATENCY_BUCKETS, registry=r)
        self._depth = Gauge("alertsim_outbox_depth", "Outbox rows not yet acknowledged",
                            registry=r)
        self._refused = Counter("alertsim_publish_refused",
                                "Publishes the broker refused in its PUBACK, by reason",
                                ["reason"], registry=r)

    def detection(self, outcome: DetectionOutcome) -> None:
        self._detections.labels(outcome).inc()

    def decision(self) -> None:
        self._decisions.inc()

    def alerts(self, stages: Sequence[str]) -> None:
        for stage in stages:
            self._alerts.labels(stage).inc()

    def rejected(self, kind: InputKind) -> None:
        self._rejected.labels(kind).inc()

    def receipts(self, count: int) -> None:
        self._receipts.inc(count)

    def published(self, kind: str, latency_s: float) -> None:
        self._published.labels(kind).inc()
        self._latency.labels(kind).observe(max(0.0, latency_s))

    def outbox_depth(self, depth: int) -> None:
        self._depth.set(depth)

    def publish_refused(self, reason: str) -> None:
        """A publish refused by the broker (MQTT 5 PUBACK reason), to be tried again."""
        self._refused.labels(reason).inc()


@dataclass
class MetricsServer:
    """A running /metrics endpoint; `close()` stops it."""

    server: WSGIServer
    thread: threading.Thread

    @property
    def host(self) -> str:
        """The address the socket is bound to ("0.0.0.0" or "::": every interface)."""
        return str(self.server.server_address[0])

    @property
    def port(self) -> int:
        return int(self.server.server_address[1])

    @property
    def url(self) -> str:
        """http://HOST:PORT/metrics with the bound address (bracketed for IPv6)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/metrics"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


def start_metrics_server(registry: CollectorRegistry, port: int,
                         host: str = "127.0.0.1") -> MetricsServer:
    """Serve `registry` at http://HOST:PORT/metrics from a daemon thread (port 0: any).

    Loopback by default: the counters say how busy the service is and what it refuses;
    `host="0.0.0.0"` (or an interface's address) opens them to the network on purpose."""
    server, thread = start_http_server(port, addr=host, registry=registry)
    return MetricsServer(server, thread)
