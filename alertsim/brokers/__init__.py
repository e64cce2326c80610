"""Broker tooling that is not the transport: Mosquitto and embedded brokers for tests and
demos (`brokers`), broker configuration (`broker_config`), a private CA (`certificates`)
and NATS clusters (`nats`)."""
