"""The SQLite record: `Store` (the service's `Record` port), its rows and migrations."""

from alertsim.adapters.sqlite.store import Store

__all__ = ["Store"]
