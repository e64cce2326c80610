"""The `alertsim` command line: one module per command group, thin."""

from alertsim.cli.main import main

__all__ = ["main"]
