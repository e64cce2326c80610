"""The SQLite record: `Store` (owner of the connection) and its three parts, split by what
each serves: `ServiceRecord` (the service's `Record` port), `DrillRegistry` and
`RecordViews`; their rows and migrations."""

from alertsim.adapters.sqlite.drills import DrillRegistry
from alertsim.adapters.sqlite.integrity import RecordDamaged
from alertsim.adapters.sqlite.record import ServiceRecord
from alertsim.adapters.sqlite.store import Store
from alertsim.adapters.sqlite.views import RecordViews

__all__ = ["DrillRegistry", "RecordDamaged", "RecordViews", "ServiceRecord", "Store"]
