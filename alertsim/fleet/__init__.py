"""A fleet of lightweight MQTT 5 receivers, for drills, benchmarks and `alertsim fleet`.

    population  the 2020 census by prefecture; a fleet spread over it in proportion
    tally       what each receiver got: deliveries, duplicates, wrong-area deliveries,
                latency against the service's `sent-at` (pure bookkeeping, no I/O);
                payloads read by the domain's `Alert` model, as every receiver reads them
    summary     the typed results: `FleetReady`, `Deliveries` (`summarise`), `FleetSummary`
    connection  one receiver: an asyncio Protocol speaking MQTT 5 through the sans-I/O
                `mqtt5` codec (no packet is encoded by hand)
    shard       a process holding many receivers on one event loop (uvloop when
                installed), driven by JSON lines on stdin/stdout
    fleet       `ProcessFleet`: K shard processes started, awaited, asked and stopped together
    exporter    the fleet's Prometheus gauges (`alertsim fleet --metrics-port`)

The fleet runs apart from the service (its own processes, one per core), so the service's
publish path and the receivers never share an event loop.
"""
