"""The pure core: geometry, trajectories, decisions and message building.

Nothing here performs I/O, reads the clock or logs: functions take data and "now" as
arguments, so every behaviour can be pinned by a table test (tests/unit/test_domain_purity.py).
"""
