"""Delivery latency as every report states it: count, nearest-rank p50 and p99, and max.

One definition for the drill report and the receiver fleet, so their figures compare.
Nearest rank: the p-th percentile is the smallest value with at least p% of the values at
or below it (no interpolation: every figure is a latency that was measured).
"""

from __future__ import annotations

import math
from collections.abc import Iterable

from pydantic import BaseModel, ConfigDict

__all__ = ["Latency", "latency_of"]


class Latency(BaseModel):
    """Latency in milliseconds; the statistics are None when nothing was timed."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    count: int = 0
    p50_ms: float | None = None
    p99_ms: float | None = None
    max_ms: float | None = None


def latency_of(values_ms: Iterable[float]) -> Latency:
    """Count, nearest-rank p50 and p99, and max of latencies in milliseconds."""
    ordered = sorted(values_ms)
    if not ordered:
        return Latency()

    def rank(q: float) -> float:
        return ordered[max(0, math.ceil(len(ordered) * q / 100) - 1)]

    return Latency(count=len(ordered), p50_ms=rank(50), p99_ms=rank(99), max_ms=ordered[-1])
