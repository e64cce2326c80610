"""Helpers for tests, ours and client developers': builders, fakes, and waiting.

- `make_detection`, `DEFAULT_LAUNCH_TIME` (`builders`): valid detections from table numbers.
- `FixedClock`, `InMemoryPublisher` (`fakes`): the service's clock and publisher ports.
- `eventually` (`waiting`): await a condition instead of sleeping a fixed time.

Importing this package is cheap and does no I/O.
"""

from __future__ import annotations

from alertsim.testing.builders import DEFAULT_LAUNCH_TIME, make_detection
from alertsim.testing.fakes import FixedClock, InMemoryPublisher
from alertsim.testing.waiting import eventually

__all__ = [
    "DEFAULT_LAUNCH_TIME",
    "FixedClock",
    "InMemoryPublisher",
    "eventually",
    "make_detection",
]
