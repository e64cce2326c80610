"""The service's link to the broker (`link`) and the inputs a sensor sends (`inputs`)."""
