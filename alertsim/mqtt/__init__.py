"""The MQTT transport: connect, publish, subscribe (`client`), broker URLs (`url`), the one
reconnect loop (`reconnect`), and every patch of aiomqtt/paho in one place (`paho_compat`).

It knows nothing of the service, its adapters, the client applications or the broker
tooling: those build on it.
"""
