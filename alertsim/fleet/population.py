"""Prefecture populations (2020 census) and a fleet spread over them in proportion.

`POPULATION` maps each JIS X 0401 code to its population on 1 October 2020 (see
`data/PROVENANCE.md`). `apportion(n)` gives every prefecture its share of `n` receivers by
largest remainder (Hamilton's method): deterministic, the shares add up to `n`, and no
prefecture is more than one receiver off its exact quota. `plan(n, prefix)` names them.
"""

from __future__ import annotations

import csv
from functools import cache
from importlib import resources
from typing import Final

from alertsim.domain.vocabulary import PREFECTURE_CODES

__all__ = ["DATA_FILE", "apportion", "plan", "population"]

DATA_FILE: Final = "population_2020.csv"


@cache
def population() -> dict[str, int]:
    """JIS code -> population (2020 census), in code order; checked to cover all 47."""
    text = resources.files("alertsim.fleet").joinpath("data").joinpath(DATA_FILE).read_text("utf-8")
    figures = {row["code"]: int(row["population"]) for row in csv.DictReader(text.splitlines())}
    if sorted(figures) != sorted(PREFECTURE_CODES) or min(figures.values()) <= 0:
        raise ValueError(f"{DATA_FILE}: expected a positive population for each of the "
                         f"47 prefecture codes")
    return figures


def apportion(n: int) -> dict[str, int]:
    """Code -> number of receivers, `n` in all, in proportion to population."""
    if n < 0:
        raise ValueError(f"receivers must be >= 0 (got {n})")
    figures = population()
    total = sum(figures.values())
    quotas = {code: n * people / total for code, people in figures.items()}
    shares = {code: int(quota) for code, quota in quotas.items()}
    left = n - sum(shares.values())
    # Ties in the remainder go to the lower code, so the result never depends on dict order.
    by_remainder = sorted(quotas, key=lambda code: (-(quotas[code] - shares[code]), code))
    for code in by_remainder[:left]:
        shares[code] += 1
    return shares


def plan(n: int, prefix: str = "fleet") -> dict[str, str]:
    """Client id -> prefecture code for `n` receivers spread by population.

    Ids are `{prefix}-{code}-{k}` (k counting from 1 within the prefecture), so an id says
    where its receiver listens.
    """
    return {f"{prefix}-{code}-{k}": code
            for code, count in apportion(n).items() for k in range(1, count + 1)}
