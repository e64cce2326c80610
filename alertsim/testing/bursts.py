"""Many distinct detections at once, for burst tests and benchmarks (benchmarks/bench_burst.py).

`burst(count, seed=..., launch_time=...)`: `count` detections of different events (ids
`burst-0`, `burst-1`, ...), launched around the Korean peninsula toward impacts across
22-46N, 122-160E with corridors 0-150 km wide, as benchmarks/bench_decide.py draws them.
Some warn no prefecture (a national message), most warn one to a dozen.
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta

from alertsim.domain.detection import Detection
from alertsim.testing.builders import DEFAULT_LAUNCH_TIME, make_detection

__all__ = ["burst"]


def burst(count: int, *, seed: int = 7, launch_time: datetime = DEFAULT_LAUNCH_TIME,
          observed_after: timedelta = timedelta(minutes=2),
          prefix: str = "burst") -> list[Detection]:
    """`count` detections of distinct events, reproducible from `seed`."""
    rng = random.Random(seed)
    out: list[Detection] = []
    while len(out) < count:
        launch = (rng.uniform(33, 42), rng.uniform(123, 130))
        impact = (rng.uniform(22, 46), rng.uniform(122, 160))
        if abs(launch[0] - impact[0]) + abs(launch[1] - impact[1]) < 1:
            continue
        out.append(make_detection(launch, impact, rng.uniform(0, 150), rng.uniform(0, 300),
                                  event_id=f"{prefix}-{len(out)}", launch_time=launch_time,
                                  observed_after=observed_after,
                                  flight=timedelta(minutes=rng.uniform(5, 30))))
    return out
