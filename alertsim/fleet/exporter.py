"""The fleet's Prometheus metrics (`alertsim fleet --metrics-port N`), in a registry of its
own, refreshed from the shards' pushed progress about once a second (a display pace: the
fleet already holds the latest counts, reading them asks the shards nothing):

    alertsim_fleet_receivers           receivers in the fleet
    alertsim_fleet_subscribed          receivers subscribed when the fleet became ready
    alertsim_fleet_connect_seconds     time to connect and subscribe them all
    alertsim_fleet_alerts_seen         distinct alert identifiers received
    alertsim_fleet_deliveries          first deliveries (one per alert per receiver)
    alertsim_fleet_duplicates          extra copies of an identifier at a receiver
    alertsim_fleet_wrong_area          alerts naming a prefecture the receiver is not in
"""

from __future__ import annotations

import asyncio

from prometheus_client import CollectorRegistry, Gauge

from alertsim.fleet.fleet import ProcessFleet
from alertsim.fleet.summary import FleetReady

__all__ = ["FleetMetrics"]

REFRESH_S = 1.0


class FleetMetrics:
    """Gauges of one fleet; `refresh_forever` keeps them current until cancelled."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()

        def gauge(name: str, text: str) -> Gauge:
            return Gauge(f"alertsim_fleet_{name}", text, registry=self.registry)

        self.receivers = gauge("receivers", "Receivers in the fleet")
        self.subscribed = gauge("subscribed", "Receivers subscribed when the fleet was ready")
        self.connect = gauge("connect_seconds", "Seconds to connect and subscribe the fleet")
        self.alerts = gauge("alerts_seen", "Distinct alert identifiers received")
        self.deliveries = gauge("deliveries", "First deliveries of an alert at a receiver")
        self.duplicates = gauge("duplicates", "Extra copies of an identifier at a receiver")
        self.wrong_area = gauge("wrong_area", "Alerts naming another prefecture than the "
                                              "receiver's")

    def ready(self, figures: FleetReady) -> None:
        self.receivers.set(figures.receivers)
        self.subscribed.set(figures.subscribed)
        self.connect.set(figures.connect_s)

    async def refresh_forever(self, fleet: ProcessFleet) -> None:
        while True:
            delivered = fleet.progress()
            self.alerts.set(len(delivered))
            self.deliveries.set(sum(delivered.values()))
            self.duplicates.set(fleet.duplicates)
            self.wrong_area.set(fleet.wrong_area)
            await asyncio.sleep(REFRESH_S)
