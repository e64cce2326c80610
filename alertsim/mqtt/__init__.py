"""The MQTT transport: settings and connect (`client`), publish, subscribe and what comes in
(`messages`), MQTT 5 vs 3.1.1 (`protocol`, `negotiation`), broker URLs (`url`), the one
reconnect loop (`reconnect`), and every patch of aiomqtt/paho in one place (`paho_compat`).

It knows nothing of the service, its adapters, the client applications or the broker
tooling: those build on it.
"""
