"""alertsim: a J-Alert-style public alert simulator (not an official alert feed)."""

__version__ = "0.1.0"
