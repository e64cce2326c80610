"""Input rates per client: token buckets, pure (the caller passes "now" in seconds).

    Rate       how many inputs a client may send per second, and how many at once (burst)
    Bucket     one client's tokens: refilled at `Rate.per_second`, never above `burst`
    take       refill a bucket up to `now`, then take one token if there is one
    RateGuard  a bucket per client, for at most `max_clients` clients at a time

"now" is any monotonic clock in seconds (the service passes `time.monotonic()`): rates are
about real time, never the scenario's simulated time. A clock that goes backwards refills
nothing rather than taking tokens back.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

__all__ = ["Bucket", "Rate", "RateGuard", "take"]


@dataclass(frozen=True)
class Rate:
    """`per_second` inputs on average, up to `burst` at once (the bucket's size)."""

    per_second: float
    burst: int

    def __post_init__(self) -> None:
        if self.per_second < 0 or self.burst < 1:
            raise ValueError(f"rate: per_second >= 0 and burst >= 1 (got {self.per_second}, "
                             f"{self.burst})")

    def describe(self) -> str:
        """'100/s (burst 1000)', for refusal reasons people read."""
        return f"{self.per_second:g}/s (burst {self.burst})"


@dataclass(frozen=True)
class Bucket:
    """Tokens left, as of `at` (seconds on the caller's monotonic clock)."""

    tokens: float
    at: float


def take(bucket: Bucket | None, rate: Rate, now: float) -> tuple[bool, Bucket]:
    """(taken, the bucket after): a new client (None) starts with a full bucket."""
    if bucket is None:
        bucket = Bucket(float(rate.burst), now)
    elapsed = max(0.0, now - bucket.at)
    tokens = min(float(rate.burst), bucket.tokens + elapsed * rate.per_second)
    if tokens >= 1.0:
        return True, Bucket(tokens - 1.0, max(now, bucket.at))
    return False, Bucket(tokens, max(now, bucket.at))


class RateGuard:
    """A bucket per client id; `allow(client, now)` says whether this input fits its rate.

    At most `max_clients` buckets are kept (least recently seen forgotten first), so a
    flood of made-up client ids cannot grow memory without bound; a forgotten client
    starts again with a full bucket, which is why a global guard stands beside this one.
    """

    def __init__(self, rate: Rate, *, max_clients: int = 10_000) -> None:
        self.rate = rate
        self.max_clients = max_clients
        self._buckets: OrderedDict[str, Bucket] = OrderedDict()

    def allow(self, client: str, now: float) -> bool:
        """Take a token from `client`'s bucket; False when it has none left."""
        taken, bucket = take(self._buckets.pop(client, None), self.rate, now)
        self._buckets[client] = bucket  # most recently seen last
        while len(self._buckets) > self.max_clients:
            self._buckets.popitem(last=False)
        return taken

    def __len__(self) -> int:
        return len(self._buckets)
