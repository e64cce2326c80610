"""The rule of each era: which warning policy was in force on a given day.

    block-2017           until 2018-01-07: regional blocks and their related areas
    prefecture           from 2018-01-08: the prefectures under the predicted flight
    prefecture+adjacent  from 2023-01-01: those prefectures and their land neighbours

Sources: docs/jalert.md ("Which areas get it"). The 2023 rule was announced on
2022-12-28 and in service from 2023; alertsim takes 2023-01-01 as its first day.
Pure: days in, policy names out.
"""

from __future__ import annotations

from datetime import date, datetime

from alertsim.domain.model import JST
from alertsim.domain.vocabulary import Policy, PolicyChoice

__all__ = ["ERAS", "policy_in_force", "resolve_policy"]

# (first day, policy), oldest first; a day before the first era still takes the oldest.
ERAS: tuple[tuple[date, Policy], ...] = (
    (date(1900, 1, 1), "block-2017"),
    (date(2018, 1, 8), "prefecture"),
    (date(2023, 1, 1), "prefecture+adjacent"),
)


def policy_in_force(day: date | datetime) -> Policy:
    """The policy J-Alert applied on `day` (a datetime counts by its JST date)."""
    if isinstance(day, datetime):
        day = day.astimezone(JST).date()
    policy = ERAS[0][1]
    for first, rule in ERAS:
        if day >= first:
            policy = rule
    return policy


def resolve_policy(choice: PolicyChoice, day: date | datetime) -> Policy:
    """`auto` becomes the policy in force on `day`; a named policy stays itself."""
    return policy_in_force(day) if choice == "auto" else choice
